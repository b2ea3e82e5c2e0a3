"""``sursmr-train export``: a run's best weights as a named ``.safetensors`` + model card."""

from __future__ import annotations

from pathlib import Path

import click

from training.cli import main
from training.cli._options import input_pipeline_options


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--name", required=True, help="Weights name, e.g. sursmr-effnet-lite0.")
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write [default: the package's sursmr/weights/].",
)
@click.option("--fp16/--fp32", default=True, show_default=True, help="Store tensors as float16.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON from `sursmr-train evaluate --report`, recorded as the card's measured metrics.",
)
@input_pipeline_options
def export(
    run_dir: Path,
    name: str,
    weights_dir: Path | None,
    fp16: bool,
    report_path: Path | None,
    input_mode: str | None,
    input_size: int | None,
) -> None:
    """Write a run's best weights as NAME.safetensors + NAME.json model card (loadable offline by name).

    \b
    Example:
      sursmr-train export runs/head --name sursmr-effnet-lite0 --report runs/head/test.json
      sursmr-train export runs/head --name mine --input-mode native --input-size 224
    """
    from training.export import export_run

    path = export_run(
        run_dir,
        name,
        weights_dir=weights_dir,
        fp16=fp16,
        report_path=report_path,
        input_mode=input_mode,
        input_size=input_size,
    )
    click.echo(str(path))
