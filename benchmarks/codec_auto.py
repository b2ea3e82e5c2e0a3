"""``--codec auto`` on a labelled test split: its bytes against the best single codec per image (label oracle).

For every crop of the split that has items for at least two codecs with every
level labelled (val/test items of a recipe-format-2 dataset do), the model's
search is replayed on the stored levels: the predictor scores the stored
decoded images (no codec runs; ``sursmr.rate_control.search`` on the grid's
levels, worst to best, with the stored byte counts), per codec, and ``auto``
keeps the smallest passing bitstream across codecs, as
:func:`sursmr.codec_choice.choose_codec` does. The **label oracle** knows the
proxy labels: per codec, the cheapest level whose SUR label (and SMR label,
where the crop has one) meets the targets; the **best single codec per image**
is the codec whose oracle level is smallest for that crop. Labels are proxies.

Reported per target: mean bytes of ``auto`` and of each codec alone (model
search), the oracle's best codec per image, auto ÷ oracle, the true hit rate
(labels at the chosen level meet the targets), probes per image (all codecs
together) and how often ``auto`` picked the oracle's codec.

Usage::

    python benchmarks/codec_auto.py --data /root/sursmr-data/default-v2             # shipped model, test split
    python benchmarks/codec_auto.py --data DIR --model runs/x --strategy predicted --cache /tmp/preds.json

The dataset folder is only read (``--cache`` keeps the predictions elsewhere).
Writes ``benchmarks/results/codec_auto.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SUR_LABEL = "sur_jnd_proxy"


def grid_order(record: Mapping[str, Any]) -> list[int]:
    """Indices of the record's stored levels from the worst quality to the best."""
    levels = [int(v) for v in record["levels"]]
    higher = record.get("better", "higher") == "higher"
    return sorted(range(len(levels)), key=lambda i: levels[i] if higher else -levels[i])


def label_passes(record: Mapping[str, Any], index: int, sur: float | None, smr: float | None) -> bool:
    labels = record["labels"]
    value = (labels.get(SUR_LABEL) or [None] * len(record["levels"]))[index]
    if sur is not None and (value is None or not math.isfinite(float(value)) or float(value) < sur):
        return False
    machine = (labels.get("smr") or [None] * len(record["levels"]))[index]
    return smr is None or machine is None or float(machine) >= smr  # no SMR label: the crop has no machine


def oracle(record: Mapping[str, Any], sur: float | None, smr: float | None) -> int | None:
    """Index of the cheapest stored level whose labels meet the targets (None: none does)."""
    passing = [i for i in range(len(record["levels"])) if label_passes(record, i, sur, smr)]
    return min(passing, key=lambda i: record["bytes"][i]) if passing else None


class LazyScores:
    """The predictor's (SUR, SMR) at stored levels, computed only for the levels a search asks for and kept.

    ``cache``: ``{item_id: {"npz_sha256": ..., "levels": {"<index>": [sur, smr]}}}`` (JSON-ready).
    """

    def __init__(self, predictor: Any, data: Path, cache: dict[str, Any]) -> None:
        self.predictor, self.data, self.cache = predictor, data, cache
        self.candidates = 0
        self.seconds = 0.0

    def __call__(self, record: Mapping[str, Any], indices: Sequence[int]) -> list[tuple[float, float]]:
        import numpy as np

        from training.datasets.builder import decode_png

        entry = self.cache.get(str(record["item_id"]))
        if entry is None or entry.get("npz_sha256") != record.get("npz_sha256"):
            entry = self.cache[str(record["item_id"])] = {"npz_sha256": record.get("npz_sha256"), "levels": {}}
        missing = [i for i in indices if str(i) not in entry["levels"]]
        if missing:
            with np.load(self.data / record["npz"]) as arrays:
                reference = decode_png(arrays["reference_png"])
                decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i in missing]
            start = time.perf_counter()
            for i, p in zip(missing, self.predictor.predict(reference, decoded), strict=True):
                entry["levels"][str(i)] = [float(p.sur), float(p.smr)]
            self.seconds += time.perf_counter() - start
            self.candidates += len(missing)
        return [tuple(entry["levels"][str(i)]) for i in indices]  # type: ignore[misc]


def model_search(
    record: Mapping[str, Any],
    scores: LazyScores,
    targets: Any,
    strategy: str,
    prior: Mapping[int, tuple[float, float]] | None,
) -> tuple[int | None, int]:
    """(chosen stored-level index or None, probes) of the model's search replayed on the stored levels."""
    from sursmr.rate_control import Probe, search
    from sursmr_core.errors import TargetUnreachable
    from sursmr_core.levels import LevelAxis

    order = grid_order(record)
    levels = [int(v) for v in record["levels"]]
    axis = LevelAxis(0, len(order) - 1, "higher")

    def evaluate(positions: Sequence[int]) -> list[Probe]:
        values = scores(record, [order[p] for p in positions])
        return [
            Probe(p, int(record["bytes"][order[p]]), sur, smr) for p, (sur, smr) in zip(positions, values, strict=True)
        ]

    grid_prior = None
    if prior is not None:
        grid_prior = {p: prior[levels[i]] for p, i in enumerate(order) if levels[i] in prior}
    try:
        result = search(axis, evaluate, targets, strategy=strategy, prior=grid_prior or None)
    except TargetUnreachable as exc:
        return None, len(exc.probes)
    return order[result.best.level], len(result.probes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a built dataset folder (recipe format 2)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="weights name/path, run dir or .pt [default: shipped]")
    parser.add_argument("--strategy", default="predicted", help="search per codec [default: predicted]")
    parser.add_argument("--targets", default="0.75:0.9,0.5:0.9,0.9:none", help="SUR:SMR pairs ('none': no target)")
    parser.add_argument("--margin", type=float, default=0.0, help="added to every target for the model's search")
    parser.add_argument("--cache", type=Path, default=None, help="JSON file keeping the model's level predictions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.rate_control import Targets
    from training.datasets.builder import read_items

    torch.set_num_threads(args.threads)
    predictor = sursmr.predictor.load(args.model, args.device)
    records = [r for r in read_items(args.data) if r["split"] == args.split and not r.get("level_subset")]
    by_crop: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        by_crop[str(record["crop_id"])][str(record["codec"])] = record
    crops = {crop: codecs for crop, codecs in sorted(by_crop.items()) if len(codecs) >= 2}
    wanted = [r for codecs in crops.values() for r in codecs.values()]
    if not wanted:
        print(f"{args.data}: no {args.split} crop has two codecs with every level labelled", file=sys.stderr)
        return 1
    cached: dict[str, Any] = {}
    if args.cache is not None and args.cache.is_file():
        cached = json.loads(args.cache.read_text())
    scores = LazyScores(predictor, args.data, cached)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    all_codecs = sorted({codec for codecs in crops.values() for codec in codecs})
    priors = {codec: predictor.curve(None, codec) for codec in all_codecs}  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    for pair in args.targets.split(","):
        sur_text, smr_text = pair.split(":")
        sur = None if sur_text == "none" else float(sur_text)
        smr = None if smr_text == "none" else float(smr_text)
        targets = Targets(sur, smr, args.margin)
        totals: dict[str, list[float]] = defaultdict(list)
        hits: dict[str, list[bool]] = defaultdict(list)
        probes: list[int] = []
        same_codec: list[bool] = []
        paired: list[tuple[int, int]] = []  # (auto, oracle best codec) bytes where auto found a level
        for done, codecs in enumerate(crops.values(), start=1):
            print(f"\r{pair}: crop {done}/{len(crops)}", end="", file=sys.stderr)
            oracle_bytes = {}
            for codec, record in codecs.items():
                index = oracle(record, sur, smr)
                if index is not None:
                    oracle_bytes[codec] = int(record["bytes"][index])
            if not oracle_bytes:
                continue  # no codec's labels reach the targets: no oracle to compare with
            chosen: dict[str, tuple[int, bool]] = {}
            spent = 0
            for codec, record in codecs.items():
                index, count = model_search(record, scores, targets, args.strategy, priors[codec])
                spent += count
                if index is not None:
                    chosen[codec] = (int(record["bytes"][index]), label_passes(record, index, sur, smr))
            if args.cache is not None and scores.candidates:  # kept after every crop: a killed run loses little
                args.cache.parent.mkdir(parents=True, exist_ok=True)
                args.cache.write_text(json.dumps(cached, sort_keys=True) + "\n")
            best_oracle = min(oracle_bytes, key=lambda c: (oracle_bytes[c], c))
            totals["oracle best codec"].append(oracle_bytes[best_oracle])
            probes.append(spent)
            for codec in all_codecs:
                if codec in chosen:
                    totals[codec].append(chosen[codec][0])
                    hits[codec].append(chosen[codec][1])
            if chosen:
                winner = min(chosen, key=lambda c: (chosen[c][0], all_codecs.index(c)))
                totals["auto"].append(chosen[winner][0])
                hits["auto"].append(chosen[winner][1])
                same_codec.append(winner == best_oracle)
                paired.append((chosen[winner][0], oracle_bytes[best_oracle]))
            else:
                hits["auto"].append(False)
        images = len(probes)
        oracle_sum = sum(o for _, o in paired)
        rows.append(
            {
                "target_sur": sur,
                "target_smr": smr,
                "images": images,
                "auto_found": len(totals["auto"]),
                "mean_bytes": {k: round(sum(v) / len(v), 1) for k, v in totals.items() if v},
                "found": {k: len(v) for k, v in totals.items()},
                "true_hit_rate": {k: round(sum(v) / len(v), 4) for k, v in hits.items() if v},
                "auto_over_oracle": round(sum(a for a, _ in paired) / oracle_sum, 4) if oracle_sum else None,
                "probes_per_image": round(sum(probes) / max(1, images), 2),
                "auto_picks_oracle_codec": round(sum(same_codec) / max(1, len(same_codec)), 4),
            }
        )
    print(file=sys.stderr)
    report = {
        "data": str(args.data),
        "split": args.split,
        "model": args.model or sursmr.predictor.DEFAULT_MODEL,
        "strategy": args.strategy,
        "margin": args.margin,
        "prior": {codec: prior is not None for codec, prior in priors.items()},
        "crops": len(crops),
        "codecs": all_codecs,
        "candidates_scored": scores.candidates,
        "predictor_ms_per_candidate": round(1000 * scores.seconds / max(1, scores.candidates), 1),
        "seconds": round(time.perf_counter() - start, 1),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec_auto.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (args.out / "codec_auto.md").write_text(text)
    sys.stdout.write(text)
    return 0


def render(report: Mapping[str, Any]) -> str:
    codecs = report["codecs"]
    lines = [
        "# `--codec auto` against the best single codec per image (label oracle)",
        "",
        f"`{report['data']}`, {report['split']} split: {report['crops']} crops with {', '.join(codecs)} labelled at "
        f"every level; model `{report['model']}`, strategy `{report['strategy']}` (prior from the card: "
        f"{', '.join(c for c, p in report['prior'].items() if p) or 'none, so bisection'}), margin "
        f"{report['margin']}; searches replayed on the stored levels (their bytes and decoded images). Labels are "
        f"proxies. 1-min load average {report['load_average_1min'][0]} → {report['load_average_1min'][1]}.",
        "",
        "| SUR ≥ | SMR ≥ | images | auto bytes | oracle best codec bytes | auto ÷ oracle | "
        + " | ".join(f"{c} alone bytes (found)" for c in codecs)
        + " | true hit auto | "
        + " | ".join(f"true hit {c}" for c in codecs)
        + " | probes / image | auto picks the oracle's codec |",
        "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(codecs) + "---:|" + "---:|" * len(codecs) + "---:|---:|",
    ]
    for r in report["rows"]:
        mean, found, hit = r["mean_bytes"], r["found"], r["true_hit_rate"]
        lines.append(
            f"| {r['target_sur']} | {r['target_smr']} | {r['images']} | {mean.get('auto')} ({r['auto_found']}) "
            f"| {mean.get('oracle best codec')} | {r['auto_over_oracle']} | "
            + " | ".join(f"{mean.get(c)} ({found.get(c, 0)})" for c in codecs)
            + f" | {hit.get('auto')} | "
            + " | ".join(str(hit.get(c)) for c in codecs)
            + f" | {r['probes_per_image']} | {r['auto_picks_oracle_codec']} |"
        )
    lines += [
        "",
        "Bytes are means over the images where that column found a passing level (count in brackets); the oracle "
        "column covers every image whose labels reach the targets with some codec. auto ÷ oracle: total auto bytes "
        "over total oracle bytes on the images where auto found a level (below 1: auto undershoots the labels, "
        "see its true hit rate).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
