"""Split-conformal arithmetic on one item's labelled curves: no model, codec or file.

The per-item half of :mod:`sursmr.confidence` (which re-exports all of it):
the conformal quantile, the controller simulated over an item's levels
(:func:`densify`, :func:`chosen_index`), the item's nonconformity score
(:func:`required_margin`), the hit and bytes a margin gives
(:func:`outcome`, :func:`hit_rate_and_bytes`, :func:`reachable_share`) and the knob search
(:func:`cheapest_meeting`). See :mod:`sursmr.confidence` for the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError

FloatArray = npt.NDArray[np.float64]


MARGIN_GRID: tuple[float, ...] = tuple(round(0.0025 * i, 4) for i in range(201))
"""Margins tried when scoring an item: 0 to 0.5 in steps of 0.0025."""

DEFAULT_SUBSTEPS = 8
"""Points per gap between two labelled levels in :func:`densify` (1: the labelled levels only)."""


# --- conformal quantile ----------------------------------------------------------------


def conformal_quantile(scores: Sequence[float] | FloatArray, confidence: float) -> float:
    """The ⌈(n + 1)·confidence⌉-th smallest score, or +inf when that rank exceeds n.

    With ``scores`` of n calibration points and a new point exchangeable with
    them, P(new score ≤ result) ≥ ``confidence``.
    """
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise InputError(f"confidence must be a number in (0, 1), got {confidence!r}")
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if values.size == 0:
        raise InputError("conformal calibration needs at least one score")
    if np.isnan(values).any():
        raise InputError("conformal scores must not be NaN (use +inf for 'never meets the targets')")
    rank = math.ceil((values.size + 1) * confidence - 1e-12)
    return math.inf if rank > values.size else float(values[rank - 1])


def max_supported_confidence(n: int) -> float:
    """The largest confidence whose conformal rank ⌈(n + 1)·P⌉ stays ≤ n: n / (n + 1)."""
    return n / (n + 1) if n > 0 else 0.0


# --- the controller on one item's labelled curve -----------------------------------------


def densify(values: Sequence[float] | FloatArray, substeps: int = DEFAULT_SUBSTEPS) -> FloatArray:
    """Linear interpolation with ``substeps`` points per gap (the original points kept; NaN spreads to its gaps)."""
    if substeps < 1:
        raise InputError(f"substeps must be ≥ 1, got {substeps}")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InputError("densify needs a non-empty 1-D curve")
    if substeps == 1 or array.size == 1:
        return array.copy()
    fractions = np.arange(substeps) / substeps
    left, right = array[:-1, None], array[1:, None]
    inner = (left + (right - left) * fractions[None, :]).reshape(-1)
    return np.concatenate([inner, array[-1:]])


def _ok(values: FloatArray, need: float | None) -> npt.NDArray[np.bool_]:
    """``values ≥ need`` where NaN (a ratio nobody could judge) counts as met; all True without a target."""
    if need is None:
        return np.ones(values.shape, dtype=bool)
    return np.isnan(values) | (values >= need - 1e-12)


def chosen_index(
    pred_sur: FloatArray, pred_smr: FloatArray, target_sur: float | None, target_smr: float | None, margin: float
) -> int:
    """Index (levels ordered worst → best quality) the controller stops at; the best level when none passes.

    The controller keeps the most compressed level whose predictions reach
    ``target + margin``; with predictions monotone in the level that is the
    first passing index. Falling back to the best level when nothing passes
    mirrors what a user does after ``TargetUnreachable``.
    """
    passing = _passes(pred_sur, pred_smr, target_sur, target_smr, margin)
    hits = np.flatnonzero(passing)
    return int(hits[0]) if hits.size else len(pred_sur) - 1


def _passes(
    pred_sur: FloatArray, pred_smr: FloatArray, target_sur: float | None, target_smr: float | None, margin: float
) -> npt.NDArray[np.bool_]:
    sur_need = None if target_sur is None else target_sur + margin
    smr_need = None if target_smr is None else target_smr + margin
    return _ok(pred_sur, sur_need) & _ok(pred_smr, smr_need)


def meets(true_sur: float, true_smr: float, target_sur: float | None, target_smr: float | None) -> bool:
    """True when labels meet the targets (no margin); an unjudged (NaN) SMR counts as met."""
    sur_ok = target_sur is None or true_sur >= target_sur - 1e-12
    smr_ok = target_smr is None or math.isnan(true_smr) or true_smr >= target_smr - 1e-12
    return bool(sur_ok and smr_ok)


def required_margin(
    pred_sur: Sequence[float] | FloatArray,
    pred_smr: Sequence[float] | FloatArray,
    true_sur: Sequence[float] | FloatArray,
    true_smr: Sequence[float] | FloatArray,
    target_sur: float | None,
    target_smr: float | None,
    *,
    grid: Sequence[float] = MARGIN_GRID,
    substeps: int = DEFAULT_SUBSTEPS,
) -> float:
    """The item's conformal score: the smallest grid margin from which on every larger one gives a hit.

    Curves are per level, worst → best quality, densified with ``substeps``.
    A hit means the labels at the chosen level meet the targets. +inf when
    even the largest grid margin misses (e.g. no level's labels meet the
    targets); the first grid value when every margin hits.
    """
    if target_sur is None and target_smr is None:
        raise InputError("give at least one target (SUR or SMR)")
    curves = [densify(c, substeps) for c in (pred_sur, pred_smr, true_sur, true_smr)]
    if len({c.size for c in curves}) != 1:
        raise InputError("predicted and true curves must have the same number of levels")
    p_sur, p_smr, t_sur, t_smr = curves
    truth = _ok(t_sur, target_sur) & _ok(t_smr, target_smr)
    margins = np.asarray(grid, dtype=np.float64)
    if margins.size == 0 or np.any(np.diff(margins) <= 0):
        raise InputError("the margin grid must be non-empty and increasing")
    hit = np.array([truth[chosen_index(p_sur, p_smr, target_sur, target_smr, float(m))] for m in margins])
    if not hit[-1]:
        return math.inf
    misses = np.flatnonzero(~hit)
    return float(margins[misses[-1] + 1]) if misses.size else float(margins[0])


# --- the knob search ---------------------------------------------------------------------


def cheapest_meeting(hit_rates: Sequence[float], costs: Sequence[float], required: float) -> int | None:
    """Index of the cheapest knob setting whose hit rate is ≥ ``required`` (first of equal costs); None if none.

    The calibration rule of every method in the matched-reliability benchmark
    and of the default confidence: hit rates come from the calibration split.
    """
    if len(hit_rates) != len(costs):
        raise InputError(f"{len(hit_rates)} hit rates but {len(costs)} costs")
    best: int | None = None
    for i, (rate, cost) in enumerate(zip(hit_rates, costs, strict=True)):
        if rate >= required - 1e-12 and (best is None or cost < costs[best]):
            best = i
    return best


@dataclass(frozen=True)
class ItemCurves:
    """One item (image × codec) with every level labelled, levels ordered worst → best quality.

    ``group``: the source photo (items of one photo are not independent);
    ``true_smr`` is NaN where no machine could judge.
    """

    item_id: str
    codec: str
    group: str
    nbytes: FloatArray
    pred_sur: FloatArray
    pred_smr: FloatArray
    true_sur: FloatArray
    true_smr: FloatArray


Target = tuple[float | None, float | None]


def outcome(item: ItemCurves, target: Target, margin: float, substeps: int = DEFAULT_SUBSTEPS) -> tuple[bool, float]:
    """(hit, bytes) of the controller with ``margin`` on the densified item (bytes interpolated between levels)."""
    p_sur, p_smr = densify(item.pred_sur, substeps), densify(item.pred_smr, substeps)
    index = chosen_index(p_sur, p_smr, target[0], target[1], margin)
    t_sur, t_smr = densify(item.true_sur, substeps), densify(item.true_smr, substeps)
    nbytes = densify(item.nbytes.astype(np.float64), substeps)
    return meets(float(t_sur[index]), float(t_smr[index]), *target), float(nbytes[index])


def reachable_share(items: Sequence[ItemCurves], target: Target, margin: float) -> float:
    """Share of ``items`` with a level whose predictions reach ``target + margin``.

    On the other items the controller finds no passing level: a real run
    raises ``TargetUnreachable`` (the simulation falls back to the best level).
    """
    if not items:
        raise InputError("no items to evaluate")
    return float(np.mean([bool(_passes(i.pred_sur, i.pred_smr, target[0], target[1], margin).any()) for i in items]))


def hit_rate_and_bytes(
    items: Sequence[ItemCurves], target: Target, margin: float, substeps: int = DEFAULT_SUBSTEPS
) -> tuple[float, float]:
    """Share of ``items`` that hit and their mean bytes with ``margin``."""
    if not items:
        raise InputError("no items to evaluate")
    results = [outcome(item, target, margin, substeps) for item in items]
    return float(np.mean([hit for hit, _ in results])), float(np.mean([b for _, b in results]))
