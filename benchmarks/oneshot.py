"""The ``predicted`` (one-shot) search against bisection on a labelled held-out split: encodes, hit rate, bytes.

For every item of the split with every level labelled (val/test items of a
recipe-format-2 dataset), three searches are replayed on the stored levels
(no codec runs; the predictor scores the stored decoded images, shared
between the searches through one cache): ``bisect``; ``population``, the
``predicted`` strategy started from the model card's population curve; and
``predicted`` started from the curve :meth:`sursmr.predictor.Predictor.curve`
gives for the item's original (the card's per-image curve model,
:mod:`sursmr.curve_model`, when it has one). Both predicted searches move
their curve onto the image with its probes (:mod:`sursmr.anchoring`). Per
codec and target pair it reports encodes (probes) per image, the true hit
rate (the proxy labels at the chosen level meet the targets), bytes against
bisection's, and how often the level is bisection's. Issue 14 asks for ≤ 3
encodes per image with the hit rate within 2 points and the bytes within 2 %
of bisection's. Labels are proxies.

The searches run on the dataset's grid (e.g. 38 JPEG levels), not on the
codec's whole axis (100 JPEG levels): bisection needs about one probe more
on the whole axis (``benchmarks/speed.py`` measures real encodes on a whole photo).

Usage::

    python benchmarks/oneshot.py --data /root/sursmr-data/test1
    python benchmarks/oneshot.py --data DIR --split val --cache /tmp/preds.json

Writes ``benchmarks/results/oneshot.{json,md}`` and ``oneshot_headline.md`` (copied into the
README by ``benchmarks/update_readme.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from codec_auto import ItemPriors, LazyScores, StoredLevels, full_search, settle_margin_arg, smr_clause

from sursmr.rate_control import DEFAULT_SETTLE_MARGIN

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("bisect", "population", "predicted")
"""Replayed: bisection; ``predicted`` from the card's population curve; ``predicted`` from the per-image curve."""


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from per-item outcomes of one codec and target pair (every method against ``bisect``)."""
    out: dict[str, Any] = {"items": len(rows)}
    methods = [m for m in METHODS if m in rows[0]]
    for name in methods:
        found = [r for r in rows if r[name]["index"] is not None]
        out[f"{name}_encodes"] = round(statistics.fmean(r[name]["probes"] for r in rows), 2)
        out[f"{name}_hit_rate"] = round(sum(r[name]["hit"] for r in rows) / len(rows), 3)
        out[f"{name}_found"] = len(found)
        if name == "bisect":
            continue
        both = [r for r in rows if r["bisect"]["index"] is not None and r[name]["index"] is not None]
        if both:
            bisect_bytes = sum(r["bisect"]["bytes"] for r in both)
            out[f"{name}_bytes_ratio"] = round(sum(r[name]["bytes"] for r in both) / bisect_bytes, 4)
            out[f"{name}_same_level"] = round(
                sum(r["bisect"]["index"] == r[name]["index"] for r in both) / len(both), 3
            )
        out[f"max_{name}_encodes"] = max(r[name]["probes"] for r in rows)
    return out


def markdown(result: dict[str, Any]) -> str:
    cols = [
        "codec", "targets", "items", "bisect_encodes", "population_encodes", "predicted_encodes",
        "max_predicted_encodes", "bisect_hit_rate", "predicted_hit_rate", "predicted_bytes_ratio",
        "predicted_same_level",
    ]  # fmt: skip
    lines = [
        "# One-shot (`predicted`) search against bisection",
        "",
        f"Model `{result['model']}`, `{result['data']}` split `{result['split']}` ({result['items']} items, every "
        f"level labelled; labels are proxies{smr_clause(result)}). The searches are replayed on the stored grid "
        "levels with the same predictions: `bisect`; `population`, the predicted search from the card's population "
        "curve; "
        f"`predicted`, the predicted search from {result.get('prior', 'the per-image curve')}. Encodes = probes "
        "per image; hit rate = share of items whose proxy labels at the chosen level meet the targets; "
        "bytes_ratio = predicted ÷ bisect total bytes over items where both found a level; same_level = share "
        "choosing the same level as bisection. "
        + (
            "Both predicted searches close every bracket (settle margin none, as `--thorough`)."
            if result.get("settle_margin") is None
            else "Both predicted searches stop at a pass whose cheaper neighbour the image's own probes predict to "
            f"fail by more than {result.get('settle_margin')} logit (compress's settle margin; `--thorough` closes "
            "the bracket)."
        ),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in result["rows"]:
        lines.append("| " + " | ".join(str(row.get(c, "-")) for c in cols) + " |")
    lines += ["", f"Run: `{result['command']}`; {result['seconds']} s, {result['host']}."]
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> str:
    """The README's sentences on the predicted search, from one oneshot result (numbers never typed by hand)."""
    rows = {(r["codec"], r["targets"]): r for r in result["rows"]}
    codecs = sorted({r["codec"] for r in result["rows"]})
    crops = max(r["items"] for r in result["rows"])

    def per_codec(targets: str, column: str) -> str:
        return ", ".join(f"{rows[(c, targets)][column]} ({c.upper()})" for c in codecs if (c, targets) in rows)

    lines = [
        f"`benchmarks/oneshot.py` replays the searches on {crops} test crops per codec (`{result['data']}`, every grid "
        f"level labelled, proxy labels{smr_clause(result, command=False)}; model `{result['model']}`, prior: "
        f"{result.get('prior', 'population')}):"
    ]
    for targets in dict.fromkeys(r["targets"] for r in result["rows"]):
        mine = [rows[(c, targets)] for c in codecs if (c, targets) in rows]
        same = min(r.get("predicted_same_level", 0.0) for r in mine)
        ratios = [r["predicted_bytes_ratio"] for r in mine if "predicted_bytes_ratio" in r]
        agree = "every image" if same >= 1.0 else f"at least {same:.0%} of the images of each codec"
        lines.append(
            f"at {targets.replace('SMR≥none', '').strip()} the predicted search takes "
            f"{per_codec(targets, 'predicted_encodes')} encodes per image, from the population curve alone "
            f"{per_codec(targets, 'population_encodes')}, bisection {per_codec(targets, 'bisect_encodes')}; it "
            f"picks bisection's level on {agree}"
            + (f" (bytes {min(ratios):.3f}–{max(ratios):.3f}× bisection's);" if ratios else ";")
        )
    lines[-1] = lines[-1].rstrip(";") + " (`benchmarks/results/oneshot.md`)."
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a built dataset folder (recipe format 2)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="weights name or path [default: shipped]")
    parser.add_argument("--targets", default="0.75:0.9,0.75:none", help="SUR:SMR pairs ('none': no target)")
    parser.add_argument("--cache", type=Path, default=None, help="JSON file keeping the model's level predictions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--settle-margin",
        type=settle_margin_arg,
        default=DEFAULT_SETTLE_MARGIN,
        help="settle margin of both predicted searches (logit units; 'none': exact, as --thorough) "
        "[default: compress's]",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import sursmr.predictor
    from sursmr.rate_control import Targets
    from training.datasets.builder import read_items
    from training.datasets.relabel import smr_labels_of

    torch.set_num_threads(args.threads)
    predictor = sursmr.predictor.load(args.model, "cpu")
    records = [r for r in read_items(args.data) if r["split"] == args.split and not r.get("level_subset")]
    if not records:
        print(f"{args.data}: no {args.split} item with every level labelled", file=sys.stderr)
        return 1
    cached: dict[str, Any] = json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    scores = LazyScores(predictor, args.data, cached)
    start = time.perf_counter()
    codecs = sorted({str(r["codec"]) for r in records})
    population = {codec: predictor.curve(None, codec) for codec in codecs}
    image_prior = ItemPriors(predictor, args.data)

    table: list[dict[str, Any]] = []
    for pair in args.targets.split(","):
        sur_text, smr_text = pair.split(":")
        sur = None if sur_text == "none" else float(sur_text)
        smr = None if smr_text == "none" else float(smr_text)
        targets = Targets(sur, smr)
        for codec in codecs:
            rows = []
            items = [r for r in records if r["codec"] == codec]
            for done, record in enumerate(items, start=1):
                print(f"\r{pair} {codec}: item {done}/{len(items)}", end="", file=sys.stderr)
                row: dict[str, Any] = {}
                for name in METHODS:
                    strategy = "bisect" if name == "bisect" else "predicted"
                    prior = image_prior(record) if name == "predicted" else population[codec]
                    item = StoredLevels(record, scores, prior)
                    margin = None if name == "bisect" else args.settle_margin
                    outcome, _ = full_search(item, targets, strategy, margin)
                    found = outcome.position
                    row[name] = {
                        "index": None if found is None else item.order[found],
                        "probes": outcome.probes,
                        "hit": found is not None and item.labels_pass(found, sur, smr),
                        "bytes": None if found is None else item.nbytes(found),
                    }
                rows.append(row)
            table.append({"codec": codec, "targets": f"SUR≥{sur_text} SMR≥{smr_text}", **summarise(rows)})
            if args.cache is not None:
                args.cache.write_text(json.dumps(cached, sort_keys=True) + "\n")
    print(file=sys.stderr)
    result = {
        "model": predictor.name,
        "data": str(args.data),
        "split": args.split,
        "items": len(records),
        "priors": {codec: population[codec] is not None for codec in codecs},
        "prior": "the card's curve model (per image)"
        if "curve_model" in predictor.card.extra
        else "the card's population curve",
        "smr_labels": smr_labels_of(args.data, predictor.card.training),
        "settle_margin": args.settle_margin,
        "rows": table,
        "seconds": round(time.perf_counter() - start, 1),
        "host": f"{platform.machine()} ({platform.python_version()}), {os.cpu_count()} CPUs",
        "command": "python benchmarks/oneshot.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "oneshot.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "oneshot.md").write_text(markdown(result))
    (args.out / "oneshot_headline.md").write_text(headline(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
