"""Accuracy of a predictor on the held-out split: MAE and rank correlation per codec, next to baselines.

Labels are the dataset's *proxy* labels (JND-calibrated SUR proxy or Eq. 3
pseudo-SUR; SMR from the machine zoo); the report says which. Baselines are
fitted on the train split (see ``training/evaluate.py``): the per-level mean
and median label, and a cubic fit on SSIM per codec.

Usage::

    python benchmarks/accuracy.py --data data/default                 # shipped default model, small subset
    python benchmarks/accuracy.py --data data/default --full          # the whole test split
    python benchmarks/accuracy.py --data data/default --model runs/head --labels eq3

Writes ``benchmarks/results/accuracy.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_ITEMS = 12


def data_description(data: Path) -> str:
    """Which dataset: its folder name, recipe name and the splits it holds items of."""
    from sursmr_core.errors import InputError
    from training.datasets.items import read_header
    from training.evaluate import read_manifest

    header = read_header(data, required=False)
    if not header:
        return f"`{data.name}`"
    try:
        held = {record["split"] for record in read_manifest(data)}
        splits = [s for s in ("train", "val", "test") if s in held] or ["none"]
    except InputError:  # no manifest yet: what the last build run was asked for
        splits = list(header.get("only_splits") or ["train", "val", "test"])
    recipe = header.get("recipe", {})
    crops = recipe.get("crops_per_source")
    per_photo = "" if crops is None else f", {crops} crop{'s' if crops != 1 else ''} per photo"
    return f"`{data.name}` (recipe `{recipe.get('name')}`{per_photo}, splits built: {', '.join(splits)})"


def markdown(report: dict[str, Any], model: str) -> str:
    lines = [
        "# Predictor accuracy (held-out split, proxy labels)",
        "",
        f"Model: `{model}`; split: `{report['split']}`; data: {report.get('data', 'not recorded')}.",
        f"Baselines fitted on the `{report.get('baselines_fitted_on', 'train')}` split"
        + (
            " (this dataset was built without a train split, so the baselines learn from fewer photos than the "
            "model did)."
            if report.get("baselines_fitted_on", "train") != "train"
            else "."
        ),
        f"SUR labels: {report['labels']['sur']}. SMR labels: {report['labels']['smr']}.",
        "",
        "| method | codec | samples | MAE SUR | MAE SMR | SRCC SUR | SRCC SMR |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:.4f}"

    for method, table in [("model", report["model"]), *report["baselines"].items()]:
        for codec, row in table.items():
            if isinstance(row, dict):
                lines.append(
                    f"| {method} | {codec} | {row['samples']} | {cell(row['mae_sur'])} | {cell(row['mae_smr'])} "
                    f"| {cell(row['srcc_sur'])} | {cell(row['srcc_smr'])} |"
                )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [("model", report["model"]), *report["baselines"].items()]
    codecs = [c for c, row in report["model"].items() if isinstance(row, dict)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(methods)
    for ax, target in zip(axes, ("sur", "smr"), strict=True):
        for i, (method, table) in enumerate(methods):
            values = [table[c][f"mae_{target}"] or 0.0 for c in codecs]
            ax.bar([x + i * width for x in range(len(codecs))], values, width, label=method)
        ax.set_xticks([x + width * (len(methods) - 1) / 2 for x in range(len(codecs))], codecs)
        ax.set_title(f"MAE {target.upper()} (proxy labels, lower is better)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset built by `sursmr-train build`")
    parser.add_argument("--model", default=None, help="weights name/.safetensors, run dir or .pt [default: shipped]")
    parser.add_argument("--labels", choices=["jnd", "eq3"], default="jnd")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--fit-split",
        default=None,
        help="split the baselines are fitted on [default: train, or val when the dataset has no train split]",
    )
    parser.add_argument("--full", action="store_true", help=f"every item (default: the first {QUICK_ITEMS})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.predictor import DEFAULT_MODEL
    from training.evaluate import evaluate, read_records

    model = args.model or DEFAULT_MODEL
    fit_split = args.fit_split or ("train" if read_records(args.data, "train") else "val")
    predictor = sursmr.predictor.load(model, args.device)
    report = evaluate(
        predictor,
        args.data,
        split=args.split,
        label_kind=args.labels,
        limit=None if args.full else QUICK_ITEMS,
        fit_split=fit_split,
    )
    report["model_name"] = model
    report["data"] = data_description(Path(args.data))
    report["subset"] = "full" if args.full else f"first {QUICK_ITEMS} items"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report, model) + f"\nSubset: {report['subset']}.\n"
    (args.out / "accuracy.md").write_text(text)
    plot(report, args.out / "accuracy.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
