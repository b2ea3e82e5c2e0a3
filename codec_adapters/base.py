"""The codec adapter protocol: what every codec declares and does.

An adapter turns an 8-bit RGB image into a bitstream at one *level* of its
quality axis and decodes bitstreams back to RGB of the same size. Adapters
declare their level axis (range and which direction is better) so the
controller and CLI never branch on codec names.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from sursmr_core.errors import CodecError, CodecTimeout, CodecUnavailableError, InputError, ToolError, ToolTimeout
from sursmr_core.imaging import RGBImage, check_rgb
from sursmr_core.levels import Availability, LevelAxis
from sursmr_core.toolrun import ToolResult, run_tool

DEFAULT_TIMEOUT_S = 120.0


class CodecAdapter(ABC):
    """Base class of every codec adapter; subclasses register with ``@register``.

    Subclasses set the class attributes and implement :meth:`_encode` and
    :meth:`_decode`. Options are keyword arguments of :meth:`encode`; each
    adapter lists the ones it accepts in ``options`` with their defaults.
    """

    name: ClassVar[str]
    extension: ClassVar[str]  # without the dot
    levels: ClassVar[LevelAxis]
    default_level: ClassVar[int]
    description: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Any]] = {}
    min_side: ClassVar[int] = 1
    # encodes take milliseconds: probing in this process beats paying for worker processes
    fast: ClassVar[bool] = False
    # the option that sets the encoder's threads for one encode without changing a bit of its output (None: none);
    # a caller encoding one level at a time may give it the cores its worker processes would otherwise use
    threads_option: ClassVar[str | None] = None
    # --codec auto searches the listed codec with the lowest rank in full and checks one predicted level of each
    # other codec, so the codec most often smallest at the targets should lead (benchmarks/codec_auto.py measures it)
    choice_rank: ClassVar[int] = 100

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if not timeout > 0:  # also refuses nan, which no comparison would stop
            raise InputError(f"timeout must be a positive number of seconds, got {timeout}")
        self.timeout = timeout

    # --- declared facts -----------------------------------------------------

    @classmethod
    def settings(cls) -> dict[str, Any]:
        """What fixes this codec's bitstreams and decodes besides the level (a dataset records it with its labels)."""
        return {"options": dict(cls.options)}

    @classmethod
    def availability(cls) -> Availability:
        """Whether this codec can run here, and if not, why (override when it depends on binaries)."""
        return Availability(True)

    def require_available(self) -> None:
        status = self.availability()
        if not status.available:
            raise CodecUnavailableError(f"codec {self.name!r} is not available here: {status.reason}")

    # --- encode / decode ------------------------------------------------------

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults merged with ``options``; unknown names are an :class:`InputError`."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise InputError(f"{self.name}: unknown option(s) {', '.join(unknown)}; accepted: {known}")
        return {**self.options, **options}

    def encode(self, rgb: RGBImage, level: int, **options: Any) -> bytes:
        """Encode ``rgb`` (uint8, H×W×3) at ``level``; returns the bitstream bytes."""
        check_rgb(rgb, name=f"{self.name} input", min_side=self.min_side)
        self.levels.check(level, self.name)
        resolved = self.resolve_options(options)
        self.require_available()
        data: bytes = self._timed(self._encode, rgb, level, resolved)
        return data

    def decode(self, data: bytes) -> RGBImage:
        """Decode a bitstream of this codec to uint8 RGB (H×W×3) at its coded size."""
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
            raise InputError(f"{self.name}: decode needs non-empty bytes")
        self.require_available()
        decoded: RGBImage = self._timed(self._decode, bytes(data))
        return decoded

    def _timed(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` under the adapter's time limit.

        Subprocess work is killed at the limit by :func:`run_tool`. In-process
        libraries cannot be interrupted, so their result is discarded and the
        same :class:`CodecTimeout` raised when they finish past the limit.
        """
        start = time.monotonic()
        try:
            result = fn(*args)
        except ToolTimeout as exc:
            raise CodecTimeout(f"{self.name}: {exc}") from exc
        except ToolError as exc:
            raise CodecError(f"{self.name}: {exc}") from exc
        elapsed = time.monotonic() - start
        if elapsed > self.timeout:
            raise CodecTimeout(f"{self.name}: took {elapsed:.3f} s, over the {self.timeout:g} s limit")
        return result

    def run(self, args: list[str], stdin: bytes | None = None) -> ToolResult:
        """Run an external program under this adapter's time limit."""
        return run_tool(args, timeout=self.timeout, stdin=stdin)

    @abstractmethod
    def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes: ...

    @abstractmethod
    def _decode(self, data: bytes) -> RGBImage: ...
