"""Rate savings at equal satisfaction: sursmr's controller against the usual ways of picking a level.

For every test item (one crop, one codec) of a built dataset and every target
pair (SUR ≥ s, SMR ≥ m), each method picks one of the item's labelled levels:

``sursmr``
    the rate controller (bisection) over the item's levels, scored by the
    predictor on the stored decoded images;
``fixed``
    one level per codec: the most compressed level that meets the targets on
    a majority of *training* items (the usual "always encode at q=N");
``ssim`` / ``vmaf``
    metric targeting in the style of jpeg-recompress / ab-av1: bisection on
    the metric to a threshold calibrated on training items (the median of the
    metric at each training item's oracle level);
``oracle``
    the smallest level whose *labels* meet the targets (needs every label);
    where no level does, it takes the best level and counts as a miss, like
    the other methods, so every method is averaged over the same items.

Reported per codec and target: mean bytes, bytes saved against ``fixed`` and
``ssim``, hit rate (share of items whose labels at the chosen level meet the
targets), encodes per item. Labels are the dataset's proxies (JND-calibrated
SUR proxy, machine-zoo SMR), so "hit rate" means agreement with those proxies.

BD-rate (``bjontegaard`` package, Akima interpolation): every method is also
run on SUR-only targets 0.3, 0.4, …, 0.9; each target gives one point (mean
bytes, mean SUR proxy label of the chosen encodes) and the curves of
``sursmr``, ``ssim``, ``vmaf`` and ``oracle`` are compared with those of
``fixed`` and ``ssim``: the average bitrate change at equal mean proxy SUR
(negative: fewer bytes).

Usage::

    python benchmarks/rate_savings.py --data data/default            # first items of the test split
    python benchmarks/rate_savings.py --data data/default --full

Writes ``benchmarks/results/rate_savings.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_ITEMS = 24
Target = tuple[float, float | None]
TARGETS: list[Target] = [(s, m) for s in (0.5, 0.75, 0.9) for m in (0.8, 0.9)]
BD_TARGETS: list[Target] = [(s / 10, None) for s in range(3, 10)]
BD_METHODS = ("sursmr", "ssim", "vmaf", "oracle")
BD_ANCHORS = ("fixed", "ssim")


@dataclass
class Item:
    """One crop × codec with its levels ordered worst → best quality."""

    item_id: str
    codec: str
    split: str
    levels: list[int]
    nbytes: list[int]
    sur: list[float]
    smr: list[float]  # NaN where no machine could judge
    scores: dict[str, list[float]]
    npz: str
    stored: list[int]  # index of each level in the item's stored arrays

    def meets(self, i: int, target: Target) -> bool:
        smr_ok = target[1] is None or math.isnan(self.smr[i]) or self.smr[i] >= target[1]
        return self.sur[i] >= target[0] and smr_ok


def read_items(data: Path, split: str) -> list[Item]:
    from training.evaluate import read_records

    items = []
    for r in read_records(data, split):
        if not r["labels"].get("sur_jnd_proxy"):
            continue
        order = sorted(range(len(r["levels"])), key=lambda i: r["levels"][i], reverse=r["better"] == "lower")
        labels = r["labels"]
        sur = [labels["sur_jnd_proxy"][i] for i in order]
        if any(v is None for v in sur):
            continue
        items.append(
            Item(
                item_id=r["item_id"],
                codec=r["codec"],
                split=r["split"],
                levels=[r["levels"][i] for i in order],
                nbytes=[r["bytes"][i] for i in order],
                sur=[float(v) for v in sur],
                smr=[math.nan if labels["smr"][i] is None else float(labels["smr"][i]) for i in order],
                scores={k: [float(v[i]) for i in order] for k, v in labels["scores"].items()},
                npz=r["npz"],
                stored=order,
            )
        )
    return items


def oracle(item: Item, target: Target) -> int | None:
    passing = [i for i in range(len(item.levels)) if item.meets(i, target)]
    return min(passing, key=lambda i: item.nbytes[i]) if passing else None


def fixed_levels(train: Sequence[Item], target: Target) -> dict[str, int]:
    """Per codec, the most compressed level meeting the targets on a majority of training items."""
    chosen = {}
    by_codec: dict[str, list[Item]] = defaultdict(list)
    for item in train:
        by_codec[item.codec].append(item)
    for codec, items in by_codec.items():
        levels = items[0].levels
        chosen[codec] = levels[-1]
        for i, level in enumerate(levels):
            share = np.mean([it.meets(it.levels.index(level), target) for it in items if level in it.levels])
            if share > 0.5:
                chosen[codec] = levels[i]
                break
    return chosen


def metric_thresholds(train: Sequence[Item], target: Target, metric: str) -> dict[str, float]:
    """Per codec, the median metric value at the training items' oracle levels."""
    values: dict[str, list[float]] = defaultdict(list)
    for item in train:
        best = oracle(item, target)
        if best is not None and metric in item.scores:
            values[item.codec].append(item.scores[metric][best])
    return {codec: float(np.median(v)) for codec, v in values.items() if v}


def bisect_metric(item: Item, metric: str, threshold: float) -> tuple[int, int]:
    """Most compressed level with metric ≥ threshold by bisection; returns (index, probes)."""
    values = item.scores[metric]
    lo, hi, probes = -1, len(values) - 1, 1  # the best level is always probed first
    if values[hi] < threshold:
        return hi, probes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probes += 1
        if values[mid] >= threshold:
            hi = mid
        else:
            lo = mid
    return hi, probes


def predictor_choices(
    predictor: Any, data: Path, item: Item, targets: Sequence[Target]
) -> dict[Target, tuple[int, int, float]]:
    """Controller choice per target over the item's levels: (index, probes, seconds)."""
    from sursmr.rate_control import Probe, Targets, search
    from sursmr_core.errors import TargetUnreachable
    from sursmr_core.levels import LevelAxis
    from training.datasets.builder import decode_png

    with np.load(data / item.npz) as arrays:
        reference = decode_png(arrays["reference_png"])
        decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i in item.stored]
    cache: dict[int, tuple[float, float]] = {}
    cost = {"seconds": 0.0}

    def evaluate(indices: Sequence[int]) -> list[Probe]:
        start = time.perf_counter()
        todo = [i for i in indices if i not in cache]
        if todo:
            for i, p in zip(todo, predictor.predict(reference, [decoded[i] for i in todo]), strict=True):
                cache[i] = (p.sur, p.smr)
        cost["seconds"] += time.perf_counter() - start
        return [Probe(i, item.nbytes[i], *cache[i]) for i in indices]

    axis = LevelAxis(0, len(item.levels) - 1, "higher")  # indices, worst → best
    out = {}
    for target in targets:
        before = len(cache)
        try:
            result = search(axis, evaluate, Targets(*target))
            index, probes = result.best.level, len(result.probes)
        except TargetUnreachable as exc:
            index, probes = len(item.levels) - 1, len(exc.probes)  # fall back to the best level
        out[target] = (index, probes, cost["seconds"] if len(cache) > before else 0.0)
    return out


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, float, float, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["codec"], row["target_sur"], row["target_smr"], row["method"])].append(row)
    table = []
    for (codec, s, m, method), values in sorted(groups.items()):
        table.append(
            {
                "codec": codec,
                "target_sur": s,
                "target_smr": m,
                "method": method,
                "items": len(values),
                "mean_bytes": float(np.mean([v["bytes"] for v in values])),
                "hit_rate": float(np.mean([v["hit"] for v in values])),
                "encodes": float(np.mean([v["encodes"] for v in values])),
            }
        )
    for row in table:

        def mean_of(method: str, r: dict[str, Any] = row) -> float | None:
            match = [
                t
                for t in table
                if (t["codec"], t["target_sur"], t["target_smr"], t["method"])
                == (r["codec"], r["target_sur"], r["target_smr"], method)
            ]
            return match[0]["mean_bytes"] if match else None

        for base in ("fixed", "ssim"):
            ref = mean_of(base)
            row[f"saved_vs_{base}"] = None if not ref else 1.0 - row["mean_bytes"] / ref
    return table


def bd_rates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BD-rate of each method against each anchor per codec, over the SUR-only targets (see the module docstring)."""
    import warnings

    import bjontegaard as bd

    curves: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["target_smr"] is None:
            curves[(row["codec"], row["method"])][row["target_sur"]].append(row)

    def curve(codec: str, method: str) -> tuple[list[float], list[float]]:
        points = sorted(
            (float(np.mean([r["sur_label"] for r in rs])), float(np.mean([r["bytes"] for r in rs])))
            for rs in curves[(codec, method)].values()
        )
        # equal quality at two targets (the same level chosen twice) is one point on the curve
        unique: dict[float, float] = {}
        for quality, rate in points:
            unique.setdefault(round(quality, 6), rate)
        return [unique[q] for q in unique], list(unique)

    out = []
    for codec in sorted({codec for codec, _ in curves}):
        for anchor in BD_ANCHORS:
            rate_a, dist_a = curve(codec, anchor)
            for method in BD_METHODS:
                if method == anchor or (codec, method) not in curves:
                    continue
                rate_t, dist_t = curve(codec, method)
                value: float | None = None
                note = ""
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        value = float(
                            bd.bd_rate(rate_a, dist_a, rate_t, dist_t, method="akima", require_matching_points=False)
                        )
                except (ValueError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
                    note = f"not computable: {exc}"
                if value is not None and not math.isfinite(value):
                    value, note = None, "not computable: curves do not overlap"
                out.append({"codec": codec, "method": method, "anchor": anchor, "bd_rate_percent": value, "note": note})
    return out


def markdown(table: list[dict[str, Any]], model: str, subset: str, bd_table: list[dict[str, Any]]) -> str:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:+.1f}%"

    lines = [
        "# Rate savings at equal (proxy) satisfaction",
        "",
        f"Model `{model}`; test split ({subset}); labels: JND-calibrated SUR proxy and machine-zoo SMR proxy.",
        "Hit rate = share of items whose proxy labels at the chosen level meet the targets.",
        "Saved = 1 − mean bytes / mean bytes of the baseline (positive: smaller files).",
        "",
        "| codec | SUR ≥ | SMR ≥ | method | items | mean bytes | hit rate | encodes | saved vs fixed | saved vs SSIM |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r['codec']} | {r['target_sur']} | {r['target_smr']} | {r['method']} | {r['items']} | "
            f"{r['mean_bytes']:.0f} | {100 * r['hit_rate']:.0f}% | {r['encodes']:.1f} | "
            f"{pct(r['saved_vs_fixed'])} | {pct(r['saved_vs_ssim'])} |"
        )
    lines += [
        "",
        "BD-rate at equal mean SUR proxy (SUR-only targets 0.3–0.9, Akima; negative: fewer bytes than the anchor):",
        "",
        "| codec | method | vs fixed | vs SSIM |",
        "|---|---|---:|---:|",
    ]
    for codec in sorted({r["codec"] for r in bd_table}):
        for method in BD_METHODS:
            cells = []
            for anchor in BD_ANCHORS:
                match = [r for r in bd_table if (r["codec"], r["method"], r["anchor"]) == (codec, method, anchor)]
                value = match[0]["bd_rate_percent"] if match else None
                cells.append("–" if value is None else f"{value:+.1f}%")
            if any(c != "–" for c in cells):
                lines.append(f"| {codec} | {method} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = sorted({r["codec"] for r in table})
    fig, axes = plt.subplots(1, len(codecs), figsize=(5 * len(codecs), 4), squeeze=False)
    for ax, codec in zip(axes[0], codecs, strict=True):
        for method in sorted({r["method"] for r in table}):
            pts = [r for r in table if r["codec"] == codec and r["method"] == method]
            ax.scatter([p["mean_bytes"] for p in pts], [p["hit_rate"] for p in pts], label=method, s=18)
        ax.set_title(f"{codec}: bytes vs hit rate (proxy labels)")
        ax.set_xlabel("mean bytes")
        ax.set_ylabel("hit rate")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", default=None, help="weights name/path, run dir or .pt [default: shipped]")
    parser.add_argument("--full", action="store_true", help=f"every test item (default: first {QUICK_ITEMS})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.predictor import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    predictor = sursmr.predictor.load(model, args.device)
    train = read_items(args.data, "train")
    test = read_items(args.data, "test")
    if not args.full:
        test = test[:QUICK_ITEMS]
    every = [*TARGETS, *BD_TARGETS]
    fixed = {t: fixed_levels(train, t) for t in every}
    thresholds = {(t, m): metric_thresholds(train, t, m) for t in every for m in ("ssim", "vmaf")}
    rows: list[dict[str, Any]] = []
    for n, item in enumerate(test, start=1):
        ours = predictor_choices(predictor, args.data, item, every)
        for target in every:
            picks: dict[str, tuple[int, float]] = {}
            index, probes, _ = ours[target]
            picks["sursmr"] = (index, probes)
            if item.codec in fixed[target]:
                picks["fixed"] = (item.levels.index(fixed[target][item.codec]), 1)
            for metric in ("ssim", "vmaf"):
                threshold = thresholds[(target, metric)].get(item.codec)
                if threshold is not None and metric in item.scores:
                    picks[metric] = bisect_metric(item, metric, threshold)
            best = oracle(item, target)
            picks["oracle"] = (len(item.levels) - 1 if best is None else best, len(item.levels))
            for method, (index, encodes) in picks.items():
                rows.append(
                    {
                        "item": item.item_id,
                        "codec": item.codec,
                        "target_sur": target[0],
                        "target_smr": target[1],
                        "method": method,
                        "bytes": item.nbytes[index],
                        "sur_label": item.sur[index],
                        "hit": item.meets(index, target),
                        "encodes": encodes,
                    }
                )
        print(f"\r{n}/{len(test)} items", end="", file=sys.stderr)
    print(file=sys.stderr)
    table = summarise([r for r in rows if r["target_smr"] is not None])
    bd_table = bd_rates(rows)
    subset = "all items" if args.full else f"first {QUICK_ITEMS} items"
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model,
        "subset": subset,
        "targets": TARGETS,
        "fixed_levels": {str(k): v for k, v in fixed.items()},
        "table": table,
        "bd_rate": bd_table,
        "labels": "proxy (JND-calibrated SUR, machine-zoo SMR)",
    }
    (args.out / "rate_savings.json").write_text(json.dumps(payload, indent=2) + "\n")
    text = markdown(table, model, subset, bd_table)
    (args.out / "rate_savings.md").write_text(text)
    plot(table, args.out / "rate_savings.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
