"""``sursmr-train evaluate``: accuracy of a model on a split, next to the baselines."""

from __future__ import annotations

from pathlib import Path

import click

from sursmr.cli.app import emit_rows, json_option, progress, quiet_option
from training.cli import main
from training.cli._options import input_pipeline_options


@main.command()
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--labels", "label_kind", type=click.Choice(["eq3", "jnd"]), default="jnd", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N items.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report as JSON here.",
)
@input_pipeline_options
@quiet_option
@json_option
def evaluate(
    model: str,
    data_dir: Path,
    split: str,
    label_kind: str,
    device: str,
    limit: int | None,
    report_path: Path | None,
    input_mode: str | None,
    input_size: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """MAE and rank correlation of MODEL on a split, next to the level-mean, level-median and SSIM-fit baselines.

    MODEL is a run directory, a .pt checkpoint, a weights name or a .safetensors file.

    \b
    Examples:
      sursmr-train evaluate runs/head --data data/default
      sursmr-train evaluate sursmr-effnet-lite0 --data data/default --json
      sursmr-train evaluate runs/head --data data/default --input-mode native --input-size 224
    """
    import json

    import sursmr.predictor
    from sursmr_core.outputs import atomic_write_bytes
    from training.evaluate import evaluate as run_evaluation
    from training.evaluate import prediction_cache_key

    predictor = sursmr.predictor.load(model, device, input_mode=input_mode, input_size=input_size)
    bar = progress(desc=f"evaluate {split}", quiet=quiet)

    def step(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    # shipped or exported weights at their own input settings: share the prediction cache of calibrate/rate_savings
    cache_key = prediction_cache_key(predictor) if input_mode is None and input_size is None else None
    try:
        report = run_evaluation(
            predictor,
            data_dir,
            split=split,
            label_kind=label_kind,
            limit=limit,
            progress=step,
            cache_key=cache_key,
        )
    finally:
        bar.close()
    if report_path is not None:
        atomic_write_bytes(report_path, json.dumps(report, indent=2).encode())
    rows = []
    for method, table in [("model", report["model"]), *report["baselines"].items()]:
        for group, values in table.items():
            if isinstance(values, dict):
                rows.append({"method": method, "codec": group, **values})
    emit_rows(
        rows, ["method", "codec", "samples", "smr_samples", "mae_sur", "mae_smr", "srcc_sur", "srcc_smr"], as_json
    )
