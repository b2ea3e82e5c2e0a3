"""The named calibrations of the absolute SUR PROXY (:data:`JND_PROXIES`) and the SUR they give for metric values.

Every function here takes a :class:`JndProxyConfig` and defaults to the
registered default calibration (``konjnd``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError, LabellerUnavailableError
from sursmr_core.imaging import RGBImage, check_rgb
from sursmr_core.registry import Registry
from training.labels.jnd_proxy.observers import FloatArray, JndProxyConfig, JndScale, LogNormalThreshold
from training.metrics.base import METRICS

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
