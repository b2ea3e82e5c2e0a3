"""``sursmr-train relabel``: recompute the SMR proxy of a built dataset over a subset of its machines."""

from __future__ import annotations

from pathlib import Path

import click

from sursmr.cli.app import emit_rows, json_option
from training.cli import main


@main.command()
@click.option(
    "--data",
    "out_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="A built dataset folder.",
)
@click.option(
    "--machines",
    default=None,
    help="Comma-separated SMR jury (default: the machines of the default recipe).",
)
@json_option
def relabel(out_dir: Path, machines: str | None, as_json: bool) -> None:
    """Recompute the SMR proxy of a built dataset over a subset of its machines (no machine runs again).

    Every item keeps per-machine verdicts, so narrowing the jury is cheap.
    The manifest changes, so the next training run caches backbone features again
    (the cache holds the labels beside the features and is keyed on the manifest).

    \b
    Examples:
      sursmr-train relabel --data data/default
      sursmr-train relabel --data data/mine --machines efficientnet_lite0,open_nsfw --json
    """
    from training.datasets.builder import relabel_smr
    from training.datasets.recipe import DEFAULT_MACHINES

    jury = DEFAULT_MACHINES if machines is None else tuple(m.strip() for m in machines.split(",") if m.strip())
    report = relabel_smr(out_dir, jury)
    emit_rows([report.to_dict()], ["out_dir", "items", "changed_labels", "machines"], as_json)
