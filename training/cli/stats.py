"""``sursmr-train stats``: what a built dataset holds and how good its level grids and SMR jury are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sursmr.cli.app import emit_json, emit_table, json_option
from training.cli import main


def _fmt(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="A built dataset folder (holds dataset.json and items/).",
)
@click.option(
    "--label",
    default="sur_jnd_proxy",
    show_default=True,
    help="SUR label for the oracle hit rates (sur_jnd_proxy: absolute proxy; pseudo_sur_eq3 is relative).",
)
@click.option("--markdown", is_flag=True, help="Print Markdown tables (for READMEs) instead of text tables.")
@json_option
def stats(data_dir: Path, label: str, markdown: bool, as_json: bool) -> None:
    """Statistics of a built dataset (every label is a proxy).

    Photos and crops per split; levels per codec; label-oracle hit rate per
    codec at SUR >= 0.5/0.75/0.9 over val+test (the share of items whose grid
    holds a level meeting the target; the oracle takes the cheapest such level);
    per machine: applicability (share of crops it votes on) and best-level
    noise floor (share of its votes that say "not satisfied" at the best
    level); applicable machines per crop (median, 10th percentile); build
    wall time summed over runs. Works on a build in progress (done items only).

    \b
    Examples:
      sursmr-train stats --data data/default
      sursmr-train stats --data data/default --json | jq 'select(.section=="oracle")'
      sursmr-train stats --data data/default --markdown > docs/dataset-default.md
    """
    from training.datasets.builder import read_items
    from training.datasets.items import read_header
    from training.datasets.stats import dataset_stats, stats_markdown

    header = read_header(data_dir)
    records = read_items(data_dir)
    result = dataset_stats(records, header, label=label)
    sections: list[tuple[str, list[dict[str, Any]], list[str]]] = [
        ("splits", result["splits"], ["split", "photos", "photos_planned", "collections", "crops", "items"]),
        (
            "levels",
            result["levels"],
            ["codec", "grid", "range", "eval_items", "eval_levels", "train_items", "train_levels"],
        ),
        ("oracle", result["oracle"], ["codec", "target", "items", "unlabelled", "hit_rate", "oracle_mean_bytes"]),
        (
            "machines",
            result["machines"],
            ["machine", "applicability", "applicable_items", "noise_floor", "worst_level_unsatisfied"],
        ),
    ]
    per_crop = result["applicable_per_crop"]
    build = result["build"]
    if markdown and not as_json:
        click.echo(stats_markdown(result), nl=False)
        return
    if as_json:
        emit_json({"section": "summary", "recipe": result["recipe"], "items": result["items"], "label": label})
        for name, rows, _ in sections:
            for row in rows:
                emit_json({"section": name, **row})
        emit_json({"section": "applicable_per_crop", **(per_crop or {"crops": 0})})
        emit_json({"section": "build", **build})
        return
    click.echo(f"recipe {result['recipe']}: {result['items']} done items (labels are proxies)")
    for name, rows, columns in sections:
        click.echo(f"\n[{name}]")
        if rows:
            emit_table([{k: _fmt(v) for k, v in row.items()} for row in rows], columns)
        else:
            click.echo("(none: the records carry no per-machine verdicts)" if name == "machines" else "(none)")
    click.echo("\n[applicable machines per crop]")
    if per_crop is None:
        click.echo("(none: the records carry no per-machine verdicts)")
    else:
        click.echo(
            f"median {per_crop['median']:g}, 10th percentile {per_crop['p10']:g} over {per_crop['crops']} crops; "
            f"{per_crop['below_k']} crops below K={per_crop['k']} (no SMR label)"
        )
    click.echo("\n[build]")
    click.echo(
        f"{build['seconds'] / 3600:.2f} h wall over {build['runs']} run(s), {build['items_built']} items built"
        + ("" if build["last_run_finished"] in (None, True) else " (last run did not finish)")
    )
    if build["items_timed"]:
        click.echo(
            f"{build['core_seconds'] / 3600:.2f} core-hours in {build['items_timed']} timed items "
            f"({build['core_seconds'] / 7200:.2f} h on 2 idle cores)"
        )
