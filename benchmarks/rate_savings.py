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
  network's seconds per candidate measured when its predictions were computed), bytes saved against
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
    # validation and test built as separate datasets (e.g. `sursmr-train build --splits val` and `--splits test`)
    python benchmarks/rate_savings.py --calib-data data/val-only --data data/test-only

The calibration split may come from another dataset than the test split
(``--calib-data``); the two must not share a source photo. The cheap-metric
regressor fits on the training split of either dataset, or, when neither has
one, on the calibration split.

Writes ``benchmarks/results/rate_savings.{json,md}``, ``rate_savings_all.md``
and one ``rate_savings_<codec>.png`` per codec. The protocol is in
``rate_savings_protocol.py``, the reports in ``rate_savings_report.py``; this
file is the command line and re-exports both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.rate_savings_protocol import (
    BD_TARGET,
    CHEAP_METHOD,
    HEADLINE_RELIABILITIES,
    HEADLINE_TARGETS,
    MODEL_METHOD,
    RELIABILITIES,
    RESULTS,
    TARGETS,
    bd_rates,
    cheap_fit_records,
    confidence_check,
    load_items,
    methods,
    protocol,
    shared_photos,
    smr_labelled,
)
from benchmarks.rate_savings_report import (
    headline_markdown,
    headline_rows,
    headline_text,
    markdown,
    markdown_all,
    plot,
    savings_grid,
)

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
    """Floats to 5 decimals for the sweeps in the JSON file (they are long; the tables stay exact)."""
    if isinstance(value, float):
        return value if not math.isfinite(value) else round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset holding the test split")
    parser.add_argument(
        "--calib-data", type=Path, default=None, help="dataset holding the calibration split [default: --data]"
    )
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
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the markdown from the JSON in --out (no plots, no run)"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        write_reports(json.loads((args.out / "rate_savings.json").read_text()), args.out)
        return 0
    if args.data is None:
        parser.error("--data is required (or --report-only)")
    started = time.perf_counter()

    import torch

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from benchmarks.accuracy import data_description
    from benchmarks.run_info import host_text
    from sursmr.confidence import ConfidenceTable
    from sursmr.models.weights import read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL
    from training.cheap_metrics import CheapMetricRegressor
    from training.datasets.relabel import SmrJury, smr_labels_of
    from training.evaluate import level_predictions, prediction_cache_key, read_records, samples_of

    model = args.model or DEFAULT_MODEL
    card = read_card(resolve_weights(model))
    calib_data = args.calib_data or args.data
    calib_records = read_records(calib_data, args.calib_split)[: args.limit]
    test_records = read_records(args.data, args.test_split)[: args.limit]
    for data, split, records in (
        (calib_data, args.calib_split, calib_records),
        (args.data, args.test_split, test_records),
    ):
        if not records:
            parser.error(f"{data}: split {split!r} has no items")
    shared = shared_photos(calib_records, test_records)
    if shared:
        parser.error(
            f"the {args.calib_split} split of {calib_data} and the {args.test_split} split of {args.data} share "
            f"{len(shared)} source photo(s) ({', '.join(shared[:3])}...); calibrate and test on different photos"
        )
    predictor = sursmr.predictor.load(model, args.device)

    def report(done: int, total: int) -> None:
        print(f"\rpredicting {done}/{total}", end="", file=sys.stderr)

    key = prediction_cache_key(card)
    predictions = {
        **level_predictions(predictor, calib_data, calib_records, cache_key=key, progress=report),
        **level_predictions(predictor, args.data, test_records, cache_key=key, progress=report),
    }
    print(file=sys.stderr)
    cheap_fit_split, cheap_fit_data, fit_records = cheap_fit_records(
        {str(d): read_records(d, "train") for d in (calib_data, args.data)}, args.calib_split, calib_records
    )
    cheap = CheapMetricRegressor([s for r in fit_records for _, s in samples_of(r, "jnd")])
    calib = load_items(calib_data, calib_records, predictions, cheap)
    test = load_items(args.data, test_records, predictions, cheap)
    chosen = methods()
    reliabilities = [float(v) for v in args.reliabilities.split(",") if v.strip()]
    rows, sweeps = protocol(calib, test, chosen, reliabilities=reliabilities, resamples=args.resamples)
    confidence = None
    confidence_source = None
    if isinstance(card.extra.get("confidence"), dict):
        table = ConfidenceTable.from_dict(card.extra["confidence"])
        confidence = confidence_check(table, test)
        info = table.info
        per_codec = info.get("items") if isinstance(info.get("items"), dict) else {}
        confidence_source = (
            f"`{info.get('data')}` split `{info.get('split')}`, {info.get('source_photos')} photos, items per codec: "
            + ", ".join(f"{codec} {n}" for codec, n in sorted(per_codec.items()))
            + (
                f"; SMR labels: {SmrJury.from_dict(info['smr_jury']).describe()}"
                if isinstance(info.get("smr_jury"), dict)
                else ""
            )
        )
    codecs = sorted({item.codec for item in test})
    payload = {
        "model": model,
        "weights_sha256": card.weights_sha256,
        "data": data_description(args.data),
        "calib_data": None if calib_data == args.data else data_description(calib_data),
        "calib_split": args.calib_split,
        "test_split": args.test_split,
        "calib_items": len(calib),
        "calib_photos": len({i.group for i in calib}),
        "test_items": len(test),
        "test_photos": len({i.group for i in test}),
        "cheap_fit_split": cheap_fit_split,
        "cheap_fit_data": [Path(d).name for d in cheap_fit_data],
        "calib_smr_items": smr_labelled(calib),
        "test_smr_items": smr_labelled(test),
        "cheap_metrics": list(cheap.metrics),
        "resamples": args.resamples,
        "codecs": codecs,
        "targets": TARGETS,
        "reliabilities": reliabilities,
        "labels": "proxy (JND-calibrated SUR, machine-zoo SMR)",
        "smr_labels": smr_labels_of(args.data, card.training) | smr_labels_of(calib_data, card.training, "calib"),
        "table": rows,
        "bd_rate": bd_rates(sweeps),
        "confidence": confidence,
        "confidence_source": confidence_source,
        "sweeps": _grouped(sweeps),
        "command": "python benchmarks/rate_savings.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "wall_s": time.perf_counter() - started,
        "host": host_text(torch.get_num_threads()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rate_savings.json").write_text(
        json.dumps(payload | {"sweeps": _rounded(payload["sweeps"])}, separators=(",", ":")) + "\n"
    )
    text = write_reports(payload, args.out)
    for codec in codecs:
        plot(sweeps, rows, codec, args.out / f"rate_savings_{codec}.png")
    sys.stdout.write(text)
    return 0


def write_reports(payload: dict[str, Any], out: Path) -> str:
    """The markdown reports of a payload (as written to ``rate_savings.json``) into ``out``; returns the main one."""
    text = markdown(payload)
    (out / "rate_savings.md").write_text(text)
    (out / "rate_savings_all.md").write_text(markdown_all(payload["table"]))
    (out / "rate_savings_headline.md").write_text(headline_text(payload))
    return text


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "BD_TARGET",
    "CHEAP_METHOD",
    "HEADLINE_RELIABILITIES",
    "HEADLINE_TARGETS",
    "MODEL_METHOD",
    "RELIABILITIES",
    "RESULTS",
    "TARGETS",
    "bd_rates",
    "cheap_fit_records",
    "confidence_check",
    "headline_markdown",
    "headline_rows",
    "headline_text",
    "load_items",
    "main",
    "markdown",
    "markdown_all",
    "methods",
    "plot",
    "protocol",
    "savings_grid",
    "shared_photos",
    "smr_labelled",
    "write_reports",
]
