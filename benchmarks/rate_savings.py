"""Rate savings at matched reliability: bytes each method needs so that a share h of images truly meets the targets.

A user's question: "if I need 90 % of my images to truly meet SUR ≥ 0.75
(and SMR ≥ 0.8), how many bytes does each method cost?". For every codec,
target pair (SUR 0.5 / 0.75 / 0.9, each alone and with SMR ≥ 0.8 / 0.9) and
required hit rate h ∈ {0.75, 0.9, 0.95}:

* every method has one knob (``benchmarks/matched.py``):
  ``fixed`` (the level), ``ssim`` / ``vmaf`` / ``butteraugli`` targeting
  by bisection on the metric (jpeg-recompress / ab-av1 / cjpegli style; the
  knob is the threshold), ``cheap_ridge`` (the rate controller on a ridge
  regressor from PSNR, SSIM, MS-SSIM and GMSD; knob: margin) and ``sursmr``
  (the rate controller on the network; knob: margin, swept from −0.3 to 0.5);
* the knob is calibrated on the **validation** split: the value with the
  fewest mean bytes among those whose hit rate is ≥ h (hit: the item's proxy
  labels at the chosen level meet every target);
* on the **test** split: mean bytes, achieved hit rate, encodes and seconds
  per image (encode/decode and metric seconds from the dataset build, the
  network's seconds per candidate measured in this run), bytes saved against
  ``fixed`` at the same h, and the share of the label oracle's saving (the
  oracle satisfies ⌈h·n⌉ test items at least cost), with 95 % bootstrap
  intervals that resample source photos.

Methods choose among the dataset's labelled levels (pure arithmetic over
item records, no encoding). Labels are proxies (JND-calibrated SUR proxy
from butteraugli, SSIMULACRA2 and VMAF; SMR from the machine zoo): the
``vmaf`` and ``butteraugli`` methods target metrics the SUR proxy is made
of, which favours them.

Secondary: BD-rate at equal mean SUR proxy (``bjontegaard``, Akima) over
each method's knob sweep at SUR ≥ 0.75, against ``fixed``. And when the
model card has a confidence table (``sursmr-train calibrate``), the
requested confidence against the hit rate it achieves on the test split.

Usage::

    python benchmarks/rate_savings.py --data /root/sursmr-data/heldout-v1
    python benchmarks/rate_savings.py --data data/default --resamples 500 --limit 20   # quick look

Writes ``benchmarks/results/rate_savings.{json,md}``, ``rate_savings_all.md``
and one ``rate_savings_<codec>.png`` per codec.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
            group=str(record.get("source_id") or record["crop"]["source_id"]),
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


# --- reports -----------------------------------------------------------------------------------


def _pct(value: float | None, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.0f}%"


def _ci_text(ci: list[float] | None) -> str:
    return "" if ci is None else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _target_text(target_sur: float | None, target_smr: float | None) -> str:
    return f"SUR ≥ {target_sur}" + ("" if target_smr is None else f", SMR ≥ {target_smr}")


def headline_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if (r["target_sur"], r["target_smr"]) in HEADLINE_TARGETS
        and any(math.isclose(r["h"], h) for h in HEADLINE_RELIABILITIES)
    ]


def headline_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| codec | targets | h | method | mean bytes | hit rate (test) | saved vs fixed [95% CI] | share of oracle "
        "saving [95% CI] | encodes | s / image |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(headline_rows(rows), key=lambda r: (r["codec"], r["target_smr"] or 0.0, r["h"])):
        if "mean_bytes" not in r:
            lines.append(
                f"| {r['codec']} | {_target_text(r['target_sur'], r['target_smr'])} | {r['h']:g} | {r['method']} | "
                "n/r on val | | | | | |"
            )
            continue
        seconds = "–" if r.get("seconds") is None else f"{r['seconds']:.2f}"
        share = r.get("oracle_share")
        lines.append(
            f"| {r['codec']} | {_target_text(r['target_sur'], r['target_smr'])} | {r['h']:g} | {r['method']} | "
            f"{r['mean_bytes']:.0f} | {_pct(r['hit_rate'], False)} | "
            f"{_pct(r.get('saved_vs_fixed'))}{_ci_text(r.get('saved_vs_fixed_ci'))} | "
            f"{_pct(share)}{_ci_text(r.get('oracle_share_ci'))} | {r['encodes']:.1f} | {seconds} |"
        )
    return lines


def savings_grid(rows: Sequence[dict[str, Any]], h: float) -> list[str]:
    names = [m.name for m in methods()] + ["oracle"]
    lines = [
        "| codec | targets | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    keys = sorted({(r["codec"], r["target_sur"], r["target_smr"] or 0.0) for r in rows})
    for codec, s, m in keys:
        cells = []
        for name in names:
            match = [
                r
                for r in rows
                if (r["codec"], r["target_sur"], r["target_smr"] or 0.0, r["method"]) == (codec, s, m, name)
                and math.isclose(r["h"], h)
            ]
            if not match or "mean_bytes" not in match[0]:
                cells.append("n/r")
            else:
                r = match[0]
                cells.append(f"{_pct(r.get('saved_vs_fixed'))} ({_pct(r['hit_rate'], False)})")
        lines.append(f"| {codec} | {_target_text(s, m or None)} | " + " | ".join(cells) + " |")
    return lines


def markdown(payload: dict[str, Any]) -> str:
    rows = payload["table"]
    lines = [
        "# Rate savings at matched reliability",
        "",
        f"Model `{payload['model']}` (weights sha256 `{str(payload['weights_sha256'])[:12]}`); data: "
        f"{payload['data']}; knobs calibrated on the `{payload['calib_split']}` split "
        f"({payload['calib_items']} items, {payload['calib_photos']} photos), measured on the "
        f"`{payload['test_split']}` split ({payload['test_items']} items, {payload['test_photos']} photos). "
        f"The cheap-metric regressor is fitted on the `{payload['cheap_fit_split']}` split. "
        "Labels are proxies (JND-calibrated SUR proxy, machine-zoo SMR); `vmaf` and `butteraugli` target metrics "
        "the SUR proxy is made of.",
        "",
        "Headline: required hit rate h on validation = "
        + " and ".join(f"{h:g}" for h in HEADLINE_RELIABILITIES)
        + "; n/r: the knob cannot reach h on validation. The oracle satisfies ⌈h·n⌉ test items, or all it can (its "
        "hit rate then shows how far the labelled levels fall short). Saved = 1 − mean bytes / mean "
        "bytes of `fixed` at the same h; share of oracle saving = (fixed − method) / (fixed − oracle); 95 % "
        f"intervals from {payload['resamples']} bootstrap resamples of the test photos. Seconds per image are "
        "estimates: encode/decode and metric times from the dataset build (shared 2-core CPU), the network's time "
        "per candidate measured in this run.",
        "",
        *headline_markdown(rows),
        "",
    ]
    for h in HEADLINE_RELIABILITIES:
        lines += [
            f"Saved vs fixed (test hit rate) at h = {h:g}, every target; n/r: the method cannot reach h on "
            "validation. Every h: `results/rate_savings_all.md`.",
            "",
            *savings_grid(rows, h),
            "",
        ]
    lines += [
        "Mean bytes against achieved test hit rate, knob swept (dots: the knobs calibrated on validation):",
        "",
        *(f"![{c}](results/rate_savings_{c}.png)" for c in payload["codecs"]),
        "",
    ]
    if payload.get("confidence"):
        lines += [
            "### Requested confidence vs achieved hit rate (test split)",
            "",
            f"Margins from the model card's confidence table (calibrated on {payload['confidence_source']}). "
            "Achieved = share of test items whose proxy labels meet the targets at the controller's pick, "
            "averaged over the 9 targets above: on the levels densified as in calibration (the codec's full axis, "
            "interpolated labels) and on the dataset's labelled levels only.",
            "",
            "| codec | requested | achieved (densified) | worst target | achieved (labelled levels) | items | "
            "targets | margins |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in payload["confidence"]:
            if r["achieved_dense"] is None:
                lines.append(f"| {r['codec']} | {r['confidence']:g} | not supported | | | {r['items']} | 0 | |")
                continue
            lines.append(
                f"| {r['codec']} | {r['confidence']:g} | {_pct(r['achieved_dense'], False)} | "
                f"{_pct(r['achieved_dense_min'], False)} | {_pct(r['achieved_levels'], False)} | {r['items']} | "
                f"{r['targets']} | {r['margin_range'][0]:.3f}–{r['margin_range'][1]:.3f} |"
            )
        misses = [
            r
            for r in payload["confidence"]
            if r["achieved_dense"] is not None and abs(r["achieved_dense"] - r["confidence"]) > 0.05
        ]
        if misses:
            lines += [
                "",
                "More than 5 points from the request: "
                + ", ".join(f"{r['codec']} {r['confidence']:g} ({_pct(r['achieved_dense'], False)})" for r in misses)
                + f". Why: the margins come from {payload['confidence_source']}. With that few items the conformal "
                "rank is coarse (a codec with n items reaches at most n/(n+1); 0.9 and above use every codec's "
                "items, and the 0.9 margin is then the second-largest of 20 scores), and a confidence is only "
                "calibrated at targets that enough validation items reach at some labelled level (the 'targets' "
                "column counts the 9 targets where it applies).",
            ]
        lines.append("")
    lines += [
        "BD-rate against `fixed` at equal mean SUR proxy (Akima, each method's knob sweep at SUR ≥ 0.75; "
        "negative: fewer bytes), secondary:",
        "",
        "| codec | " + " | ".join(m for m in sorted({r["method"] for r in payload["bd_rate"]})) + " |",
        "|---|" + "---:|" * len({r["method"] for r in payload["bd_rate"]}),
    ]
    for codec in payload["codecs"]:
        cells = []
        for method in sorted({r["method"] for r in payload["bd_rate"]}):
            match = [r for r in payload["bd_rate"] if (r["codec"], r["method"]) == (codec, method)]
            value = match[0]["bd_rate_percent"] if match else None
            cells.append("–" if value is None else f"{value:+.1f}%")
        lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline_text(payload: dict[str, Any]) -> str:
    """The short block the main README carries (generated; see benchmarks/update_readme.py)."""
    return "\n".join(
        [
            f"Matched reliability (`benchmarks/rate_savings.py`): model `{payload['model']}`, data "
            f"{payload['data']}, knobs calibrated on `{payload['calib_split']}` ({payload['calib_items']} items, "
            f"{payload['calib_photos']} photos), measured on `{payload['test_split']}` ({payload['test_items']} "
            f"items, {payload['test_photos']} photos), proxy labels, 95 % CIs over {payload['resamples']} "
            "bootstrap resamples of the test photos; n/r: cannot reach h on validation. h = 0.9 below; h = 0.75 "
            "and every target: `benchmarks/README.md`.",
            "",
            *headline_markdown([r for r in payload["table"] if math.isclose(r["h"], 0.9)]),
            "",
        ]
    )


def markdown_all(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["# Rate savings at matched reliability: every h", ""]
    for h in sorted({r["h"] for r in rows}):
        lines += [f"## h = {h:g}", "", *savings_grid(rows, h), ""]
    return "\n".join(lines)


def plot(sweeps: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], codec: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(15, 12), squeeze=False)
    names = [m.name for m in methods()] + ["oracle"]
    for r_i, s in enumerate((0.5, 0.75, 0.9)):
        for c_i, m in enumerate((None, 0.8, 0.9)):
            ax = axes[r_i][c_i]
            for name in names:
                pts = sorted(
                    (p["hit_rate"], p["mean_bytes"])
                    for p in sweeps
                    if (p["codec"], p["target_sur"], p["target_smr"], p["method"]) == (codec, s, m, name)
                )
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", label=name, lw=1.2, alpha=0.85)
                chosen = [
                    r
                    for r in rows
                    if (r["codec"], r["target_sur"], r["target_smr"], r["method"]) == (codec, s, m, name)
                    and "mean_bytes" in r
                ]
                if chosen:
                    ax.scatter([r["hit_rate"] for r in chosen], [r["mean_bytes"] for r in chosen], s=12)
            for h in RELIABILITIES:
                ax.axvline(h, color="grey", lw=0.5, ls=":")
            ax.set_title(f"{codec}: {_target_text(s, m)}", fontsize=10)
            ax.set_xlabel("achieved hit rate, test (proxy labels)")
            ax.set_ylabel("mean bytes")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{codec}: mean bytes vs hit rate, knob swept (dots: knobs calibrated on validation at h)")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


# --- main ------------------------------------------------------------------------------------


def _grouped(sweeps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sweep points as one record of columns per (codec, target, method), for a compact JSON file."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in sweeps:
        key = (p["codec"], p["target_sur"], p["target_smr"], p["method"])
        group = groups.setdefault(
            key,
            {"codec": key[0], "target_sur": key[1], "target_smr": key[2], "method": key[3]}
            | {c: [] for c in ("knob", "mean_bytes", "hit_rate", "mean_sur")},
        )
        for column in ("knob", "mean_bytes", "hit_rate", "mean_sur"):
            group[column].append(p[column])
    return list(groups.values())


def _rounded(value: Any) -> Any:
    """Floats to 5 significant decimals for the JSON file (the sweeps are long)."""
    if isinstance(value, float):
        return value if not math.isfinite(value) else round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", default=None, help="weights name or .safetensors [default: shipped]")
    parser.add_argument("--calib-split", default="val")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the test photos")
    parser.add_argument(
        "--reliabilities",
        default=",".join(f"{h:g}" for h in RELIABILITIES),
        help="required hit rates h, comma-separated [default: %(default)s]",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N items of each split (a quick look)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from benchmarks.accuracy import data_description
    from sursmr.confidence import ConfidenceTable
    from sursmr.models.weights import read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL
    from training.cheap_metrics import CheapMetricRegressor
    from training.evaluate import level_predictions, read_records, samples_of

    model = args.model or DEFAULT_MODEL
    card = read_card(resolve_weights(model))
    predictor = sursmr.predictor.load(model, args.device)
    splits = {}
    for split in (args.calib_split, args.test_split):
        records = read_records(args.data, split)
        splits[split] = records[: args.limit] if args.limit else records

    def report(done: int, total: int) -> None:
        print(f"\rpredicting {done}/{total}", end="", file=sys.stderr)

    key = f"{card.name}-{card.weights_sha256}"
    predictions = level_predictions(
        predictor, args.data, [*splits[args.calib_split], *splits[args.test_split]], cache_key=key, progress=report
    )
    print(file=sys.stderr)
    train_records = read_records(args.data, "train")
    cheap_fit_split = "train" if train_records else args.calib_split
    fit_records = train_records or splits[args.calib_split]
    cheap = CheapMetricRegressor([s for r in fit_records for _, s in samples_of(r, "jnd")])
    calib = load_items(args.data, splits[args.calib_split], predictions, cheap)
    test = load_items(args.data, splits[args.test_split], predictions, cheap)
    chosen = methods()
    reliabilities = [float(v) for v in args.reliabilities.split(",") if v.strip()]
    rows, sweeps = protocol(calib, test, chosen, reliabilities=reliabilities, resamples=args.resamples)
    confidence = None
    confidence_source = None
    if isinstance(card.extra.get("confidence"), dict):
        table = ConfidenceTable.from_dict(card.extra["confidence"])
        confidence = confidence_check(table, test)
        info = table.info
        confidence_source = (
            f"`{info.get('data')}` split `{info.get('split')}`, {info.get('source_photos')} photos, "
            f"items {info.get('items')}"
        )
    codecs = sorted({item.codec for item in test})
    payload = {
        "model": model,
        "weights_sha256": card.weights_sha256,
        "data": data_description(args.data),
        "calib_split": args.calib_split,
        "test_split": args.test_split,
        "calib_items": len(calib),
        "calib_photos": len({i.group for i in calib}),
        "test_items": len(test),
        "test_photos": len({i.group for i in test}),
        "cheap_fit_split": cheap_fit_split,
        "cheap_metrics": list(cheap.metrics),
        "resamples": args.resamples,
        "codecs": codecs,
        "targets": TARGETS,
        "reliabilities": reliabilities,
        "labels": "proxy (JND-calibrated SUR, machine-zoo SMR)",
        "table": rows,
        "bd_rate": bd_rates(sweeps),
        "confidence": confidence,
        "confidence_source": confidence_source,
        "sweeps": _grouped(sweeps),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rate_savings.json").write_text(json.dumps(_rounded(payload), separators=(",", ":")) + "\n")
    text = markdown(payload)
    (args.out / "rate_savings.md").write_text(text)
    (args.out / "rate_savings_all.md").write_text(markdown_all(rows))
    (args.out / "rate_savings_headline.md").write_text(headline_text(payload))
    for codec in codecs:
        plot(sweeps, rows, codec, args.out / f"rate_savings_{codec}.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
