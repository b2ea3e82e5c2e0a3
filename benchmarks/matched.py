"""Matched-reliability maths: every method has one knob, calibrated to a hit rate, compared at that rate.

Pure arithmetic over items whose every level is labelled (no model, codec or
file): ``rate_savings.py`` loads the items and predictions and calls these.

* A :class:`Method` maps (item, knob value) to the level it would encode and
  how many encodes it spends. Knobs: the level itself (``fixed``), a metric
  threshold reached by bisection (SSIM / VMAF / butteraugli targeting), or a
  margin on a predictor's SUR/SMR (``sursmr``, the cheap-metric regressor).
* :func:`calibrate` picks, on the calibration split, the knob value with the
  fewest mean bytes among those whose hit rate is ≥ h (hit: the labels at
  the chosen level meet every target).
* :func:`oracle_at` is the upper bound at a hit rate: per item, the cheapest
  level whose labels meet the targets, for the items where that costs least
  over the cheapest level; the other items get the cheapest level (a miss).
* :func:`bootstrap` resamples source photos (items of one photo move
  together) for 95 % intervals of the saving against ``fixed`` and of the
  share of the oracle's saving.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sursmr.confidence import cheapest_meeting, meets
from sursmr.rate_control import Probe, Targets, search
from sursmr_core.errors import TargetUnreachable
from sursmr_core.levels import LevelAxis

FloatArray = npt.NDArray[np.float64]
Target = tuple[float | None, float | None]


@dataclass
class BenchItem:
    """One image × codec, levels ordered worst → best quality, every level labelled (proxy labels).

    ``preds``: per predictor name, (SUR, SMR) predictions per level;
    ``level_seconds``: encode + decode seconds per level (from the build);
    ``metric_seconds``: seconds per level of each stored metric.
    """

    item_id: str
    codec: str
    group: str
    levels: list[int]
    nbytes: FloatArray
    sur: FloatArray
    smr: FloatArray
    scores: dict[str, FloatArray] = field(default_factory=dict)
    preds: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    level_seconds: float = 0.0
    metric_seconds: dict[str, float] = field(default_factory=dict)
    pred_seconds: dict[str, float] = field(default_factory=dict)

    def hit(self, index: int, target: Target) -> bool:
        return meets(float(self.sur[index]), float(self.smr[index]), *target)


@dataclass(frozen=True)
class Choice:
    index: int
    encodes: int
    seconds: float


class Method:
    """A level-picking rule with one knob; subclasses define :meth:`knobs` and :meth:`choose`."""

    name = "method"
    knob_name = "knob"

    def knobs(self, items: Sequence[BenchItem], target: Target) -> list[float]:
        raise NotImplementedError

    def choose(self, item: BenchItem, target: Target, knob: float) -> Choice:
        raise NotImplementedError

    def available(self, item: BenchItem) -> bool:
        return True


class FixedLevel(Method):
    """Always the same level (knob: its position on the codec's labelled levels, worst → best)."""

    name = "fixed"
    knob_name = "level index"

    def knobs(self, items: Sequence[BenchItem], target: Target) -> list[float]:
        return [float(i) for i in range(max(len(item.levels) for item in items))]

    def choose(self, item: BenchItem, target: Target, knob: float) -> Choice:
        index = min(int(knob), len(item.levels) - 1)
        return Choice(index, 1, item.level_seconds)


def bisect_threshold(values: FloatArray, threshold: float) -> tuple[int, int]:
    """Most compressed index with ``values ≥ threshold`` by bisection (best level probed first); (index, probes).

    Like jpeg-recompress / ab-av1 / cjpegli's search: assumes the metric
    grows with the level; returns the best level when even it falls short.
    """
    lo, hi, probes = -1, len(values) - 1, 1
    if values[hi] < threshold:
        return hi, probes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probes += 1
        if values[mid] >= threshold:
            hi = mid
        else:
            lo = mid
    return hi, probes


class MetricTarget(Method):
    """Bisection to a metric threshold (knob: the threshold); ``lower_is_better`` metrics are negated."""

    knob_name = "threshold"

    def __init__(self, name: str, metric: str, lower_is_better: bool = False, sweep: int = 80) -> None:
        self.name = name
        self.metric = metric
        self.sign = -1.0 if lower_is_better else 1.0
        self.sweep = sweep

    def available(self, item: BenchItem) -> bool:
        return self.metric in item.scores

    def knobs(self, items: Sequence[BenchItem], target: Target) -> list[float]:
        values = np.concatenate([self.sign * item.scores[self.metric] for item in items if self.available(item)])
        if values.size == 0:
            return []
        return sorted({float(v) for v in np.quantile(values, np.linspace(0.0, 1.0, self.sweep))})

    def choose(self, item: BenchItem, target: Target, knob: float) -> Choice:
        index, probes = bisect_threshold(self.sign * item.scores[self.metric], knob)
        cost = item.level_seconds + item.metric_seconds.get(self.metric, 0.0)
        return Choice(index, probes, probes * cost)


def margin_search(sur: FloatArray, smr: FloatArray, target: Target, margin: float) -> tuple[int, int]:
    """The rate controller (``sursmr.rate_control.search``, bisect) over an item's levels; (index, probes).

    Predictions must reach ``target + margin`` (a negative margin lowers the
    bar: the benchmark sweeps it both ways). When no level passes, the best
    level is taken (what a user does after ``TargetUnreachable``). The bisect
    strategy decides on "meets the SUR target" and "meets every target"
    alone, so results are memoised on those two patterns.
    """

    def shifted(value: float | None) -> float | None:
        return None if value is None else min(1.0, max(0.0, value + margin))

    wanted = Targets(shifted(target[0]), shifted(target[1]), 0.0)
    smr_known = np.where(np.isnan(smr), 1.0, smr)
    sur_ok = np.ones(len(sur), dtype=bool) if wanted.sur is None else sur >= wanted.sur
    all_ok = sur_ok & (True if wanted.smr is None else smr_known >= wanted.smr)
    key = (wanted.sur is None, wanted.smr is None, sur_ok.tobytes(), all_ok.tobytes())
    if key not in _SEARCHES:
        _SEARCHES[key] = _search(sur, smr_known, wanted)
    return _SEARCHES[key]


_SEARCHES: dict[tuple[bool, bool, bytes, bytes], tuple[int, int]] = {}


def _search(sur: FloatArray, smr: FloatArray, wanted: Targets) -> tuple[int, int]:
    def evaluate(indices: Sequence[int]) -> list[Probe]:
        return [Probe(i, i, float(sur[i]), float(smr[i])) for i in indices]  # bytes grow with the index

    try:
        result = search(LevelAxis(0, len(sur) - 1, "higher"), evaluate, wanted)
        return int(result.best.level), len(result.probes)
    except TargetUnreachable as exc:
        return len(sur) - 1, len(exc.probes)


class PredictorMargin(Method):
    """The rate controller on one predictor's SUR/SMR (knob: the margin added to the targets)."""

    knob_name = "margin"

    def __init__(self, name: str, predictor: str, grid: Sequence[float] | None = None) -> None:
        self.name = name
        self.predictor = predictor
        self.grid = list(grid) if grid is not None else [round(-0.3 + 0.01 * i, 2) for i in range(81)]
        self._cache: dict[tuple[str, Target, float], tuple[int, int]] = {}

    def available(self, item: BenchItem) -> bool:
        return self.predictor in item.preds

    def knobs(self, items: Sequence[BenchItem], target: Target) -> list[float]:
        return list(self.grid)

    def choose(self, item: BenchItem, target: Target, knob: float) -> Choice:
        key = (item.item_id, target, knob)
        if key not in self._cache:
            sur, smr = item.preds[self.predictor]
            self._cache[key] = margin_search(sur, smr, target, knob)
        index, probes = self._cache[key]
        cost = item.level_seconds + item.pred_seconds.get(self.predictor, 0.0)
        return Choice(index, probes, probes * cost)


# --- evaluating a knob -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Per-item results of one method at one knob value, in the order of the items."""

    nbytes: FloatArray
    hits: npt.NDArray[np.bool_]
    encodes: FloatArray
    seconds: FloatArray
    sur: FloatArray  # the SUR label at the chosen level

    @property
    def hit_rate(self) -> float:
        return float(self.hits.mean()) if self.hits.size else math.nan

    @property
    def mean_bytes(self) -> float:
        return float(self.nbytes.mean()) if self.nbytes.size else math.nan


def run(method: Method, items: Sequence[BenchItem], target: Target, knob: float) -> Outcome:
    choices = [method.choose(item, target, knob) for item in items]
    return Outcome(
        nbytes=np.array([item.nbytes[c.index] for item, c in zip(items, choices, strict=True)], dtype=np.float64),
        hits=np.array([item.hit(c.index, target) for item, c in zip(items, choices, strict=True)], dtype=bool),
        encodes=np.array([c.encodes for c in choices], dtype=np.float64),
        seconds=np.array([c.seconds for c in choices], dtype=np.float64),
        sur=np.array([item.sur[c.index] for item, c in zip(items, choices, strict=True)], dtype=np.float64),
    )


def sweep(method: Method, items: Sequence[BenchItem], target: Target, knobs: Sequence[float]) -> list[Outcome]:
    return [run(method, items, target, knob) for knob in knobs]


def calibrate(
    method: Method, items: Sequence[BenchItem], target: Target, required: float
) -> tuple[float | None, list[float], list[Outcome]]:
    """The knob value with the fewest mean bytes among those reaching hit rate ≥ ``required`` on ``items``.

    Returns (knob or None when no value reaches it, the knobs tried, their outcomes).
    """
    knobs = method.knobs(items, target)
    outcomes = sweep(method, items, target, knobs)
    best = cheapest_meeting([o.hit_rate for o in outcomes], [o.mean_bytes for o in outcomes], required)
    return (None if best is None else knobs[best]), knobs, outcomes


# --- the oracle ----------------------------------------------------------------------------


def oracle_choices(items: Sequence[BenchItem], target: Target, satisfied: int) -> list[int]:
    """Level indices of the label oracle that satisfies ``satisfied`` items (as many as it can) at least cost.

    Each item costs its cheapest level when missed, its cheapest passing
    level when satisfied; the items with the smallest extra cost are satisfied.
    """
    cheapest = [int(np.argmin(item.nbytes)) for item in items]
    passing: list[int | None] = []
    for item in items:
        ok = [i for i in range(len(item.levels)) if item.hit(i, target)]
        passing.append(min(ok, key=lambda i: item.nbytes[i]) if ok else None)
    extra = [
        (float(item.nbytes[p] - item.nbytes[c]), n)
        for n, (item, p, c) in enumerate(zip(items, passing, cheapest, strict=True))
        if p is not None
    ]
    chosen = list(cheapest)
    for _, n in sorted(extra)[: max(0, satisfied)]:
        p = passing[n]
        if p is not None:
            chosen[n] = p
    return chosen


def oracle_at(items: Sequence[BenchItem], target: Target, hit_rate: float) -> Outcome:
    """The oracle satisfying ⌈hit_rate · n⌉ items (fewer when fewer can be); encodes = every level."""
    need = math.ceil(hit_rate * len(items) - 1e-9)
    chosen = oracle_choices(items, target, need)
    return Outcome(
        nbytes=np.array([item.nbytes[i] for item, i in zip(items, chosen, strict=True)], dtype=np.float64),
        hits=np.array([item.hit(i, target) for item, i in zip(items, chosen, strict=True)], dtype=bool),
        encodes=np.array([len(item.levels) for item in items], dtype=np.float64),
        seconds=np.full(len(items), math.nan),
        sur=np.array([item.sur[i] for item, i in zip(items, chosen, strict=True)], dtype=np.float64),
    )


# --- savings and bootstrap ---------------------------------------------------------------


def saving(method_bytes: float, fixed_bytes: float) -> float:
    """1 − method / fixed (positive: fewer bytes than the fixed level)."""
    return 1.0 - method_bytes / fixed_bytes


def oracle_share(method_bytes: float, fixed_bytes: float, oracle_bytes: float) -> float | None:
    """(fixed − method) / (fixed − oracle); None when the oracle saves nothing over fixed."""
    gap = fixed_bytes - oracle_bytes
    return None if gap <= 0 else (fixed_bytes - method_bytes) / gap


def bootstrap(
    groups: Sequence[str],
    statistic: Callable[[FloatArray], float | None],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of ``statistic(weights)`` over resampled groups (source photos).

    ``statistic`` gets one weight per item (how many times its group was
    drawn) and returns a number or None (skipped). None when fewer than half
    the resamples give a number.
    """
    names = sorted(set(groups))
    index = np.array([names.index(g) for g in groups])
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=resamples)
    values = []
    for row in counts:
        value = statistic(row[index].astype(np.float64))
        if value is not None and math.isfinite(value):
            values.append(value)
    if len(values) < resamples / 2:
        return None
    tail = (1.0 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def weighted_mean(values: FloatArray, weights: FloatArray) -> float:
    total = float(weights.sum())
    return math.nan if total == 0 else float((values * weights).sum() / total)


def describe(outcome: Outcome) -> dict[str, Any]:
    return {
        "mean_bytes": outcome.mean_bytes,
        "hit_rate": outcome.hit_rate,
        "encodes": float(outcome.encodes.mean()) if outcome.encodes.size else math.nan,
        "seconds": float(np.nanmean(outcome.seconds)) if np.isfinite(outcome.seconds).any() else None,
    }
