"""Paper Eq. 3: the relative pseudo-SUR PROXY from an ensemble of FR-IQA metrics.

For one source image with K compressed versions, each metric's scores are
min-max normalised over those K versions, lower-is-better metrics are
flipped (1 − normalised), and the normalised scores are averaged over the
metrics. The result is a PROXY for SUR (a subjective satisfied-user ratio):
it only ranks the versions of one image against each other — the best
version of every set tends to 1 and the worst to 0 whatever their absolute
quality. For an absolute proxy see :mod:`training.labels.jnd_proxy`.

Declared edge cases:

* NaN scores are refused (:class:`~sursmr_core.errors.InputError`): a failed
  metric must not silently become a label.
* ±inf (PSNR of identical images) are clipped to the metric's finite range
  over the set. When the finite values alone span no range (e.g. PSNR
  ``[inf, 30]``), the distinct values, infinities included, are spread
  evenly over [0, 1] by rank instead.
* A metric that is constant over the set carries no ranking information and
  is dropped from the average for that set (giving it 1.0 would bias labels
  up). When every metric is constant (e.g. K = 1, or identical versions),
  all versions get 1.0: no metric can tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from training.metrics.base import METRICS

FloatArray = npt.NDArray[np.float64]


def normalise_over_set(values: Sequence[float] | FloatArray) -> FloatArray | None:
    """Min-max normalise one metric over one image's K versions to [0, 1].

    Returns None when the metric is constant over the set. See the module
    docstring for infinities; NaN raises :class:`InputError`.
    """
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise InputError("a metric score is NaN; fix or drop that metric before making Eq. 3 labels")
    finite = v[np.isfinite(v)]
    if finite.size and finite.max() > finite.min():
        lo, hi = float(finite.min()), float(finite.max())
        clipped = np.clip(v, lo, hi)
        return np.asarray((clipped - lo) / (hi - lo), dtype=np.float64)
    distinct = np.unique(v)
    if distinct.size < 2:
        return None
    ranks = np.searchsorted(distinct, v).astype(np.float64)
    return np.asarray(ranks / (distinct.size - 1), dtype=np.float64)


def eq3_pseudo_sur(
    scores: Mapping[str, Sequence[float] | FloatArray], lower_is_better: Mapping[str, bool]
) -> FloatArray:
    """Eq. 3 pseudo-SUR PROXY of K versions of one image.

    ``scores[metric][k]`` is the metric's value for version k (all metrics
    over the same K ≥ 1 versions, in the same order); ``lower_is_better``
    gives each metric's direction. Returns shape (K,), float64 in [0, 1],
    1 = best of this set by the ensemble (not an absolute quality).
    """
    if not scores:
        raise InputError("Eq. 3 needs scores from at least one metric")
    lengths = {name: len(values) for name, values in scores.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"every metric must score the same versions; got lengths {lengths}")
    count = next(iter(lengths.values()))
    if count < 1:
        raise InputError("Eq. 3 needs at least one compressed version")
    missing = sorted(set(scores) - set(lower_is_better))
    if missing:
        raise InputError(f"no direction (lower_is_better) given for metrics {missing}")
    columns: list[FloatArray] = []
    for name, values in scores.items():
        try:
            normalised = normalise_over_set(values)
        except InputError as exc:
            raise InputError(f"metric {name!r}: {exc}") from None
        if normalised is None:
            continue
        columns.append(1.0 - normalised if lower_is_better[name] else normalised)
    if not columns:
        return np.ones(count, dtype=np.float64)
    return np.asarray(np.mean(np.stack(columns), axis=0), dtype=np.float64)


def score_versions(
    reference: RGBImage, versions: Sequence[RGBImage], metric_names: Sequence[str]
) -> dict[str, FloatArray]:
    """Score each decoded version against ``reference`` with each named registered metric.

    Returns ``{metric: array of shape (K,)}``. Unknown names raise
    :class:`~sursmr_core.errors.UnknownNameError`; unavailable metrics raise
    :class:`~sursmr_core.errors.LabellerUnavailableError` with their reason.
    """
    scored: dict[str, FloatArray] = {}
    for name in metric_names:
        metric = METRICS.get(name)()
        scored[name] = np.array([metric.score(reference, version) for version in versions], dtype=np.float64)
    return scored


def pseudo_sur_labels(reference: RGBImage, versions: Sequence[RGBImage], metric_names: Sequence[str]) -> FloatArray:
    """Eq. 3 PROXY labels of ``versions`` of ``reference``, directions taken from the metric registry."""
    scores = score_versions(reference, versions, metric_names)
    directions = {name: METRICS.get(name).lower_is_better for name in metric_names}
    return eq3_pseudo_sur(scores, directions)
