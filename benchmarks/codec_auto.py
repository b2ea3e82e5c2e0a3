"""``--codec auto`` on a labelled test split: bytes against the best single codec per image (label oracle).

For every crop of the split that has items for at least two codecs with every
level labelled (val/test items of a recipe-format-2 dataset do), the model's
searches are replayed on the stored levels: the predictor scores the stored
decoded images (no codec runs; ``sursmr.rate_control`` on the grid's levels,
worst to best, with the stored byte counts) and ``auto`` keeps the smallest
passing bitstream across codecs, as :func:`sursmr.codec_choice.choose_codec`
does, in each of its ``--codec-search`` modes:

``full``
    One search per codec (``--strategy``, default ``predicted``).
``verify``
    The primary codec (the declared ``choice_rank`` order, or each codec in
    turn with ``--primaries all``) is searched; every other codec encodes one
    level, its prior's guess moved by the primary's shift
    (:func:`sursmr.anchoring.relative_shift` /
    :func:`~sursmr.anchoring.shifted_guess`), checked by the predictor
    (:func:`sursmr.rate_control.verify`). When the primary finds nothing the
    next codec by rank is searched instead. ``verify, no carry`` is the same
    with the shift left out (the prior's own guess): what carrying it buys.

The **label oracle** knows the proxy labels: per codec, the cheapest level
whose SUR label (and SMR label, where the crop has one) meets the targets; the
**best single codec per image** is the codec whose oracle level is smallest
for that crop. Labels are proxies.

Reported per target and mode: mean bytes of ``auto``, the oracle's, auto ÷
oracle, the true hit rate (labels at the chosen level meet the targets),
encodes per image (all codecs; replayed probes, so no encode is cached and
none is spent timing encoders), the most any extra codec took, how often the
checked level passed, and how often ``auto`` picked the oracle's codec; then
each codec alone (full search).

Usage: rerun the first line whenever the model or its curves change (e.g. a
per-image curve model behind ``Predictor.curve``), then
``python benchmarks/update_readme.py``, and update the numbers quoted in the
``--codec-search`` help (``sursmr/cli/compress.py``). The cache keeps the
model's predictions per stored level, keyed by item and by the weights'
SHA-256 (entries of other weights are recomputed); a new curve alone needs no
new predictions::

    python benchmarks/codec_auto.py --data /root/sursmr-data/test1 --cache /root/auto-preds.json
    python benchmarks/codec_auto.py --data DIR --model runs/x --primaries declared --modes verify

The dataset folder is only read. Writes ``benchmarks/results/codec_auto.{json,md}``
and ``codec_auto_headline.md`` (the sentence ``update_readme.py`` puts in the README).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sursmr.rate_control import DEFAULT_SETTLE_MARGIN

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

    ``cache``: ``{item_id: {"npz_sha256": ..., "model": ..., "levels": {"<index>": [sur, smr]}}}`` (JSON-ready);
    an entry of another item file or other weights (``model``: the weights' SHA-256, else the predictor's name)
    is recomputed.
    """

    def __init__(self, predictor: Any, data: Path, cache: dict[str, Any]) -> None:
        self.predictor, self.data, self.cache = predictor, data, cache
        self.model = str(getattr(predictor, "weights_sha256", None) or getattr(predictor, "name", "model"))
        self.candidates = 0
        self.seconds = 0.0

    def __call__(self, record: Mapping[str, Any], indices: Sequence[int]) -> list[tuple[float, float]]:
        import numpy as np

        from training.datasets.builder import decode_png

        entry = self.cache.get(str(record["item_id"]))
        if entry is None or (entry.get("npz_sha256"), entry.get("model")) != (record.get("npz_sha256"), self.model):
            fresh = {"npz_sha256": record.get("npz_sha256"), "model": self.model, "levels": {}}
            entry = self.cache[str(record["item_id"])] = fresh
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


class ItemPriors:
    """The prior a real run searches from for each item: the predictor's curve for the item's original, kept."""

    def __init__(self, predictor: Any, data: Path) -> None:
        self.predictor, self.data = predictor, data
        self.priors: dict[tuple[str, str], Any] = {}

    def __call__(self, record: Mapping[str, Any]) -> Any:
        import numpy as np

        from training.datasets.builder import decode_png

        key = (str(record["crop_id"]), str(record["codec"]))
        if key not in self.priors:
            with np.load(self.data / record["npz"]) as arrays:
                reference = decode_png(arrays["reference_png"])
            self.priors[key] = self.predictor.curve(reference, str(record["codec"]))
        return self.priors[key]


class StoredLevels:
    """One labelled item as a level axis: grid positions 0 (worst) .. n-1, its stored bytes, the model's scores.

    ``prior``: the codec's prior (``{level: (sur, smr)}``) on the grid positions (levels off the grid dropped).
    """

    def __init__(self, record: Mapping[str, Any], scores: LazyScores, prior: Mapping[int, tuple[float, float]] | None):
        from sursmr_core.levels import LevelAxis

        self.record, self.scores = record, scores
        self.order = grid_order(record)
        levels = [int(v) for v in record["levels"]]
        self.axis = LevelAxis(0, len(self.order) - 1, "higher")
        self.prior = None
        if prior is not None:
            self.prior = {p: prior[levels[i]] for p, i in enumerate(self.order) if levels[i] in prior} or None

    def evaluate(self, positions: Sequence[int]) -> list[Any]:
        from sursmr.rate_control import Probe

        values = self.scores(self.record, [self.order[p] for p in positions])
        return [Probe(p, self.nbytes(p), sur, smr) for p, (sur, smr) in zip(positions, values, strict=True)]

    def nbytes(self, position: int) -> int:
        return int(self.record["bytes"][self.order[position]])

    def labels_pass(self, position: int, sur: float | None, smr: float | None) -> bool:
        return label_passes(self.record, self.order[position], sur, smr)


@dataclass
class Outcome:
    """One codec in one replay: the chosen grid position (None: none passed), its probes, full search or checked."""

    position: int | None
    probes: int
    checked: bool


def settle_margin_arg(text: str) -> float | None:
    """``--settle-margin``: logit units, or ``none`` for the exact search (what ``--thorough`` does)."""
    return None if text.strip().lower() == "none" else float(text)


def full_search(
    item: StoredLevels, targets: Any, strategy: str, settle_margin: float | None = None
) -> tuple[Outcome, float | None]:
    """The codec's own search; also its result's shift against its prior (None: no result or no prior)."""
    from sursmr.anchoring import curves_on_axis, relative_shift
    from sursmr.rate_control import search
    from sursmr_core.errors import TargetUnreachable

    try:
        result = search(
            item.axis, item.evaluate, targets, strategy=strategy, prior=item.prior, settle_margin=settle_margin
        )
    except TargetUnreachable as exc:
        return Outcome(None, len(exc.probes), False), None
    shift = None
    if item.prior is not None:
        curves = curves_on_axis(item.prior, list(range(len(item.order))))
        shift = relative_shift(curves, targets.required, result.best.level)
    return Outcome(result.best.level, len(result.probes), False), shift


def check_one(item: StoredLevels, targets: Any, shift: float | None) -> Outcome | None:
    """One level: the prior's guess moved by ``shift``, kept when it passes. None: no prior (search instead)."""
    from sursmr.anchoring import curves_on_axis, shifted_guess
    from sursmr.rate_control import verify
    from sursmr_core.errors import TargetUnreachable

    if item.prior is None:
        return None
    guess = shifted_guess(curves_on_axis(item.prior, list(range(len(item.order)))), targets.required, shift or 0.0)
    try:
        result = verify(item.axis, item.evaluate, targets, [guess])
    except TargetUnreachable:
        return Outcome(None, 1, True)
    return Outcome(result.best.level, 1, True)


def replay(
    items: Mapping[str, StoredLevels],
    targets: Any,
    strategy: str,
    mode: str,
    order: Sequence[str],
    carry: bool,
    settle_margin: float | None = None,
) -> dict[str, Outcome]:
    """Every codec's outcome for one crop, searched as :func:`sursmr.codec_choice.choose_codec` does in ``mode``."""
    outcomes: dict[str, Outcome] = {}
    shift: float | None = None
    primary_found = False
    for codec in order:
        if mode == "full" or not primary_found:
            outcomes[codec], found_shift = full_search(items[codec], targets, strategy, settle_margin)
            if mode == "verify" and outcomes[codec].position is not None:
                primary_found, shift = True, found_shift if carry else None
            continue
        checked = check_one(items[codec], targets, shift)
        if checked is None:
            checked = full_search(items[codec], targets, strategy, settle_margin)[0]
        outcomes[codec] = checked
    return outcomes


def mode_label(mode: str, primary: str | None, declared: str, carry: bool) -> str:
    if mode == "full":
        return "full"
    text = f"verify, {primary} first" + (" (declared)" if primary == declared else "")
    return text if carry else text + ", no carry"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a built dataset folder (recipe format 2)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="weights name/path, run dir or .pt [default: shipped]")
    parser.add_argument("--strategy", default="predicted", help="search of a codec searched in full")
    parser.add_argument(
        "--settle-margin",
        type=settle_margin_arg,
        default=DEFAULT_SETTLE_MARGIN,
        help="the predicted search's settle margin (logit units; 'none': exact) [default: compress's]",
    )
    parser.add_argument("--targets", default="0.75:0.9,0.5:0.9,0.9:none", help="SUR:SMR pairs ('none': no target)")
    parser.add_argument("--margin", type=float, default=0.0, help="added to every target for the model's search")
    parser.add_argument("--modes", default="full,verify", help="codec searches to replay: full, verify or both")
    parser.add_argument(
        "--primaries",
        default="all",
        help="verify: 'declared' (the adapters' choice_rank order, as the CLI), 'all' (each codec first in turn, "
        "plus the declared order without carrying the shift) or a comma list of codecs to put first",
    )
    parser.add_argument("--cache", type=Path, default=None, help="JSON file keeping the model's level predictions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.codec_choice import search_order
    from sursmr.rate_control import Targets
    from training.datasets.builder import read_items
    from training.datasets.relabel import smr_labels_of

    torch.set_num_threads(args.threads)
    predictor = sursmr.predictor.load(args.model, args.device)
    records = [r for r in read_items(args.data) if r["split"] == args.split and not r.get("level_subset")]
    by_crop: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        by_crop[str(record["crop_id"])][str(record["codec"])] = record
    crops = {crop: codecs for crop, codecs in sorted(by_crop.items()) if len(codecs) >= 2}
    if not crops:
        print(f"{args.data}: no {args.split} crop has two codecs with every level labelled", file=sys.stderr)
        return 1
    cached: dict[str, Any] = {}
    if args.cache is not None and args.cache.is_file():
        cached = json.loads(args.cache.read_text())
    scores = LazyScores(predictor, args.data, cached)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    all_codecs = sorted({codec for codecs in crops.values() for codec in codecs})
    declared = search_order(all_codecs)
    prior_of = ItemPriors(predictor, args.data)

    runs: list[tuple[str, str | None, bool]] = []  # (mode, primary or None, carry the shift)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "full" in modes:
        runs.append(("full", None, True))
    if "verify" in modes:
        firsts = (
            [declared[0]]
            if args.primaries == "declared"
            else all_codecs
            if args.primaries == "all"
            else [c.strip() for c in args.primaries.split(",")]
        )
        runs += [("verify", first, True) for first in firsts]
        if args.primaries == "all":
            runs.append(("verify", declared[0], False))
    rows: list[dict[str, Any]] = []
    alone: list[dict[str, Any]] = []
    for pair in args.targets.split(","):
        sur_text, smr_text = pair.split(":")
        sur = None if sur_text == "none" else float(sur_text)
        smr = None if smr_text == "none" else float(smr_text)
        targets = Targets(sur, smr, args.margin)
        per_run: dict[int, dict[str, list[Any]]] = {k: defaultdict(list) for k in range(len(runs))}
        codec_bytes: dict[str, list[int]] = defaultdict(list)
        codec_hits: dict[str, list[bool]] = defaultdict(list)
        images = 0
        for done, codecs in enumerate(crops.values(), start=1):
            print(f"\r{pair}: crop {done}/{len(crops)}", end="", file=sys.stderr)
            oracle_bytes = {}
            for codec, record in codecs.items():
                index = oracle(record, sur, smr)
                if index is not None:
                    oracle_bytes[codec] = int(record["bytes"][index])
            if not oracle_bytes:
                continue  # no codec's labels reach the targets: no oracle to compare with
            images += 1
            best_oracle = min(oracle_bytes, key=lambda c: (oracle_bytes[c], c))
            items = {codec: StoredLevels(record, scores, prior_of(record)) for codec, record in codecs.items()}
            present = [c for c in all_codecs if c in items]
            for k, (mode, first, carry) in enumerate(runs):
                order = present if mode == "full" else [c for c in [first, *declared] if c in items]
                order = list(dict.fromkeys(order))
                outcomes = replay(items, targets, args.strategy, mode, order, carry, args.settle_margin)
                stats = per_run[k]
                stats["encodes"].append(sum(o.probes for o in outcomes.values()))
                stats["extra_max"].append(max([o.probes for o in outcomes.values() if o.checked], default=0))
                checked = [o for o in outcomes.values() if o.checked]
                stats["checked"].append(len(checked))
                stats["checked_passed"].append(sum(o.position is not None for o in checked))
                found = {c: o.position for c, o in outcomes.items() if o.position is not None}
                if mode == "full":
                    for codec, position in found.items():
                        codec_bytes[codec].append(items[codec].nbytes(position))
                        codec_hits[codec].append(items[codec].labels_pass(position, sur, smr))
                if not found:
                    stats["hit"].append(False)
                    continue
                winner = min(found, key=lambda c: (items[c].nbytes(found[c]), all_codecs.index(c)))
                chosen = items[winner].nbytes(found[winner])
                stats["auto"].append(chosen)
                stats["oracle"].append(oracle_bytes[best_oracle])
                stats["hit"].append(items[winner].labels_pass(found[winner], sur, smr))
                stats["same_codec"].append(winner == best_oracle)
            if args.cache is not None and scores.candidates:  # kept after every crop: a killed run loses little
                args.cache.parent.mkdir(parents=True, exist_ok=True)
                args.cache.write_text(json.dumps(cached, sort_keys=True) + "\n")
        for k, (mode, first, carry) in enumerate(runs):
            stats = per_run[k]
            auto, oracle_sum = stats["auto"], sum(stats["oracle"])
            rows.append(
                {
                    "target_sur": sur,
                    "target_smr": smr,
                    "mode": mode,
                    "primary": first,
                    "carry": carry,
                    "label": mode_label(mode, first, declared[0], carry),
                    "images": images,
                    "auto_found": len(auto),
                    "auto_mean_bytes": round(sum(auto) / len(auto), 1) if auto else None,
                    "oracle_mean_bytes": round(oracle_sum / len(auto), 1) if auto else None,
                    "auto_over_oracle": round(sum(auto) / oracle_sum, 4) if oracle_sum else None,
                    "true_hit_rate": round(sum(stats["hit"]) / max(1, len(stats["hit"])), 4),
                    "encodes_per_image": round(sum(stats["encodes"]) / max(1, images), 2),
                    "max_encodes_per_checked_codec": max(stats["extra_max"], default=0),
                    "checked_pass_rate": round(sum(stats["checked_passed"]) / sum(stats["checked"]), 4)
                    if sum(stats["checked"])
                    else None,
                    "auto_picks_oracle_codec": round(sum(stats["same_codec"]) / max(1, len(stats["same_codec"])), 4),
                }
            )
        for codec in all_codecs:
            found_bytes = codec_bytes[codec]
            alone.append(
                {
                    "target_sur": sur,
                    "target_smr": smr,
                    "codec": codec,
                    "found": len(found_bytes),
                    "mean_bytes": round(sum(found_bytes) / len(found_bytes), 1) if found_bytes else None,
                    "true_hit_rate": round(sum(codec_hits[codec]) / len(codec_hits[codec]), 4)
                    if codec_hits[codec]
                    else None,
                }
            )
    print(file=sys.stderr)
    report = {
        "data": str(args.data),
        "split": args.split,
        "model": args.model or sursmr.predictor.DEFAULT_MODEL,
        "strategy": args.strategy,
        "settle_margin": args.settle_margin,
        "margin": args.margin,
        "prior": {
            codec: any(p is not None for (_, c), p in prior_of.priors.items() if c == codec) for codec in all_codecs
        },
        "prior_source": "the card's curve model (per image)"
        if "curve_model" in predictor.card.extra
        else "the card's population curve",
        "smr_labels": smr_labels_of(args.data, predictor.card.training),
        "declared_order": declared,
        "crops": len(crops),
        "codecs": all_codecs,
        "candidates_scored": scores.candidates,
        "predictor_ms_per_candidate": round(1000 * scores.seconds / max(1, scores.candidates), 1),
        "seconds": round(time.perf_counter() - start, 1),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "host": f"{platform.machine()} ({platform.python_version()}), {os.cpu_count()} CPUs",
        "command": "python benchmarks/codec_auto.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
        "alone": alone,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec_auto.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (args.out / "codec_auto.md").write_text(text)
    (args.out / "codec_auto_headline.md").write_text(headline_text(report))
    sys.stdout.write(text)
    return 0


def headline(report: Mapping[str, Any], sur: float = 0.75, smr: float | None = 0.9) -> dict[str, dict[str, Any]]:
    """The ``full`` row and the declared ``verify`` row at one target pair, keyed by mode (for docs)."""
    out: dict[str, dict[str, Any]] = {}
    for row in report["rows"]:
        if row["target_sur"] != sur or row["target_smr"] != smr or not row["carry"]:
            continue
        if row["mode"] == "full" or row["primary"] == report["declared_order"][0]:
            out[row["mode"]] = row
    return out


def smr_clause(report: Mapping[str, Any], *, command: bool = True) -> str:
    """``; SMR labels: ...`` when the report records them (older reports do not)."""
    from training.datasets.relabel import smr_labels_note_of

    labels = report.get("smr_labels")
    return f"; {smr_labels_note_of(labels, 'test', command=command)}" if labels else ""


def headline_text(report: Mapping[str, Any]) -> str:
    """One README sentence: the declared ``verify`` against ``full`` at the default targets."""
    rows = headline(report)
    if "verify" not in rows or "full" not in rows:
        return ""
    verify, full = rows["verify"], rows["full"]
    return (
        f"On the {verify['images']} crops of the {report['split']} split that some codec's labels let meet "
        f"SUR ≥ 0.75 and SMR ≥ 0.9 (model `{report['model']}`, labels are proxies"
        f"{smr_clause(report, command=False)}), `verify` ({verify['primary']} "
        f"searched, each other codec checked at one level) took {verify['encodes_per_image']:.1f} encodes per image "
        f"for {len(report['codecs'])} codecs against `full`'s {full['encodes_per_image']:.1f}, for "
        f"{verify['auto_over_oracle']:.2f}× the bytes of the best single codec per image chosen by the label oracle "
        f"(`full`: {full['auto_over_oracle']:.2f}×) at a true hit rate of {verify['true_hit_rate']:.0%} "
        f"(`full`: {full['true_hit_rate']:.0%}); the checked level passed for {verify['checked_pass_rate']:.0%} of "
        "the checked codecs (`benchmarks/results/codec_auto.md`).\n"
    )


def render(report: Mapping[str, Any]) -> str:
    codecs = report["codecs"]
    lines = [
        "# `--codec auto` against the best single codec per image (label oracle)",
        "",
        f"`{report['data']}`, {report['split']} split: {report['crops']} crops with {', '.join(codecs)} labelled at "
        f"every level; model `{report['model']}`, codecs searched in full with `{report['strategy']}` (prior: "
        f"{report.get('prior_source', 'the card')} for "
        f"{', '.join(c for c, p in report['prior'].items() if p) or 'none, so bisection'}), margin "
        f"{report['margin']}; searches replayed on the stored levels (their bytes and decoded images). Labels are "
        f"proxies{smr_clause(report)}. Declared search order (`choice_rank`): {', '.join(report['declared_order'])}. "
        f"1-min load average {report['load_average_1min'][0]} → {report['load_average_1min'][1]}.",
        "",
        "| SUR ≥ | SMR ≥ | codec search | images | auto bytes (found) | oracle best codec bytes | auto ÷ oracle "
        "| true hit | encodes / image | most encodes of a checked codec | checked level passed "
        "| auto picks the oracle's codec |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['target_sur']} | {r['target_smr']} | {r['label']} | {r['images']} "
            f"| {r['auto_mean_bytes']} ({r['auto_found']}) | {r['oracle_mean_bytes']} | {r['auto_over_oracle']} "
            f"| {r['true_hit_rate']} | {r['encodes_per_image']} "
            f"| {r['max_encodes_per_checked_codec'] if r['mode'] == 'verify' else '–'} "
            f"| {r['checked_pass_rate'] if r['checked_pass_rate'] is not None else '–'} "
            f"| {r['auto_picks_oracle_codec']} |"
        )
    lines += [
        "",
        "Each codec alone (its own full search):",
        "",
        "| SUR ≥ | SMR ≥ | codec | found | mean bytes | true hit |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for a in report["alone"]:
        lines.append(
            f"| {a['target_sur']} | {a['target_smr']} | {a['codec']} | {a['found']} | {a['mean_bytes']} "
            f"| {a['true_hit_rate']} |"
        )
    lines += [
        "",
        "full: one search per codec; verify: the first codec named is searched, each other codec encodes one level "
        "(its prior's guess moved by the searched codec's shift; 'no carry': the prior's own guess) and keeps it "
        "when the predictor says it passes. Bytes are means over the images where auto found a level (count in "
        "brackets), the oracle's over the same images; auto ÷ oracle: their totals (below 1: auto undershoots the "
        "labels, see its true hit rate). Encodes: replayed probes of all codecs (no cache; a real run encodes "
        "exactly its probes).",
        "",
        f"Run: `{report['command']}`; {report['seconds']} s, {report['host']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
