"""An ABSOLUTE SUR PROXY from JND-calibrated metrics and a simulated observer population.

SUR (satisfied-user ratio) is the share of viewers who see no difference
between an original and its compressed version. Here each simulated
observer looks through one metric whose scale is tied to just-noticeable
differences (butteraugli, SSIMULACRA2, VMAF) and has a personal threshold on
that metric's *distance* (how far the pair is from "identical"); the
observer is satisfied while the distance stays below the threshold.
Thresholds are log-normal across observers, so per metric, in closed form,

    SUR_m(d) = 1 − F_m(d),   F_m(d) = Φ((ln d − ln median_m) / σ_m),   F_m(0) = 0.

Observers are assigned to metrics in proportion to each metric's ``weight``,
so the ensemble SUR is the weighted mean of the per-metric SURs over the
metrics at hand. Unlike Eq. 3 (:mod:`training.labels.pseudo_sur`) nothing is
normalised over a level set: an image against itself gets SUR = 1, a set of
mild levels stays near 1, and SUR never increases when a metric's distance
grows. It is still a PROXY: simulated observers, not people.

Calibrations are named and registered in :data:`JND_PROXIES`:

- ``strict``: the first constants, published rules of thumb (butteraugli 1.0,
  SSIMULACRA2 70, "6 VMAF points noticed by 75 %") read as median thresholds.
  Much stricter than people measured in KonJND-1k.
- ``konjnd`` (the default): each metric's median threshold fitted so that the
  median per-image 50 %-SUR point of JPEG over our photo crops lands on the
  KonJND-1k anchor (:func:`fit_threshold_median`; the fit, its sources and the
  remaining mismatch are in ``docs/proxy_calibration.md``, made by
  ``benchmarks/proxy_calibration.py``).

:func:`fit_from_jnd_points` re-fits a metric's threshold distribution from
real per-subject JND points (KonJND-1k, MCL-JCI...) when a user has them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from sursmr_core.errors import InputError, LabellerUnavailableError
from sursmr_core.imaging import RGBImage, check_rgb
from sursmr_core.registry import Registry
from training.metrics.base import METRICS

FloatArray = npt.NDArray[np.float64]

DEFAULT_LOG_SIGMA = 0.5
"""ASSUMPTION (not measured here): spread of ln(threshold) across observers.

0.5 puts the 10th–90th percentile observers a factor e^(2·1.2816·0.5) ≈ 3.6
apart in distance. Replace it by fitting real per-subject JND points
(:func:`fit_from_jnd_points`)."""


@dataclass(frozen=True)
class LogNormalThreshold:
    """Observers' JND thresholds on a metric distance: ln T ~ Normal(ln ``median``, ``log_sigma``²)."""

    median: float
    log_sigma: float

    def __post_init__(self) -> None:
        if not (self.median > 0 and math.isfinite(self.median)):
            raise InputError(f"threshold median must be a positive number, got {self.median}")
        if not (self.log_sigma > 0 and math.isfinite(self.log_sigma)):
            raise InputError(f"threshold log_sigma must be a positive number, got {self.log_sigma}")

    @classmethod
    def from_anchor(cls, distance: float, share_noticing: float, log_sigma: float) -> LogNormalThreshold:
        """The distribution in which a share ``share_noticing`` (0..1) of observers notices ``distance``."""
        if not 0.0 < share_noticing < 1.0:
            raise InputError(f"share_noticing must be strictly between 0 and 1, got {share_noticing}")
        if distance <= 0:
            raise InputError(f"anchor distance must be positive, got {distance}")
        median = distance / math.exp(float(ndtri(share_noticing)) * log_sigma)
        return cls(median=median, log_sigma=log_sigma)

    def share_noticing(self, distance: npt.ArrayLike) -> FloatArray:
        """F(d): share of observers whose threshold is below distance ``d`` (≥ 0); 0 at d = 0."""
        d = np.asarray(distance, dtype=np.float64)
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(d, 0.0)) - math.log(self.median)) / self.log_sigma
        return np.asarray(ndtr(z), dtype=np.float64)


@dataclass(frozen=True)
class JndScale:
    """How one registered metric maps to a JND distance, and its observers' thresholds.

    ``distance = max(0, value − identity_value)`` for lower-is-better metrics,
    ``max(0, identity_value − value)`` otherwise, in the metric's own units.
    ``min_side`` is the smallest short image side (px) at which the
    calibration is meant to hold; ``source`` says where the constants come from.
    """

    metric: str
    identity_value: float
    lower_is_better: bool
    threshold: LogNormalThreshold
    weight: float = 1.0
    min_side: int = 16
    source: str = ""

    def distance(self, values: npt.ArrayLike) -> FloatArray:
        v = np.asarray(values, dtype=np.float64)
        if np.isnan(v).any():
            raise InputError(f"{self.metric}: NaN metric value")
        gap = v - self.identity_value if self.lower_is_better else self.identity_value - v
        return np.asarray(np.maximum(gap, 0.0), dtype=np.float64)

    def sur(self, values: npt.ArrayLike) -> FloatArray:
        """Share of this metric's observers who see no difference, in [0, 1]."""
        return np.asarray(1.0 - self.threshold.share_noticing(self.distance(values)), dtype=np.float64)


BUTTERAUGLI_3NORM = JndScale(
    metric="butteraugli_3norm",
    identity_value=0.0,
    lower_is_better=True,
    # butteraugli's unit: distance 1.0 is designed as the just-noticeable point (libjxl/butteraugli
    # docs; cjxl -d 1.0 is its "visually lossless" setting), read here as "half the observers notice".
    # The 3-norm rather than the max: the max is the single worst spot and already exceeds 1.0 at
    # JPEG quality 95 (1.48 on a 256x256 photo crop, measured here), which most viewers accept.
    threshold=LogNormalThreshold.from_anchor(distance=1.0, share_noticing=0.5, log_sigma=DEFAULT_LOG_SIGMA),
    source="butteraugli/libjxl: distance 1.0 = just noticeable; spread assumed",
)

SSIMULACRA2 = JndScale(
    metric="ssimulacra2",
    identity_value=100.0,
    lower_is_better=False,
    # cloudinary/ssimulacra2 README: 70 = "distortion barely noticeable by an average observer in a
    # side-by-side comparison at 1:1"; read as the median observer's threshold (distance 30).
    # Consistent with its other bands (80: not noticeable side by side; 90: visually lossless).
    threshold=LogNormalThreshold.from_anchor(distance=30.0, share_noticing=0.5, log_sigma=DEFAULT_LOG_SIGMA),
    # under 256 px the metric drops scales and its weights misalign (see training.metrics.ssimulacra2_metric)
    min_side=256,
    source="ssimulacra2 README quality bands (70 ≈ barely noticeable side by side); spread assumed",
)

VMAF = JndScale(
    metric="vmaf",
    # VMAF of a still image against itself with vmaf_v0.6.1 (temporal feature 0), measured here on
    # 64x96 and 256x256 photo crops: 97.428; 17x33 gave 96.31, hence min_side.
    identity_value=97.428,
    lower_is_better=False,
    # "a 6-point VMAF difference is a just-noticeable difference, noticed by 75% of viewers"
    # (J. Ozer, Streaming Learning Center, "Finding the Just Noticeable Difference with Netflix VMAF").
    threshold=LogNormalThreshold.from_anchor(distance=6.0, share_noticing=0.75, log_sigma=DEFAULT_LOG_SIGMA),
    min_side=64,
    source="6 VMAF points = JND noticed by 75% (Ozer/Netflix rule of thumb); spread assumed",
)


@dataclass(frozen=True)
class JndProxyConfig:
    """The metrics of the absolute proxy and their calibration (all constants live here).

    ``name`` is how recipes and label records refer to it (see :data:`JND_PROXIES`).
    """

    scales: tuple[JndScale, ...] = (BUTTERAUGLI_3NORM, SSIMULACRA2, VMAF)
    name: str = "custom"
    description: str = ""

    def __post_init__(self) -> None:
        names = [s.metric for s in self.scales]
        if not names or len(set(names)) != len(names):
            raise InputError(f"a JND proxy needs one or more distinct metrics, got {names}")
        if any(not (s.weight > 0) for s in self.scales):
            raise InputError("every JND scale weight must be positive")

    def scale(self, metric: str) -> JndScale:
        for s in self.scales:
            if s.metric == metric:
                return s
        raise InputError(f"metric {metric!r} is not in this JND proxy; it has {[s.metric for s in self.scales]}")

    def with_scale(self, new: JndScale) -> JndProxyConfig:
        """A copy with the scale of ``new.metric`` replaced (or added) in place."""
        if any(s.metric == new.metric for s in self.scales):
            return dataclasses.replace(self, scales=tuple(new if s.metric == new.metric else s for s in self.scales))
        return dataclasses.replace(self, scales=(*self.scales, new))


JND_PROXIES: Registry[JndProxyConfig] = Registry("JND proxy")
"""Named calibrations of the absolute SUR proxy; recipes name the one they label with."""

STRICT_JND_PROXY = JND_PROXIES.register(
    JndProxyConfig(
        name="strict",
        description="published rules of thumb read as median thresholds (the first calibration); strict",
    )
)

# KonJND-1k anchor of the fit: the median over images of the per-image JPEG JND quality factor is
# taken as the middle of the published per-image range 31..79 (Bondžulić et al., Vojnotehnički
# glasnik 72(3), 2024, on KonJND-1k). Medians below: fitted by benchmarks/proxy_calibration.py
# (fit_threshold_median) on the photo crops of benchmarks/results/proxy_calibration_sweep.json;
# that script checks these constants against a fresh fit. The spread: one σ for all metrics, fitted
# (fit_log_sigma) so that the median per-image distance between the SUR 0.75 and 0.25 points, on the
# log of libjpeg's quantiser scale, equals that between the 25th and 75th percentile subjects of
# MCL-JCI's per-subject first-JND data (Jin et al. 2016; docs/proxy_calibration.md).
KONJND_JPEG_JND_QF = 55.0
KONJND_FITTED_MEDIANS = {"butteraugli_3norm": 1.4389, "ssimulacra2": 32.1722, "vmaf": 5.6859}
KONJND_FITTED_LOG_SIGMA = 0.1873


def _konjnd_proxy() -> JndProxyConfig:
    config = dataclasses.replace(
        STRICT_JND_PROXY,
        name="konjnd",
        description=(
            f"median thresholds fitted to KonJND-1k's JPEG JND quality factor (median {KONJND_JPEG_JND_QF:g}), "
            "spread to MCL-JCI's within-image spread"
        ),
    )
    for metric, median in KONJND_FITTED_MEDIANS.items():
        scale = config.scale(metric)
        threshold = LogNormalThreshold(median=median, log_sigma=KONJND_FITTED_LOG_SIGMA)
        config = config.with_scale(
            dataclasses.replace(
                scale,
                threshold=threshold,
                source="median fitted to KonJND-1k, spread to MCL-JCI (docs/proxy_calibration.md)",
            )
        )
    return config


KONJND_JND_PROXY = JND_PROXIES.register(_konjnd_proxy())
DEFAULT_JND_PROXY_NAME = "konjnd"
DEFAULT_JND_PROXY = JND_PROXIES.get(DEFAULT_JND_PROXY_NAME)


def jnd_proxy(name: str) -> JndProxyConfig:
    """The registered calibration called ``name`` (:class:`~sursmr_core.errors.UnknownNameError` if none)."""
    return JND_PROXIES.get(name)


def per_metric_sur(
    values: Mapping[str, npt.ArrayLike], config: JndProxyConfig = DEFAULT_JND_PROXY
) -> dict[str, FloatArray]:
    """SUR of each configured metric present in ``values`` (metric → value or array of values)."""
    return {s.metric: s.sur(values[s.metric]) for s in config.scales if s.metric in values}


def jnd_sur(values: Mapping[str, npt.ArrayLike], config: JndProxyConfig = DEFAULT_JND_PROXY) -> FloatArray:
    """Absolute SUR PROXY in [0, 1] from metric values (scalars or equal-shape arrays).

    Uses the configured metrics found in ``values`` (others are ignored) and
    averages their SURs with the configured weights: each simulated observer
    belongs to one metric, chosen in proportion to its weight.
    """
    used = [s for s in config.scales if s.metric in values]
    if not used:
        raise InputError(
            f"no JND-calibrated metric among {sorted(values)}; expected some of {[s.metric for s in config.scales]}"
        )
    surs = np.stack(np.broadcast_arrays(*(s.sur(values[s.metric]) for s in used)))
    weights = np.array([s.weight for s in used], dtype=np.float64).reshape((-1,) + (1,) * (surs.ndim - 1))
    return np.asarray((surs * weights).sum(axis=0) / weights.sum(), dtype=np.float64)


def usable_scales(height: int, width: int, config: JndProxyConfig = DEFAULT_JND_PROXY) -> list[JndScale]:
    """Scales whose metric can run here and whose calibration holds at this image size."""
    return [
        s for s in config.scales if min(height, width) >= s.min_side and METRICS.get(s.metric).availability().available
    ]


def jnd_metric_values(
    reference: RGBImage, distorted: RGBImage, config: JndProxyConfig = DEFAULT_JND_PROXY
) -> dict[str, float]:
    """Values of the usable JND-calibrated metrics for one pair (see :func:`usable_scales`)."""
    check_rgb(reference, name="reference")
    scales = usable_scales(reference.shape[0], reference.shape[1], config)
    if not scales:
        reasons = {
            s.metric: METRICS.get(s.metric).availability().reason or f"needs a short side ≥ {s.min_side} px"
            for s in config.scales
        }
        raise LabellerUnavailableError(f"no JND-calibrated metric usable for this image: {reasons}")
    return {s.metric: METRICS.get(s.metric)().score(reference, distorted) for s in scales}


def jnd_sur_for_images(reference: RGBImage, distorted: RGBImage, config: JndProxyConfig = DEFAULT_JND_PROXY) -> float:
    """Absolute SUR PROXY of one decoded version against its reference, in [0, 1]."""
    return float(jnd_sur(jnd_metric_values(reference, distorted, config), config))


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
