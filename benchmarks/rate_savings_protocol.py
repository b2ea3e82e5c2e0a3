"""Rate savings at matched reliability, the protocol: the methods, the bench items, knob calibration and scoring.

Pure arithmetic over item records (see :mod:`benchmarks.rate_savings`, the
entry point, for the question and the protocol in words; its reports are in
:mod:`benchmarks.rate_savings_report`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.matched import (
    BenchItem,
    FixedLevel,
    Method,
    MetricTarget,
    Outcome,
    PredictorMargin,
    Target,
    bootstrap,
    calibrate,
    describe,
    oracle_at,
    oracle_choices,
    oracle_share,
    run,
    saving,
    weighted_mean,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS: list[Target] = [(s, m) for s in (0.5, 0.75, 0.9) for m in (None, 0.8, 0.9)]
RELIABILITIES = (0.75, 0.9, 0.95)
HEADLINE_TARGETS: list[Target] = [(0.75, None), (0.75, 0.8)]
HEADLINE_RELIABILITIES = (0.75, 0.9)
BD_TARGET: Target = (0.75, None)
MODEL_METHOD = "sursmr"
CHEAP_METHOD = "cheap_ridge"


def methods() -> list[Method]:
    return [
        FixedLevel(),
        MetricTarget("ssim", "ssim"),
        MetricTarget("vmaf", "vmaf"),
        MetricTarget("butteraugli", "butteraugli_max", lower_is_better=True),
        PredictorMargin(CHEAP_METHOD, CHEAP_METHOD),
        PredictorMargin(MODEL_METHOD, MODEL_METHOD),
    ]


# --- loading -------------------------------------------------------------------------------


def photo_of(record: Mapping[str, Any]) -> str:
    """The source photo of an item record (items of one photo are resampled together)."""
    return str(record.get("source_id") or record["crop"]["source_id"])


def shared_photos(calib: Sequence[Mapping[str, Any]], test: Sequence[Mapping[str, Any]]) -> list[str]:
    """Source photos that have items in both the calibration and the test records (sorted)."""
    return sorted({photo_of(r) for r in calib} & {photo_of(r) for r in test})


def smr_labelled(items: Sequence[BenchItem]) -> int:
    """How many items have an SMR label at some level (elsewhere an SMR target counts as met)."""
    return sum(1 for item in items if bool(np.isfinite(item.smr).any()))


def cheap_fit_records(
    train: Mapping[str, Sequence[Mapping[str, Any]]], calib_split: str, calib: Sequence[Mapping[str, Any]]
) -> tuple[str, list[str], list[Mapping[str, Any]]]:
    """What the cheap-metric regressor learns from: (split, dataset names, records).

    ``train`` maps each dataset's name to its training-split records; every
    training record found is used, and only when no dataset has one does the
    regressor fit on the calibration records (``calib_split``), which then
    calibrate its margin too.
    """
    found = {name: list(records) for name, records in train.items() if records}
    if found:
        return "train", sorted(found), [r for records in found.values() for r in records]
    return calib_split, [], list(calib)


def load_items(
    data: Path, records: Sequence[dict[str, Any]], predictions: dict[str, dict[str, Any]], cheap: Any
) -> list[BenchItem]:
    """Bench items for records with every level labelled, with the network's and the regressor's predictions."""
    from training.calibration import labelled_levels

    items = []
    for record in records:
        labelled = labelled_levels(record)
        if labelled is None:
            continue
        order = labelled["order"]
        n = len(order)
        seconds = record.get("seconds", {})
        item = BenchItem(
            item_id=str(record["item_id"]),
            codec=str(record["codec"]),
            group=photo_of(record),
            levels=labelled["levels"],
            nbytes=labelled["nbytes"],
            sur=labelled["sur"],
            smr=labelled["smr"],
            scores=labelled["scores"],
            level_seconds=(float(seconds.get("encode", 0.0)) + float(seconds.get("decode", 0.0))) / n,
            metric_seconds={
                key.split(":", 1)[1]: float(v) / n for key, v in seconds.items() if key.startswith("metric:")
            },
        )
        pred = predictions.get(item.item_id)
        if pred is not None:
            item.preds[MODEL_METHOD] = (
                np.array([pred["sur"][i] for i in order], dtype=np.float64),
                np.array([pred["smr"][i] for i in order], dtype=np.float64),
            )
            item.pred_seconds[MODEL_METHOD] = float(pred["seconds"])
        if cheap is not None and item.codec in cheap.fits and all(m in item.scores for m in cheap.metrics):
            per_level = [{m: float(item.scores[m][j]) for m in cheap.metrics} for j in range(n)]
            item.preds[CHEAP_METHOD] = cheap.predict_scores(item.codec, per_level)
            item.pred_seconds[CHEAP_METHOD] = sum(item.metric_seconds.get(m, 0.0) for m in cheap.metrics)
        items.append(item)
    return items


# --- the protocol ----------------------------------------------------------------------------


def _ci(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def protocol(
    calib: Sequence[BenchItem],
    test: Sequence[BenchItem],
    chosen_methods: Sequence[Method],
    *,
    reliabilities: Sequence[float] = RELIABILITIES,
    targets: Sequence[Target] = TARGETS,
    resamples: int = 2000,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the matched-reliability table and the test-split knob sweeps (for plots and BD-rate)."""
    rows: list[dict[str, Any]] = []
    sweeps: list[dict[str, Any]] = []
    for codec in sorted({item.codec for item in test}):
        cal = [item for item in calib if item.codec == codec]
        tst = [item for item in test if item.codec == codec]
        groups = [item.group for item in tst]
        for target in targets:
            for method in chosen_methods:
                usable = [item for item in tst if method.available(item)]
                if len(usable) != len(tst) or not cal or not all(method.available(item) for item in cal):
                    continue
                knobs = method.knobs(cal, target)
                for knob in knobs:
                    outcome = run(method, tst, target, knob)
                    sweeps.append(
                        {
                            "codec": codec,
                            "target_sur": target[0],
                            "target_smr": target[1],
                            "method": method.name,
                            "knob": knob,
                            "mean_bytes": outcome.mean_bytes,
                            "hit_rate": outcome.hit_rate,
                            "mean_sur": float(outcome.sur.mean()),
                        }
                    )
            for k in range(len(tst) + 1):
                chosen = oracle_choices(tst, target, k)
                sweeps.append(
                    {
                        "codec": codec,
                        "target_sur": target[0],
                        "target_smr": target[1],
                        "method": "oracle",
                        "knob": k,
                        "mean_bytes": float(np.mean([it.nbytes[i] for it, i in zip(tst, chosen, strict=True)])),
                        "hit_rate": float(np.mean([it.hit(i, target) for it, i in zip(tst, chosen, strict=True)])),
                        "mean_sur": float(np.mean([it.sur[i] for it, i in zip(tst, chosen, strict=True)])),
                    }
                )
            for h in reliabilities:
                outcomes: dict[str, tuple[float | None, float | None, Outcome | None]] = {}
                for method in chosen_methods:
                    if not cal or not all(method.available(item) for item in [*cal, *tst]):
                        continue
                    knob, knobs, cal_outcomes = calibrate(method, cal, target, h)
                    cal_rate = None if knob is None else cal_outcomes[knobs.index(knob)].hit_rate
                    outcomes[method.name] = (knob, cal_rate, None if knob is None else run(method, tst, target, knob))
                oracle = oracle_at(tst, target, h)
                outcomes["oracle"] = (None, None, oracle)
                fixed = outcomes.get("fixed", (None, None, None))[2]
                for name, (knob, cal_rate, outcome) in outcomes.items():
                    row: dict[str, Any] = {
                        "codec": codec,
                        "target_sur": target[0],
                        "target_smr": target[1],
                        "h": h,
                        "method": name,
                        "items": len(tst),
                        "photos": len(set(groups)),
                        "knob": knob,
                        "val_hit_rate": cal_rate,
                        "reachable_on_val": name == "oracle" or knob is not None,
                    }
                    if outcome is None:
                        rows.append(row)
                        continue
                    row.update(describe(outcome))
                    if fixed is not None:
                        f_bytes, m_bytes, o_bytes = fixed.nbytes, outcome.nbytes, oracle.nbytes
                        row["saved_vs_fixed"] = saving(outcome.mean_bytes, fixed.mean_bytes)
                        row["saved_vs_fixed_ci"] = _ci(
                            bootstrap(
                                groups,
                                lambda w, a=m_bytes, b=f_bytes: saving(weighted_mean(a, w), weighted_mean(b, w)),
                                resamples=resamples,
                            )
                        )
                        row["oracle_share"] = oracle_share(outcome.mean_bytes, fixed.mean_bytes, oracle.mean_bytes)
                        row["oracle_share_ci"] = _ci(
                            bootstrap(
                                groups,
                                lambda w, a=m_bytes, b=f_bytes, c=o_bytes: oracle_share(
                                    weighted_mean(a, w), weighted_mean(b, w), weighted_mean(c, w)
                                ),
                                resamples=resamples,
                            )
                        )
                    rows.append(row)
    return rows, sweeps


def bd_rates(sweeps: Sequence[dict[str, Any]], target: Target = BD_TARGET) -> list[dict[str, Any]]:
    """BD-rate (Akima) of each method's sweep against ``fixed``'s, at equal mean SUR proxy, per codec."""
    import warnings

    import bjontegaard as bd

    def curve(codec: str, method: str) -> tuple[list[float], list[float]]:
        points: dict[float, float] = {}
        for s in sweeps:
            if (s["codec"], s["method"], s["target_sur"], s["target_smr"]) == (codec, method, *target):
                quality = round(s["mean_sur"], 6)
                points[quality] = min(points.get(quality, math.inf), s["mean_bytes"])
        qualities = sorted(points)
        rates = [points[q] for q in qualities]
        keep = [i for i in range(len(rates)) if all(rates[i] < rates[j] for j in range(i + 1, len(rates)))]
        return [rates[i] for i in keep], [qualities[i] for i in keep]

    out = []
    for codec in sorted({s["codec"] for s in sweeps}):
        rate_a, dist_a = curve(codec, "fixed")
        for method in sorted({s["method"] for s in sweeps if s["codec"] == codec} - {"fixed"}):
            rate_t, dist_t = curve(codec, method)
            value: float | None = None
            note = ""
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = float(
                        bd.bd_rate(rate_a, dist_a, rate_t, dist_t, method="akima", require_matching_points=False)
                    )
            except (ValueError, ZeroDivisionError, IndexError, np.linalg.LinAlgError) as exc:
                note = f"not computable: {exc}"
            if value is not None and not math.isfinite(value):
                value, note = None, "not computable: curves do not overlap"
            out.append({"codec": codec, "method": method, "anchor": "fixed", "bd_rate_percent": value, "note": note})
    return out


def confidence_check(card_table: Any, test: Sequence[BenchItem], targets: Sequence[Target] = TARGETS) -> list[dict]:
    """Requested confidence vs the hit rate its card margin achieves on the test split, per codec.

    Two readings of "achieved": the controller on the levels densified as in
    calibration (what a run on the codec's full axis sees, on interpolated
    labels), and on the dataset's labelled levels only.
    """
    from benchmarks.matched import margin_search
    from sursmr.confidence import ItemCurves, hit_rate_and_bytes
    from sursmr_core.errors import InputError

    substeps = int(card_table.info.get("substeps", 8))
    rows = []
    for codec in sorted({item.codec for item in test}):
        items = [item for item in test if item.codec == codec and MODEL_METHOD in item.preds]
        curves = [
            ItemCurves(i.item_id, i.codec, i.group, i.nbytes, *i.preds[MODEL_METHOD], i.sur, i.smr) for i in items
        ]
        for confidence in sorted({e.confidence for e in card_table.entries}):
            dense, coarse, used, skipped = [], [], [], []
            for target in targets:
                try:
                    margin = card_table.margin_for(codec, confidence, *target)
                except InputError:
                    skipped.append(target)
                    continue
                dense.append(hit_rate_and_bytes(curves, target, margin, substeps)[0])
                picks = [margin_search(*i.preds[MODEL_METHOD], target, margin)[0] for i in items]
                coarse.append(float(np.mean([i.hit(p, target) for i, p in zip(items, picks, strict=True)])))
                used.append(margin)
            rows.append(
                {
                    "codec": codec,
                    "confidence": confidence,
                    "items": len(items),
                    "targets": len(dense),
                    "targets_not_supported": [list(t) for t in skipped],
                    "achieved_dense": float(np.mean(dense)) if dense else None,
                    "achieved_dense_min": float(np.min(dense)) if dense else None,
                    "achieved_levels": float(np.mean(coarse)) if coarse else None,
                    "margin_range": [float(min(used)), float(max(used))] if used else None,
                }
            )
    return rows
