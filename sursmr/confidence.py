"""Turn "I need a share P of my images to truly meet the targets" into the controller's margin.

The rate controller stops at the most compressed level whose *predicted*
SUR/SMR reach ``target + margin``. How often the *true* ratios then meet the
targets depends on the predictor's errors near the stopping point, so a bare
margin has no meaning a user can plan with. This module gives it one, by
split-conformal calibration on a held-out (validation) split:

1. For each validation item (one image, one codec, every level labelled) and
   target pair, :func:`required_margin` simulates the controller over the
   item's levels (densified by linear interpolation, see :func:`densify`, so
   the stopping point is as fine as on the codec's real axis) and returns the
   smallest margin from which on the chosen level's labels meet the targets.
   That margin is the item's nonconformity score: it is the predictor's
   overshoot (predicted minus true) where the true curve crosses the target.
2. :func:`conformal_quantile` takes the ⌈(n + 1)·P⌉-th smallest of the n
   scores. With a new image exchangeable with the validation ones, a margin
   that large meets the targets with probability ≥ P (split-conformal
   guarantee; it holds on average over images, not for each one).
3. A :class:`ConfidenceTable` (stored in the model card under
   ``"confidence"``) keeps one margin per codec, confidence and calibrated
   target pair; :meth:`ConfidenceTable.margin_for` answers for other targets
   with the larger margin of the calibrated targets around them.

Everything here is pure arithmetic over arrays: no model, codec or file.
Steps 1 and 2 (per-item arithmetic) live in :mod:`sursmr.conformal` and are
re-exported here; this module holds the card's table and :func:`calibrate`.
Where an item has no level whose labels meet the targets, no margin helps
(score = +inf); a confidence above the share of reachable items is reported
as not supported rather than promised.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sursmr.conformal import (
    DEFAULT_SUBSTEPS,
    MARGIN_GRID,
    FloatArray,
    ItemCurves,
    Target,
    cheapest_meeting,
    chosen_index,
    conformal_quantile,
    densify,
    hit_rate_and_bytes,
    max_supported_confidence,
    meets,
    outcome,
    reachable_share,
    required_margin,
)
from sursmr_core.errors import InputError

CONFIDENCES: tuple[float, ...] = (0.75, 0.9, 0.95)
"""Confidences calibrated by default (``sursmr-train calibrate``)."""

DEFAULT_RELIABILITY = 0.9
"""The default confidence: the fewest validation bytes among the confidences whose validation hit rate is ≥ this."""


# --- the table stored in a model card ------------------------------------------------------


@dataclass(frozen=True)
class ConfidenceEntry:
    """The margin giving ``confidence`` for one codec and calibrated target pair (``None``: not supported)."""

    codec: str
    target_sur: float | None
    target_smr: float | None
    confidence: float
    margin: float | None
    items: int
    scope: str = "codec"  # "codec": this codec's items; "pooled": every codec's (too few items of one codec)
    val_hit_rate: float | None = None
    val_mean_bytes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "target_sur": self.target_sur,
            "target_smr": self.target_smr,
            "confidence": self.confidence,
            "margin": self.margin,
            "items": self.items,
            "scope": self.scope,
            "val_hit_rate": self.val_hit_rate,
            "val_mean_bytes": self.val_mean_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceEntry:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        try:
            return cls(
                codec=str(data["codec"]),
                target_sur=opt("target_sur"),
                target_smr=opt("target_smr"),
                confidence=float(data["confidence"]),
                margin=opt("margin"),
                items=int(data["items"]),
                scope=str(data.get("scope", "codec")),
                val_hit_rate=opt("val_hit_rate"),
                val_mean_bytes=opt("val_mean_bytes"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed confidence entry {dict(data)!r}: {exc}") from None


def _bracket(grid: Sequence[float], value: float) -> list[float]:
    """The grid values next to ``value`` on each side (one value when it is on the grid or outside it)."""
    ordered = sorted(set(grid))
    if value <= ordered[0]:
        return [ordered[0]]
    if value >= ordered[-1]:
        return [ordered[-1]]
    for low, high in itertools.pairwise(ordered):
        if math.isclose(value, low, abs_tol=1e-9):
            return [low]
        if low < value < high:
            return [low, high]
    return [ordered[-1]]


@dataclass(frozen=True)
class ConfidenceTable:
    """Calibrated margins of one predictor (see the module docstring); JSON in the model card."""

    entries: tuple[ConfidenceEntry, ...]
    default: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def confidences(self, codec: str | None = None) -> list[float]:
        """Confidences with at least one supported margin (for ``codec``, or any codec)."""
        chosen = {e.confidence for e in self.entries if e.margin is not None and (codec is None or e.codec == codec)}
        return sorted(chosen)

    def codecs(self) -> list[str]:
        return sorted({e.codec for e in self.entries})

    def margin_for(self, codec: str, confidence: float, target_sur: float | None, target_smr: float | None) -> float:
        """The margin to use; between calibrated targets, the larger margin of the ones around the request.

        Targets outside the calibrated range use the nearest calibrated ones.
        Raises :class:`InputError` when the codec or confidence was not
        calibrated, or when a target around the request has no supported margin.
        """
        rows = [e for e in self.entries if e.codec == codec and math.isclose(e.confidence, confidence, abs_tol=1e-9)]
        if not rows:
            known = ", ".join(f"{c:g}" for c in sorted({e.confidence for e in self.entries if e.codec == codec}))
            raise InputError(
                f"confidence {confidence:g} is not calibrated for codec {codec!r} "
                f"(calibrated: {known or 'none'}); pick one of those or pass a margin"
            )
        same_smr_kind = [e for e in rows if (e.target_smr is None) == (target_smr is None)]
        if not same_smr_kind:
            raise InputError(
                f"no calibration for codec {codec!r} with{'out' if target_smr is None else ''} an SMR target"
            )
        if target_sur is not None:
            same_smr_kind = [e for e in same_smr_kind if e.target_sur is not None]
            surs = _bracket([e.target_sur for e in same_smr_kind if e.target_sur is not None], target_sur)
        else:
            surs = []
        smrs = (
            _bracket([e.target_smr for e in same_smr_kind if e.target_smr is not None], target_smr)
            if target_smr is not None
            else []
        )
        chosen = [
            e
            for e in same_smr_kind
            if (not surs or any(math.isclose(e.target_sur or 0.0, s) for s in surs))
            and (not smrs or any(math.isclose(e.target_smr or 0.0, s) for s in smrs))
        ]
        if not chosen:
            raise InputError(f"no calibrated targets near SUR {target_sur} / SMR {target_smr} for codec {codec!r}")
        missing = [e for e in chosen if e.margin is None]
        if missing:
            e = missing[0]
            raise InputError(
                f"confidence {confidence:g} is not reachable for codec {codec!r} near SUR {e.target_sur} / "
                f"SMR {e.target_smr} on the calibration data ({e.items} items); lower the confidence or the "
                "targets, or pass a margin"
            )
        return max(float(e.margin) for e in chosen if e.margin is not None)

    def to_dict(self) -> dict[str, Any]:
        return {**dict(self.info), "default": self.default, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceTable:
        if not isinstance(data, Mapping) or not isinstance(data.get("entries"), list):
            raise InputError("a confidence table is a JSON object with an 'entries' list")
        default = data.get("default")
        return cls(
            entries=tuple(ConfidenceEntry.from_dict(e) for e in data["entries"]),
            default=None if default is None else float(default),
            info={k: v for k, v in data.items() if k not in ("default", "entries")},
        )


def choose_default(entries: Sequence[ConfidenceEntry], reliability: float = DEFAULT_RELIABILITY) -> float | None:
    """The confidence with the fewest validation bytes among those whose validation hit rate is ≥ ``reliability``.

    A confidence qualifies when its mean validation hit rate over the (codec,
    target) cells it supports is ≥ ``reliability``; qualifying confidences
    are compared on mean bytes over the cells they all support. ``None`` when
    none qualifies.
    """
    cells: dict[float, dict[tuple[str, float | None, float | None], ConfidenceEntry]] = {}
    for e in entries:
        if e.margin is not None and e.val_hit_rate is not None and e.val_mean_bytes is not None:
            cells.setdefault(e.confidence, {})[(e.codec, e.target_sur, e.target_smr)] = e
    eligible = [
        conf
        for conf, rows in sorted(cells.items())
        if float(np.mean([r.val_hit_rate for r in rows.values()])) >= reliability - 1e-12
    ]
    if not eligible:
        return None
    common = set.intersection(*(set(cells[c]) for c in eligible))
    if not common:
        return max(eligible, key=lambda c: len(cells[c]))
    costs = [float(np.mean([cells[c][key].val_mean_bytes or 0.0 for key in common])) for c in eligible]
    best = cheapest_meeting([1.0] * len(eligible), costs, 1.0)
    return None if best is None else eligible[best]


# --- calibration over a split --------------------------------------------------------------


def calibrate(
    items: Sequence[ItemCurves],
    targets: Sequence[Target],
    confidences: Sequence[float] = CONFIDENCES,
    *,
    substeps: int = DEFAULT_SUBSTEPS,
    reliability: float = DEFAULT_RELIABILITY,
    default_targets: Target | None = None,
    info: Mapping[str, Any] | None = None,
) -> ConfidenceTable:
    """Split-conformal margins per codec, target and confidence from calibration ``items``.

    A codec with too few items for a confidence (⌈(n + 1)·P⌉ > n) uses the
    scores of every codec's items for that target instead (``scope="pooled"``);
    a confidence still out of reach gets no margin. The table's default is
    :func:`choose_default` at ``reliability``, among the confidences that do
    not break ``default_targets`` (the targets a user gets without asking,
    see :func:`default_obstacle`); the confidences left out and why are in
    the table's info under ``"default_excluded"``.
    """
    if not items:
        raise InputError("calibration needs at least one item")
    entries: list[ConfidenceEntry] = []
    codecs = sorted({item.codec for item in items})
    for target in targets:
        scores = {
            item.item_id: required_margin(
                item.pred_sur, item.pred_smr, item.true_sur, item.true_smr, *target, substeps=substeps
            )
            for item in items
        }
        pooled = list(scores.values())
        for codec in codecs:
            mine = [item for item in items if item.codec == codec]
            own = [scores[item.item_id] for item in mine]
            for confidence in confidences:
                scope, chosen = "codec", own
                if math.ceil((len(own) + 1) * confidence - 1e-12) > len(own):
                    scope, chosen = "pooled", pooled
                q = conformal_quantile(chosen, confidence)
                margin = None if not math.isfinite(q) else max(0.0, q)
                rate = mean_bytes = None
                if margin is not None:
                    rate, mean_bytes = hit_rate_and_bytes(mine, target, margin, substeps)
                entries.append(
                    ConfidenceEntry(
                        codec, target[0], target[1], confidence, margin, len(chosen), scope, rate, mean_bytes
                    )
                )
    details = dict(info or {})
    candidates = entries
    if default_targets is not None:
        table = ConfidenceTable(tuple(entries))
        excluded = {}
        for confidence in confidences:
            why = default_obstacle(table, items, confidence, default_targets, reliability)
            if why is not None:
                excluded[f"{confidence:g}"] = why
        candidates = [e for e in entries if f"{e.confidence:g}" not in excluded]
        details |= {"default_targets": list(default_targets), "default_excluded": excluded}
    return ConfidenceTable(tuple(entries), choose_default(candidates, reliability), details)


def default_obstacle(
    table: ConfidenceTable,
    items: Sequence[ItemCurves],
    confidence: float,
    targets: Target,
    reliability: float = DEFAULT_RELIABILITY,
) -> str | None:
    """Why ``confidence`` cannot be the default at ``targets``, or None when it can.

    A default applies to every run that asks for nothing, so for every codec
    it needs a calibrated margin at ``targets``, and on a share ≥
    ``reliability`` of that codec's calibration items the predictions must
    reach ``target + margin`` at some level (elsewhere compress finds no
    passing level at all).
    """
    for codec in sorted({item.codec for item in items}):
        try:
            margin = table.margin_for(codec, confidence, *targets)
        except InputError as exc:
            return f"{codec}: {exc}"
        if any(t is not None and t + margin > 1.0 for t in targets):
            return f"{codec}: margin {margin:.3f} lifts a target above 1"
        share = reachable_share([i for i in items if i.codec == codec], targets, margin)
        if share < reliability - 1e-12:
            return (
                f"{codec}: with margin {margin:.3f}, the predictions reach SUR {targets[0]} / SMR {targets[1]} "
                f"+ margin on {100 * share:.0f} % of the calibration images (needs {100 * reliability:.0f} %)"
            )
    return None


# --- reading a predictor's table -------------------------------------------------------------


def table_of(predictor_or_card: object) -> ConfidenceTable | None:
    """The confidence table of a predictor's model card, or of a card (``card.extra["confidence"]``); or None."""
    card = getattr(predictor_or_card, "card", predictor_or_card)
    extra = getattr(card, "extra", None)
    data = extra.get("confidence") if isinstance(extra, Mapping) else None
    return ConfidenceTable.from_dict(data) if isinstance(data, Mapping) else None


def _card_table_json(card_file: str | os.PathLike[str]) -> Mapping[str, Any] | None:
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(card_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    table = data.get("confidence") if isinstance(data, dict) else None
    return table if isinstance(table, dict) else None


def card_default_confidence(card_file: str | os.PathLike[str]) -> float | None:
    """The default confidence written in a model card JSON file (None when absent); reads no weights."""
    table = _card_table_json(card_file)
    value = table.get("default") if table is not None else None
    return float(value) if isinstance(value, int | float) else None


def card_has_confidence(card_file: str | os.PathLike[str]) -> bool:
    """Whether a model card JSON file carries a confidence table (with or without a default); reads no weights."""
    return _card_table_json(card_file) is not None


__all__ = [
    "CONFIDENCES",
    "DEFAULT_RELIABILITY",
    "DEFAULT_SUBSTEPS",
    "MARGIN_GRID",
    "ConfidenceEntry",
    "ConfidenceTable",
    "FloatArray",
    "ItemCurves",
    "Target",
    "calibrate",
    "card_default_confidence",
    "card_has_confidence",
    "cheapest_meeting",
    "choose_default",
    "chosen_index",
    "conformal_quantile",
    "default_obstacle",
    "densify",
    "hit_rate_and_bytes",
    "max_supported_confidence",
    "meets",
    "outcome",
    "reachable_share",
    "required_margin",
    "table_of",
]
