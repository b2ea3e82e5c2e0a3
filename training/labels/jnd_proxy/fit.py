"""Fitting the absolute SUR PROXY: from per-subject JND points, and against published per-image JND statistics.

:func:`fit_from_jnd_points` re-fits one metric's thresholds from real
per-subject data; the rest (JND points of a SUR curve, the median and the
spread fits) is what ``benchmarks/proxy_calibration.py`` uses to calibrate
the registered ``konjnd`` proxy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError
from training.labels.jnd_proxy.calibrations import DEFAULT_JND_PROXY, jnd_sur
from training.labels.jnd_proxy.observers import FloatArray, JndProxyConfig, JndScale, LogNormalThreshold


def fit_from_jnd_points(
    metric: str,
    jnd_values: Sequence[float] | npt.ArrayLike,
    config: JndProxyConfig = DEFAULT_JND_PROXY,
) -> JndProxyConfig:
    """Re-fit one metric's observer thresholds from real per-subject JND points.

    ``jnd_values`` holds, for each subject (and image), the metric's value at
    the compressed version where that subject first noticed a difference
    (e.g. butteraugli_3norm of KonJND-1k's per-subject JND images). They are
    turned into distances with the scale's ``identity_value`` and fitted by
    maximum likelihood in log space (median = exp(mean ln d), σ = std ln d
    with ddof=1). Returns a new config; the input is unchanged. Subjects who
    never noticed a difference (right-censored) are not handled: leave them out.
    """
    scale = config.scale(metric)
    v = np.asarray(jnd_values, dtype=np.float64).ravel()
    if v.size < 2:
        raise InputError(f"{metric}: need at least 2 JND points to fit a spread, got {v.size}")
    if not np.isfinite(v).all():
        raise InputError(f"{metric}: JND points must be finite numbers")
    d = scale.distance(v)
    at_identity = int((d <= 0).sum())
    if at_identity:
        raise InputError(
            f"{metric}: {at_identity} JND point(s) sit at or beyond the identity value {scale.identity_value} "
            "(zero distance); drop them or correct identity_value for your data"
        )
    logs = np.log(d)
    sigma = float(np.std(logs, ddof=1))
    if not sigma > 0:
        raise InputError(f"{metric}: all JND points are equal; cannot fit a spread")
    fitted = LogNormalThreshold(median=float(np.exp(logs.mean())), log_sigma=sigma)
    return config.with_scale(
        dataclasses.replace(scale, threshold=fitted, source=f"fitted from {v.size} per-subject JND points")
    )


# --- calibration against published JND points ------------------------------------------------


@dataclass(frozen=True)
class JndPoint:
    """Where a SUR curve crosses a target share, on the codec's level axis.

    ``level`` is linearly interpolated between the two grid levels around the
    crossing. ``censored`` is ``None`` for a crossing inside the grid,
    ``"worse"`` when SUR is at or above the target even at the worst level
    (``level`` is then that level: the true point lies beyond it), and
    ``"better"`` when SUR stays below the target even at the best level
    (``level`` is the best level).
    """

    level: float
    censored: str | None = None


def jnd_point(levels_worst_to_best: npt.ArrayLike, sur: npt.ArrayLike, target: float = 0.5) -> JndPoint:
    """The level at which SUR crosses ``target`` (the 50 %-SUR or JND point for 0.5).

    ``levels_worst_to_best``: the grid, worst quality first (JPEG quality
    ascending, BPG ``-q`` descending); ``sur``: SUR at each level. Walking from
    the best level towards worse ones, the crossing is between the first level
    whose SUR falls below ``target`` and its better neighbour, so a noisy bump
    further down the curve cannot move it.
    """
    lv = np.asarray(levels_worst_to_best, dtype=np.float64).ravel()
    sv = np.asarray(sur, dtype=np.float64).ravel()
    if lv.size != sv.size or lv.size < 2:
        raise InputError(f"need ≥ 2 levels with one SUR each, got {lv.size} levels and {sv.size} SURs")
    if not np.isfinite(sv).all():
        raise InputError("SUR values must be finite")
    if not 0.0 < target < 1.0:
        raise InputError(f"target must be strictly between 0 and 1, got {target}")
    if sv[-1] < target:
        return JndPoint(float(lv[-1]), "better")
    for i in range(lv.size - 1, 0, -1):
        if sv[i - 1] < target:  # crossing between level i-1 (below) and level i (at or above)
            t = (sv[i] - target) / (sv[i] - sv[i - 1])
            return JndPoint(float(lv[i] + t * (lv[i - 1] - lv[i])))
    return JndPoint(float(lv[0]), "worse")


def median_jnd_level(
    scale: JndScale,
    values_per_image: Sequence[npt.ArrayLike],
    levels_worst_to_best: Sequence[npt.ArrayLike],
    target: float = 0.5,
) -> float:
    """Median over images of the level where ``scale``'s SUR crosses ``target`` (censored points at their bound)."""
    if len(values_per_image) != len(levels_worst_to_best) or not values_per_image:
        raise InputError("need one level grid per image, and at least one image")
    points = [
        jnd_point(levels, scale.sur(values), target).level
        for values, levels in zip(values_per_image, levels_worst_to_best, strict=True)
    ]
    return float(np.median(points))


def fit_threshold_median(
    scale: JndScale,
    values_per_image: Sequence[npt.ArrayLike],
    levels_worst_to_best: Sequence[npt.ArrayLike],
    target_level: float,
    *,
    quality_increases_with_level: bool,
    target: float = 0.5,
) -> JndScale:
    """``scale`` with its median threshold set so the median per-image JND point is ``target_level``.

    For one metric with log-normal thresholds the 50 %-SUR point of an image is
    where the metric's distance equals the median threshold, whatever the
    spread; a larger median makes observers more tolerant and moves every
    image's point towards worse levels, so the median over images is monotone
    in it and is found by bisection on its logarithm (to 1e-6 relative). The
    spread is kept. ``quality_increases_with_level``: True for JPEG quality,
    False for QP-like axes. Raises :class:`InputError` when ``target_level``
    cannot be reached inside the grids (it lies beyond the censoring bounds).
    """

    def median_at(log_median: float) -> float:
        trial = dataclasses.replace(
            scale, threshold=LogNormalThreshold(median=math.exp(log_median), log_sigma=scale.threshold.log_sigma)
        )
        return median_jnd_level(trial, values_per_image, levels_worst_to_best, target)

    def too_strict(log_median: float) -> bool:
        level = median_at(log_median)
        return level > target_level if quality_increases_with_level else level < target_level

    lo, hi = math.log(1e-4), math.log(1e4)
    if not too_strict(lo) or too_strict(hi):
        raise InputError(
            f"{scale.metric}: a median JND level of {target_level} lies outside what the level grids can show "
            f"({median_at(lo):g} .. {median_at(hi):g}); widen the grids"
        )
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if too_strict(mid):
            lo = mid
        else:
            hi = mid
    fitted = LogNormalThreshold(median=math.exp(0.5 * (lo + hi)), log_sigma=scale.threshold.log_sigma)
    return dataclasses.replace(scale, threshold=fitted)


def median_sur_width(
    config: JndProxyConfig,
    values_per_image: Sequence[Mapping[str, npt.ArrayLike]],
    levels_worst_to_best: Sequence[npt.ArrayLike],
    *,
    axis: Callable[[FloatArray], FloatArray] | None = None,
    shares: tuple[float, float] = (0.25, 0.75),
) -> float:
    """Median over images of the distance between the points where the ensemble SUR crosses ``shares``.

    Distances are measured on ``axis(level)`` (default: the levels themselves),
    e.g. the log of a codec's quantiser scale, so that widths found at different
    places on the level axis compare. Images whose SUR does not cross both
    shares inside the grid are left out; :class:`InputError` if none is left.
    """
    transform = axis or (lambda x: x)
    widths = []
    for values, levels in zip(values_per_image, levels_worst_to_best, strict=True):
        sur = jnd_sur(values, config)
        low, high = (jnd_point(levels, sur, share) for share in shares)
        if low.censored is None and high.censored is None:
            ends = transform(np.array([low.level, high.level], dtype=np.float64))
            widths.append(abs(float(ends[1] - ends[0])))
    if not widths:
        raise InputError(f"no image's SUR crosses both {shares} inside its level grid")
    return float(np.median(widths))


def with_log_sigma(config: JndProxyConfig, log_sigma: float) -> JndProxyConfig:
    """A copy in which every metric's observers have spread ``log_sigma`` (medians kept)."""
    for scale in config.scales:
        threshold = LogNormalThreshold(median=scale.threshold.median, log_sigma=log_sigma)
        config = config.with_scale(dataclasses.replace(scale, threshold=threshold))
    return config


def fit_log_sigma(
    config: JndProxyConfig,
    values_per_image: Sequence[Mapping[str, npt.ArrayLike]],
    levels_worst_to_best: Sequence[npt.ArrayLike],
    target_width: float,
    *,
    axis: Callable[[FloatArray], FloatArray] | None = None,
    shares: tuple[float, float] = (0.25, 0.75),
) -> float:
    """The common spread σ of ln threshold at which :func:`median_sur_width` equals ``target_width``.

    Wider observer spreads make each image's SUR curve wider, so the width is
    monotone in σ; found by bisection on ln σ in [0.01, 3] (to 1e-4 relative).
    A spread so wide that no image's curve fits in its grid counts as too wide.
    Even at σ → 0 the curve keeps the width that comes from the metrics
    disagreeing about the image; a target below that raises :class:`InputError`.
    """

    def width(log_sigma: float) -> float:
        try:
            return median_sur_width(
                with_log_sigma(config, math.exp(log_sigma)),
                values_per_image,
                levels_worst_to_best,
                axis=axis,
                shares=shares,
            )
        except InputError:
            return math.inf  # no curve fits inside the grids: wider than any grid can show

    lo, hi = math.log(0.01), math.log(3.0)
    if not width(lo) < target_width < width(hi):
        raise InputError(
            f"a median SUR width of {target_width:g} is outside what spreads 0.01..3 give "
            f"({width(lo):g} .. {width(hi):g})"
        )
    while hi - lo > 1e-4:
        mid = 0.5 * (lo + hi)
        if width(mid) < target_width:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
