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

Parts: :mod:`~training.labels.jnd_proxy.observers` (the observer model),
:mod:`~training.labels.jnd_proxy.calibrations` (the registry and the SUR of
metric values), :mod:`~training.labels.jnd_proxy.fit` (fitting); every name is
re-exported here.
"""

from __future__ import annotations

from training.labels.jnd_proxy.calibrations import (
    DEFAULT_JND_PROXY,
    DEFAULT_JND_PROXY_NAME,
    JND_PROXIES,
    KONJND_FITTED_LOG_SIGMA,
    KONJND_FITTED_MEDIANS,
    KONJND_JND_PROXY,
    KONJND_JPEG_JND_QF,
    STRICT_JND_PROXY,
    jnd_metric_values,
    jnd_proxy,
    jnd_sur,
    jnd_sur_for_images,
    per_metric_sur,
    usable_scales,
)
from training.labels.jnd_proxy.fit import (
    JndPoint,
    fit_from_jnd_points,
    fit_log_sigma,
    fit_threshold_median,
    jnd_point,
    median_jnd_level,
    median_sur_width,
    with_log_sigma,
)
from training.labels.jnd_proxy.observers import (
    BUTTERAUGLI_3NORM,
    DEFAULT_LOG_SIGMA,
    SSIMULACRA2,
    VMAF,
    FloatArray,
    JndProxyConfig,
    JndScale,
    LogNormalThreshold,
)

__all__ = [
    "BUTTERAUGLI_3NORM",
    "DEFAULT_JND_PROXY",
    "DEFAULT_JND_PROXY_NAME",
    "DEFAULT_LOG_SIGMA",
    "JND_PROXIES",
    "KONJND_FITTED_LOG_SIGMA",
    "KONJND_FITTED_MEDIANS",
    "KONJND_JND_PROXY",
    "KONJND_JPEG_JND_QF",
    "SSIMULACRA2",
    "STRICT_JND_PROXY",
    "VMAF",
    "FloatArray",
    "JndPoint",
    "JndProxyConfig",
    "JndScale",
    "LogNormalThreshold",
    "fit_from_jnd_points",
    "fit_log_sigma",
    "fit_threshold_median",
    "jnd_metric_values",
    "jnd_point",
    "jnd_proxy",
    "jnd_sur",
    "jnd_sur_for_images",
    "median_jnd_level",
    "median_sur_width",
    "per_metric_sur",
    "usable_scales",
    "with_log_sigma",
]
