"""What a compress call asks for: :class:`CompressSettings` (built and checked once) and the targets it resolves.

:func:`resolve_targets` turns the settings' confidence into a margin once the
predictor (and so its model card's calibration) is known. Re-exported by
:mod:`sursmr.compress`, the public import path.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S, CodecAdapter
from sursmr.rate_control import DEFAULT_STRATEGY, STRATEGIES, Targets
from sursmr_core.errors import InputError

DEFAULT_TARGET_SUR = 0.75
DEFAULT_TARGET_SMR = 0.9


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise InputError(f"{name} must be at least 1, got {value!r}")


@dataclass(frozen=True)
class CompressSettings:
    """Everything but the image and the predictor that decides a compress result; built (and checked) once.

    Make it with :meth:`create`, which refuses bad targets, strategies,
    budgets, job counts and codec options, and unavailable codecs, before any
    work. ``options`` are the codec's options resolved with its defaults;
    ``jobs``: encoder processes per image (None: the usable cores).
    ``confidence``: ``None`` when ``targets.margin`` was given; a share P
    whose margin is read from the predictor's model card once the predictor
    is known (:func:`resolve_targets`); or :data:`CARD_DEFAULT` for the
    card's default confidence (margin 0 when the card has none).
    ``thorough``: the ``predicted`` search encodes the chosen level's cheaper
    neighbour even when the image's probes say it fails (no ``settle_margin``).
    Instances are picklable, so batch workers receive them whole.
    """

    codec: str
    targets: Targets
    strategy: str = DEFAULT_STRATEGY
    max_probes: int | None = None
    jobs: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    strict: bool = False
    confidence: float | str | None = None
    thorough: bool = False

    @classmethod
    def create(
        cls,
        *,
        codec: str,
        target_sur: float | None = DEFAULT_TARGET_SUR,
        target_smr: float | None = DEFAULT_TARGET_SMR,
        margin: float | None = None,
        confidence: float | None = None,
        strategy: str = DEFAULT_STRATEGY,
        max_probes: int | None = None,
        jobs: int | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        strict: bool = False,
        thorough: bool = False,
    ) -> CompressSettings:
        if margin is not None and confidence is not None:
            raise InputError("give a margin or a confidence, not both")
        if confidence is not None and not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
            raise InputError(f"confidence must be a share in (0, 1), e.g. 0.9; got {confidence!r}")
        targets = Targets(target_sur, target_smr, 0.0 if margin is None else margin)
        chosen: float | str | None = confidence
        if margin is None and confidence is None:
            chosen = CARD_DEFAULT
        STRATEGIES.get(strategy)
        _check_count("max_probes", max_probes)
        _check_count("jobs", jobs)
        adapter = codec_adapters.create(codec, timeout=timeout)
        resolved = adapter.resolve_options(dict(options or {}))
        adapter.require_available()
        return cls(codec, targets, strategy, max_probes, jobs, resolved, timeout, strict, chosen, bool(thorough))

    def adapter(self) -> CodecAdapter:
        return codec_adapters.create(self.codec, timeout=self.timeout)

    def identity(self) -> dict[str, Any]:
        """JSON-ready fields that decide the chosen encode (for manifests): codec, targets, search, options."""
        return {
            "codec": self.codec,
            "targets": {"sur": self.targets.sur, "smr": self.targets.smr, "margin": self.targets.margin},
            "confidence": self.confidence,
            "strategy": self.strategy,
            "max_probes": self.max_probes,
            "thorough": self.thorough,
            "options": json.loads(json.dumps(dict(self.options), sort_keys=True, default=repr)),
        }


CARD_DEFAULT = "card-default"
"""``CompressSettings.confidence`` when neither a margin nor a confidence was asked for."""


def resolve_targets(settings: CompressSettings, predictor: object) -> tuple[Targets, float | None]:
    """The targets with the margin the settings' confidence needs for ``predictor``, and that confidence.

    Reads the predictor's calibration (:func:`sursmr.confidence.table_of`).
    Raises :class:`InputError` when a confidence was asked for and the card
    has no calibration for it, the codec or targets near these. The card's
    default confidence applies where it is calibrated; elsewhere no margin is
    added and a warning says so.
    """
    from sursmr.confidence import table_of

    if settings.confidence is None:
        return settings.targets, None
    table = table_of(predictor)
    name = getattr(predictor, "name", type(predictor).__name__)
    if settings.confidence == CARD_DEFAULT:
        if table is None or table.default is None:
            return settings.targets, None
        wanted = table.default
    elif table is None:
        raise InputError(
            f"model {name!r} has no confidence calibration in its card; pass a margin instead, or calibrate it "
            "with `sursmr-train calibrate --write-card`"
        )
    else:
        wanted = float(settings.confidence)
    base = settings.targets
    try:
        margin = table.margin_for(settings.codec, wanted, base.sur, base.smr)
    except InputError as exc:
        if settings.confidence != CARD_DEFAULT:
            raise
        # the default must not make a reachable request fail: without a calibrated margin, no margin
        warnings.warn(f"default confidence {wanted:g} does not apply here ({exc}); using no margin", stacklevel=2)
        return base, None
    try:
        return Targets(base.sur, base.smr, margin), wanted
    except InputError as exc:
        raise InputError(
            f"confidence {wanted:g} needs margin {margin:.3f} for {settings.codec} at these targets: {exc}; "
            "lower the targets or the confidence"
        ) from None
