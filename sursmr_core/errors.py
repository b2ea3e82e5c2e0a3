"""Typed exceptions for sursmr and its codec adapters.

Every error a user can cause or fix derives from :class:`SursmrError` and
carries the process exit code the CLI uses for it, so library callers can
catch one base class and the CLI maps errors to codes in one place.
"""

from __future__ import annotations

from typing import Any


class ExitCode:
    """Exit codes of the ``sursmr`` and ``sursmr-train`` commands."""

    OK = 0
    INTERNAL = 1
    USAGE = 2  # bad usage or bad input (image, option, target)
    CODEC_UNAVAILABLE = 3
    CODEC_FAILED = 4
    TARGET_UNREACHABLE = 5
    MODEL_UNAVAILABLE = 6
    LABELLER_UNAVAILABLE = 7
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
    TERMINATED = 143  # SIGTERM: 128 + 15


class SursmrError(Exception):
    """Base class of every error sursmr raises on purpose."""

    exit_code: int = ExitCode.INTERNAL


# --- input -----------------------------------------------------------------


class InputError(SursmrError, ValueError):
    """The caller handed us something we cannot use (image, option, target)."""

    exit_code = ExitCode.USAGE


class ImageLoadError(InputError):
    """A file is missing, not an image, corrupt, truncated or a decompression bomb."""


class UnsupportedImageError(InputError):
    """An image decoded fine but breaks the input policy (too small, too large...)."""


class OutputError(InputError):
    """An output cannot be written where asked: no such folder possible, not writable, name too long, disk full."""


class UnknownNameError(InputError, KeyError):
    """A name that no registry knows (codec, model, metric, machine)."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {listing}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


# --- external tools and codecs ----------------------------------------------


class ToolError(SursmrError):
    """An external program failed (non-zero exit, bad output)."""

    exit_code = ExitCode.CODEC_FAILED


class ToolTimeout(ToolError):
    """An external program ran past its time limit and was killed."""


class CodecError(SursmrError):
    """An encode or decode failed."""

    exit_code = ExitCode.CODEC_FAILED


class CodecTimeout(CodecError):
    """An encode or decode ran past the adapter's time limit."""


class CorruptBitstreamError(CodecError):
    """Bytes handed to a decoder are not a valid bitstream of that codec."""


class CodecUnavailableError(SursmrError):
    """A registered codec cannot run on this machine (missing binary or library)."""

    exit_code = ExitCode.CODEC_UNAVAILABLE


# --- rate control ------------------------------------------------------------


class TargetUnreachable(SursmrError):
    """No probed level meets every target.

    ``best`` is the probe closest to the targets (an object with at least
    ``level``, ``bytes``, ``sur`` and ``smr``), ``probes`` all probes tried,
    ``encodes`` how many of them were encoded afresh (None: not counted).
    """

    exit_code = ExitCode.TARGET_UNREACHABLE

    def __init__(self, message: str, best: Any = None, probes: Any = (), encodes: int | None = None) -> None:
        super().__init__(message)
        self.best = best
        self.probes = list(probes)
        self.encodes = encodes


# --- models and labellers ------------------------------------------------------


class ModelError(SursmrError):
    """A predictor cannot be built or its weights cannot be loaded."""

    exit_code = ExitCode.MODEL_UNAVAILABLE


class WeightsNotFoundError(ModelError, FileNotFoundError):
    """A weights file named by the user or a model card is missing."""


class LabellerUnavailableError(SursmrError):
    """A metric or machine of the label pipeline cannot run here."""

    exit_code = ExitCode.LABELLER_UNAVAILABLE
