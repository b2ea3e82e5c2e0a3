"""A cheap-metric baseline: ridge regression from millisecond full-reference metrics to SUR and SMR.

The network has to beat this to justify its cost. Its inputs are metrics
that are NOT used to make the labels (the JND-calibrated SUR proxy uses
butteraugli, SSIMULACRA2 and VMAF; the SMR proxy uses the machine zoo) and
that cost milliseconds per 256×256 pair: PSNR, SSIM, MS-SSIM and GMSD by
default. One ridge model per codec and target, on standardised features and
their squares, fitted by closed form on the train split (NaN SMR labels are
left out of the SMR fit); predictions are clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError
from training.evaluate import Sample

FloatArray = npt.NDArray[np.float64]

CHEAP_METRICS: tuple[str, ...] = ("psnr", "ssim", "ms_ssim", "gmsd")
"""Default inputs: each well under 10 ms per 256×256 pair on one CPU core, none of them a label source."""


def label_metrics() -> frozenset[str]:
    """Metrics the SUR proxy is computed from (a baseline must not use them as inputs)."""
    from training.labels.jnd_proxy import DEFAULT_JND_PROXY

    return frozenset(s.metric for s in DEFAULT_JND_PROXY.scales)


class _Ridge:
    """y ≈ w·[z, z²] + b on standardised z, ridge penalty ``alpha`` (intercept not penalised)."""

    def __init__(self, x: FloatArray, y: FloatArray, alpha: float) -> None:
        self.mean = x.mean(axis=0)
        self.std = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)
        design = self._design(x)
        penalty = alpha * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        self.weights = np.linalg.solve(design.T @ design + penalty, design.T @ y)

    def _design(self, x: FloatArray) -> FloatArray:
        z = (x - self.mean) / self.std
        return np.hstack([np.ones((z.shape[0], 1)), z, z**2])

    def __call__(self, x: FloatArray) -> FloatArray:
        return np.clip(self._design(x) @ self.weights, 0.0, 1.0)


def _transform(metric: str, value: float) -> float:
    """Saturating similarity indices (close to 1) are spread on a log scale: −log(1 − x)."""
    if metric in ("ssim", "ms_ssim"):
        return -math.log(max(1.0 - value, 1e-6))
    return value


class CheapMetricRegressor:
    """Per-codec ridge regression of SUR and SMR on cheap metrics (see the module docstring)."""

    def __init__(self, train: Sequence[Sample], metrics: Sequence[str] = CHEAP_METRICS, alpha: float = 1.0) -> None:
        leaked = sorted(set(metrics) & label_metrics())
        if leaked:
            raise InputError(f"metrics {leaked} make the SUR proxy labels; a fair baseline cannot use them")
        if not metrics:
            raise InputError("the cheap-metric regressor needs at least one metric")
        self.metrics = tuple(metrics)
        self.name = "cheap_ridge"
        self.fits: dict[str, tuple[_Ridge, _Ridge | None]] = {}
        by_codec: dict[str, list[Sample]] = defaultdict(list)
        for s in train:
            if all(m in s.scores and math.isfinite(s.scores[m]) for m in self.metrics):
                by_codec[s.codec].append(s)
        if not by_codec:
            raise InputError(f"no training sample has every metric of {list(self.metrics)} among its stored scores")
        for codec, samples in by_codec.items():
            x = self._matrix([s.scores for s in samples])
            sur_fit = _Ridge(x, np.array([s.sur for s in samples]), alpha)
            known = [i for i, s in enumerate(samples) if not math.isnan(s.smr)]
            smr_fit = _Ridge(x[known], np.array([samples[i].smr for i in known]), alpha) if len(known) > 2 else None
            self.fits[codec] = (sur_fit, smr_fit)

    def _matrix(self, scores: Sequence[Mapping[str, float]]) -> FloatArray:
        return np.array([[_transform(m, float(s[m])) for m in self.metrics] for s in scores], dtype=np.float64)

    def predict_scores(self, codec: str, scores: Sequence[Mapping[str, float]]) -> tuple[FloatArray, FloatArray]:
        """SUR and SMR predictions for one codec's metric values (one mapping per level)."""
        if codec not in self.fits:
            raise InputError(f"the cheap-metric regressor was not fitted on codec {codec!r}")
        missing = sorted({m for s in scores for m in self.metrics if m not in s})
        if missing:
            raise InputError(f"metric value(s) missing: {missing}")
        x = self._matrix(scores)
        sur_fit, smr_fit = self.fits[codec]
        smr = smr_fit(x) if smr_fit is not None else np.full(len(scores), 0.5)
        return sur_fit(x), smr

    def __call__(self, sample: Sample) -> tuple[float, float]:
        if sample.codec not in self.fits or any(m not in sample.scores for m in self.metrics):
            return 0.5, 0.5
        sur, smr = self.predict_scores(sample.codec, [sample.scores])
        return float(sur[0]), float(smr[0])
