"""The observer model of the absolute SUR PROXY: log-normal thresholds, JND-scaled metrics, a calibration's config.

Constants only (no registry, no images); see :mod:`training.labels.jnd_proxy`
for the model in words.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from sursmr_core.errors import InputError

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
