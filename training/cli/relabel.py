"""``sursmr-train relabel``: recompute the SMR proxy of a built dataset from its stored per-machine verdicts."""

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
    help="Comma-separated SMR jury [default: the dataset's own jury].",
)
@click.option(
    "--min-applicable",
    "min_applicable",
    type=click.IntRange(min=1),
    default=None,
    help="K: crops with fewer applicable jurors get no SMR label [default: the dataset recipe's K].",
)
@json_option
def relabel(out_dir: Path, machines: str | None, min_applicable: int | None, as_json: bool) -> None:
    """Recompute the SMR proxy of a built dataset over a jury and K (no machine runs again).

    Every item keeps each machine's verdict per level (true / false / null
    when the machine's task does not apply to the original), so the SMR
    proxy of any subset of machines, with any minimum number K of applicable
    jurors, is recomputed from them; crops with fewer than K applicable
    jurors get no SMR label (null). The manifest changes, so the next
    training run caches backbone features again (the cache holds the labels
    beside the features and is keyed on the manifest). Verdicts stay as the
    build's machine versions made them: builds made before machines voted
    only where their task applies (machine versions 1) need rebuilding for
    the current rules.

    \b
    Examples:
      sursmr-train relabel --data data/default --min-applicable 4
      sursmr-train relabel --data data/default --machines open_nsfw,nudenet,rapidocr,efficientnet_lite0
      sursmr-train relabel --data data/mine --machines efficientnet_lite0,open_nsfw --min-applicable 1 --json
    """
    from training.datasets.builder import relabel_smr

    jury = None if machines is None else tuple(m.strip() for m in machines.split(",") if m.strip())
    report = relabel_smr(out_dir, jury, min_applicable)
    emit_rows([report.to_dict()], ["out_dir", "items", "changed_labels", "machines", "min_applicable"], as_json)
