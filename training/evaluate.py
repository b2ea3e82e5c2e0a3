"""Held-out accuracy of a predictor against proxy labels, next to two baselines.

The model is scored through :class:`sursmr.predictor.Predictor`, the same
path ``sursmr compress`` uses (one reference, all its levels in batches).
Baselines, all fitted on the *train* split only (``fit_split`` names another
split for a dataset built without one; reports say which):

* ``level_mean``: the mean label of the training set at the same codec and
  level (what you know from the level alone, without looking at the image);
* ``level_median``: the same with the median, the best constant per level
  under the L1 error the model is trained and scored with (SMR labels are
  shares of a few machines, so their median and mean differ);
* ``<metric>_fit``: a monotone cubic fit, per codec, of the label on one
  full-reference metric (SSIM by default) computed at labelling time;
* ``cheap_ridge``: a ridge regression, per codec, from millisecond metrics
  that make no label (PSNR, SSIM, MS-SSIM, GMSD; :mod:`training.cheap_metrics`).

All labels are proxies (IQA ensemble / JND-calibrated SUR proxy; machine-zoo
SMR); reports say which.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from sursmr.scoring import QualityPredictor
from sursmr_core.errors import InputError
from training.datasets.builder import decode_png
from training.datasets.torch_dataset import LABEL_KEYS

TARGETS = ("sur", "smr")


@dataclass(frozen=True)
class Sample:
    """One labelled (item, level) of a built dataset."""

    item_id: str
    codec: str
    level: int
    sur: float
    smr: float  # NaN where no machine could judge
    scores: Mapping[str, float]


def read_manifest(data: str | Path) -> list[dict[str, Any]]:
    """Every item record of a built dataset's ``manifest.jsonl``."""
    manifest = Path(data) / "manifest.jsonl"
    if not manifest.is_file():
        raise InputError(f"{manifest} not found; build the dataset first (sursmr-train build)")
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_records(data: str | Path, split: str) -> list[dict[str, Any]]:
    return [r for r in read_manifest(data) if r["split"] == split]


def samples_of(record: Mapping[str, Any], label_kind: str) -> Iterator[tuple[int, Sample]]:
    labels = record["labels"]
    sur_values = labels.get(LABEL_KEYS[label_kind]) or []
    smr_values = labels.get("smr") or [None] * len(record["levels"])  # null: no SMR label for the crop
    for i, level in enumerate(record["levels"]):
        sur = sur_values[i] if i < len(sur_values) else None
        if sur is None or not math.isfinite(float(sur)):
            continue
        smr = smr_values[i]
        yield (
            i,
            Sample(
                item_id=record["item_id"],
                codec=record["codec"],
                level=int(level),
                sur=float(sur),
                smr=math.nan if smr is None else float(smr),
                scores={name: float(values[i]) for name, values in labels.get("scores", {}).items()},
            ),
        )


# --- baselines -------------------------------------------------------------------------


class LevelMeanBaseline:
    """Mean training label per (codec, level); falls back to the codec's mean for unseen levels."""

    name = "level_mean"
    statistic: Callable[[Sequence[float]], float] = staticmethod(lambda v: float(np.mean(v)))

    def __init__(self, train: Sequence[Sample]) -> None:
        groups: dict[tuple[str, int], list[Sample]] = defaultdict(list)
        by_codec: dict[str, list[Sample]] = defaultdict(list)
        for s in train:
            groups[(s.codec, s.level)].append(s)
            by_codec[s.codec].append(s)
        self.table = {key: self._summary(values) for key, values in groups.items()}
        self.fallback = {codec: self._summary(values) for codec, values in by_codec.items()}

    def _summary(self, values: Sequence[Sample]) -> tuple[float, float]:
        smr = [v.smr for v in values if not math.isnan(v.smr)]
        return self.statistic([v.sur for v in values]), self.statistic(smr) if smr else 0.5

    def __call__(self, sample: Sample) -> tuple[float, float]:
        return self.table.get((sample.codec, sample.level)) or self.fallback.get(sample.codec, (0.5, 0.5))


class LevelMedianBaseline(LevelMeanBaseline):
    """Median training label per (codec, level): the best level-only constant under L1."""

    name = "level_median"
    statistic = staticmethod(lambda v: float(np.median(v)))


class MetricFitBaseline:
    """Per codec, label ≈ cubic polynomial of one metric, fitted by least squares on train, clipped to [0, 1]."""

    def __init__(self, train: Sequence[Sample], metric: str = "ssim") -> None:
        self.metric = metric
        self.name = f"{metric}_fit"
        self.fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        by_codec: dict[str, list[Sample]] = defaultdict(list)
        for s in train:
            if metric in s.scores:
                by_codec[s.codec].append(s)
        if not by_codec:
            raise InputError(f"metric {metric!r} is not among the dataset's stored scores")
        for codec, values in by_codec.items():
            x = np.array([v.scores[metric] for v in values])
            sur_fit = np.polyfit(x, [v.sur for v in values], deg=min(3, max(1, len(set(x)) - 1)))
            known = [v for v in values if not math.isnan(v.smr)]
            smr_fit = (
                np.polyfit(
                    [v.scores[metric] for v in known], [v.smr for v in known], deg=min(3, max(0, len(known) - 1))
                )
                if known
                else np.array([0.5])
            )
            self.fits[codec] = (sur_fit, smr_fit)

    def __call__(self, sample: Sample) -> tuple[float, float]:
        fit = self.fits.get(sample.codec)
        value = sample.scores.get(self.metric)
        if fit is None or value is None:
            return 0.5, 0.5
        sur = float(np.clip(np.polyval(fit[0], value), 0.0, 1.0))
        smr = float(np.clip(np.polyval(fit[1], value), 0.0, 1.0))
        return sur, smr


# --- scoring ---------------------------------------------------------------------------


def error_table(samples: Sequence[Sample], predictions: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """MAE, mean signed error (``bias``: prediction − label) and Spearman rank correlation, overall and per codec.

    SMR is scored over the samples that have an SMR label (``smr_samples`` of ``samples``).
    """

    def block(indices: list[int]) -> dict[str, Any]:
        # SMR is missing where too few machines could judge the crop
        labelled = sum(not math.isnan(samples[i].smr) for i in indices)
        out: dict[str, Any] = {"samples": len(indices), "smr_samples": labelled}
        for column, target in enumerate(TARGETS):
            truth = np.array([getattr(samples[i], target) for i in indices])
            pred = np.array([predictions[i][column] for i in indices])
            known = ~np.isnan(truth)
            if not known.any():
                out[f"mae_{target}"] = None
                out[f"bias_{target}"] = None
                out[f"srcc_{target}"] = None
                continue
            out[f"mae_{target}"] = float(np.mean(np.abs(pred[known] - truth[known])))
            out[f"bias_{target}"] = float(np.mean(pred[known] - truth[known]))
            # undefined (None) when either side is constant or too short to rank
            varied = known.sum() > 2 and np.ptp(pred[known]) > 0 and np.ptp(truth[known]) > 0
            rho = spearmanr(pred[known], truth[known]).statistic if varied else math.nan
            out[f"srcc_{target}"] = None if not np.isfinite(rho) else float(rho)
        return out

    table = {"overall": block(list(range(len(samples))))}
    codecs: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        codecs[sample.codec].append(i)
    for codec in sorted(codecs):
        table[codec] = block(codecs[codec])
    return table


def evaluate(
    predictor: QualityPredictor,
    data: str | Path,
    *,
    split: str = "test",
    label_kind: str = "jnd",
    baseline_metric: str = "ssim",
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    fit_split: str = "train",
    cache_key: str | None = None,
) -> dict[str, Any]:
    """MAE/SRCC of ``predictor`` and of the baselines on ``split`` of the dataset at ``data``.

    Baselines are fitted on ``fit_split`` (the train split unless a dataset has none). With
    ``cache_key`` the predictions come from (and go to) :func:`level_predictions`' cache beside the
    dataset, which ``benchmarks/rate_savings.py`` and ``sursmr-train calibrate`` share.
    """
    from training.cheap_metrics import CHEAP_METRICS, CheapMetricRegressor

    if label_kind not in LABEL_KEYS:
        raise InputError(f"label_kind must be one of {sorted(LABEL_KEYS)}")
    if fit_split == split:
        raise InputError(f"baselines must be fitted on another split than the one scored ({split!r})")
    train = [s for r in read_records(data, fit_split) for _, s in samples_of(r, label_kind)]
    if not train:
        raise InputError(f"{data}: the {fit_split} split has no {label_kind} labels to fit baselines on")
    baselines: list[Callable[[Sample], tuple[float, float]]] = [LevelMeanBaseline(train), LevelMedianBaseline(train)]
    if any(baseline_metric in s.scores for s in train):
        baselines.append(MetricFitBaseline(train, baseline_metric))
    if any(all(m in s.scores for m in CHEAP_METRICS) for s in train):
        baselines.append(CheapMetricRegressor(train))
    records = read_records(data, split)[:limit] if limit else read_records(data, split)
    samples: list[Sample] = []
    model_pred: list[tuple[float, float]] = []
    stored_all = None
    if cache_key is not None:
        stored_all = level_predictions(predictor, data, records, cache_key=cache_key, progress=progress)
    for done, record in enumerate(records, start=1):
        chosen = list(samples_of(record, label_kind))
        if not chosen:
            continue
        if stored_all is not None:
            stored = stored_all[str(record["item_id"])]
            scored = [(float(stored["sur"][i]), float(stored["smr"][i])) for i, _ in chosen]
        else:
            with np.load(Path(data) / record["npz"]) as arrays:
                reference = decode_png(arrays["reference_png"])
                decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i, _ in chosen]
            scored = [(p.sur, p.smr) for p in predictor.predict(reference, decoded)]
        samples.extend(s for _, s in chosen)
        model_pred.extend(scored)
        if progress is not None:
            progress(done, len(records))
    if not samples:
        raise InputError(f"{data}: split {split!r} has no labelled samples")
    report: dict[str, Any] = {
        "data": Path(data).name,
        "split": split,
        "baselines_fitted_on": fit_split,
        "labels": {
            "sur": f"proxy: {LABEL_KEYS[label_kind]} (see training/labels)",
            "smr": "proxy: share of satisfied machines of our zoo (training/machines)",
        },
        "model": {"name": getattr(predictor, "name", "model"), **error_table(samples, model_pred)},
        "baselines": {},
    }
    for baseline in baselines:
        name = str(getattr(baseline, "name", "baseline"))
        report["baselines"][name] = error_table(samples, [baseline(s) for s in samples])
    return report


def beats_baselines(report: Mapping[str, Any]) -> bool:
    """True when the model's overall MAE of SUR and SMR is below every baseline's."""
    model = report["model"]["overall"]
    for table in report["baselines"].values():
        for target in TARGETS:
            ours, theirs = model[f"mae_{target}"], table["overall"][f"mae_{target}"]
            if ours is not None and theirs is not None and ours >= theirs:
                return False
    return True


# --- predictions at every level, cached beside the dataset --------------------------------------


def prediction_cache_key(weights: Any) -> str | None:
    """The :func:`level_predictions` cache key of a model card or predictor: ``<name>-<weights SHA-256>``.

    None when the weights have no digest (a run directory or checkpoint): nothing is cached then.
    ``calibrate``, ``evaluate`` and ``benchmarks/rate_savings.py`` share the cache through this key.
    """
    sha = getattr(weights, "weights_sha256", None)
    return f"{weights.name}-{sha}" if sha else None


def level_predictions(
    predictor: QualityPredictor,
    data: str | Path,
    records: Sequence[Mapping[str, Any]],
    *,
    cache_key: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per item id: the predictor's ``sur`` and ``smr`` at every stored level and ``seconds`` per level.

    Levels are in the record's stored order. With ``cache_key`` (e.g. the
    weights' digest), results are kept in ``<data>/.predictions/<key>.json``
    and reused for items whose npz digest is unchanged.
    """
    import re
    import time

    from sursmr_core.outputs import atomic_write_bytes

    cache_path = None
    cached: dict[str, dict[str, Any]] = {}
    if cache_key:
        cache_path = Path(data) / ".predictions" / (re.sub(r"[^A-Za-z0-9._-]+", "_", cache_key) + ".json")
        if cache_path.is_file():
            try:
                cached = json.loads(cache_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                cached = {}
    out: dict[str, dict[str, Any]] = {}
    fresh = 0
    for done, record in enumerate(records, start=1):
        item_id = str(record["item_id"])
        hit = cached.get(item_id)
        if hit is not None and hit.get("npz_sha256") == record.get("npz_sha256"):
            out[item_id] = hit
        else:
            with np.load(Path(data) / record["npz"]) as arrays:
                reference = decode_png(arrays["reference_png"])
                decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i in range(len(record["levels"]))]
            start = time.perf_counter()
            predictions = predictor.predict(reference, decoded)
            seconds = (time.perf_counter() - start) / max(1, len(decoded))
            out[item_id] = {
                "npz_sha256": record.get("npz_sha256"),
                "sur": [float(p.sur) for p in predictions],
                "smr": [float(p.smr) for p in predictions],
                "seconds": seconds,
            }
            fresh += 1
        if progress is not None:
            progress(done, len(records))
    if cache_path is not None and fresh:
        merged = {**cached, **out}
        atomic_write_bytes(cache_path, (json.dumps(merged, sort_keys=True) + "\n").encode("utf-8"))
    return out
