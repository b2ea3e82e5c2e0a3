"""``sursmr-train holdout``: a view of a dataset whose test split is one whole photo collection."""

from __future__ import annotations

from pathlib import Path

import click

from sursmr.cli.app import emit_rows, json_option
from training.cli import main


@main.command()
@click.option(
    "--data",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="A built dataset folder.",
)
@click.option("--collection", required=True, help="Photo collection to test on (e.g. gnome-backgrounds).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder of the view.")
@json_option
def holdout(data: Path, collection: str, out: Path, as_json: bool) -> None:
    """Write a view of a dataset for the cross-collection check: test on a collection never trained on.

    Every item of COLLECTION goes to the test split; the other collections'
    test items are left out (split 'unused'); train and validation keep the
    other collections' items. Nothing is copied: the view links to the
    dataset's items and has its own manifest, so train/evaluate/benchmarks
    run on it as on any dataset.

    \b
    Examples:
      sursmr-train holdout --data data/default --collection gnome-backgrounds --out data/holdout-gnome
      sursmr-train train --data data/holdout-gnome --out runs/holdout-gnome --model sursmr_v2_lite0
    """
    from training.datasets.views import collection_holdout, read_manifest

    manifest = collection_holdout(data, collection, out)
    counts: dict[str, int] = {}
    for record in read_manifest(manifest.parent):
        counts[record["split"]] = counts.get(record["split"], 0) + 1
    emit_rows(
        [
            {
                "out": str(out),
                "collection": collection,
                **{s: counts.get(s, 0) for s in ("train", "val", "test", "unused")},
            }
        ],
        ["out", "collection", "train", "val", "test", "unused"],
        as_json,
    )
