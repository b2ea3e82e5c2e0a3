"""``sursmr-train``: label pipeline and dataset commands (entry point :func:`run`).

Results go to stdout (a table, or one JSON object per line with ``--json``),
progress and messages to stderr; errors map to the exit codes of
:class:`sursmr.errors.ExitCode`, as for ``sursmr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sursmr import __version__
from sursmr.cli.app import SursmrGroup, emit_json, emit_table, json_option, progress, show_warnings_on_stderr
from sursmr.errors import ExitCode


@click.group(cls=SursmrGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sursmr-train")
def main() -> None:
    """Build proxy-labelled SUR/SMR training data and train the predictor.

    Labels made here are proxies: pseudo-SUR from an IQA metric ensemble
    (paper Eq. 3), a JND-calibrated SUR proxy, and SMR from a zoo of vision
    models. Real SUR comes from subjective datasets (KonJND-1k, MCL-JCI,
    VVC-JND) that you supply.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train recipe --show > recipe.json
      sursmr-train build --recipe default --out data/default --jobs 2
      sursmr-train build --limit 3 --out /tmp/try --json

    \b
    Exit codes: 0 ok, 1 some items failed (run again to retry them), 2 bad usage
    or input, 3 codec unavailable, 7 labeller unavailable, 130 interrupted.
    """


def labeller_rows() -> list[dict[str, Any]]:
    """Every registered metric and machine with availability (and reason), direction/task, version, rule."""
    from training.machines import MACHINES
    from training.metrics import METRICS

    rows: list[dict[str, Any]] = []
    for name, metric in METRICS.items():
        status = metric.availability()
        rows.append(
            {
                "kind": "metric",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "direction": "lower is better" if metric.lower_is_better else "higher is better",
                "task": None,
                "version": metric.version,
                "jnd_unit": metric.jnd_unit,
                "rule": metric.description or None,
            }
        )
    for name, machine in MACHINES.items():
        status = machine.availability()
        rows.append(
            {
                "kind": "machine",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "direction": None,
                "task": machine.task,
                "version": machine.version,
                "jnd_unit": None,
                "rule": machine.rule,
            }
        )
    return rows


@main.command()
@json_option
def labellers(as_json: bool) -> None:
    """List every IQA metric and machine of the label pipeline and whether it runs here.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train labellers --json | jq -r 'select(.available|not) | "\\(.name): \\(.reason)"'
    """
    rows = labeller_rows()
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        emit_table(rows, ["kind", "name", "available", "direction", "task", "version", "reason"])


@main.command()
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="'default' or a recipe JSON file.")
@click.option("--show", is_flag=True, help="Print the recipe as JSON (save it, edit it, build it).")
@json_option
def recipe(recipe_spec: str, show: bool, as_json: bool) -> None:
    """Show a dataset recipe and its estimated size and build time.

    \b
    Examples:
      sursmr-train recipe --show > my.json
      sursmr-train recipe --recipe my.json
    """
    from training.datasets.recipe import CostModel, estimate_cost, load_recipe
    from training.datasets.sources import gather_sources

    chosen = load_recipe(recipe_spec)
    if show:
        click.echo(chosen.to_json())
        return
    sources = len(gather_sources(chosen.collections, chosen.source_dirs))
    estimate = estimate_cost(chosen, sources)
    row: dict[str, Any] = {"recipe": chosen.name, "sources": sources, **{k: round(v, 3) for k, v in estimate.items()}}
    row["crops"], row["images"] = int(estimate["crops"]), int(estimate["images"])
    row["codecs"] = ",".join(f"{p.codec}:{len(p.levels)}" for p in chosen.codecs)
    if as_json:
        emit_json(row)
    else:
        emit_table([row], ["recipe", "sources", "crops", "codecs", "images", "wall_hours", "size_mb"])
        cost = CostModel().label_s_per_image
        click.echo(f"(estimate for 2 cores at {cost} core-s of labelling per decoded image, see CostModel)", err=True)


@main.command()
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="'default' or a recipe JSON file.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sursmr-dataset"),
    show_default=True,
    help="Dataset folder (a build there is resumed).",
)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parallel workers [default: cores].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N crops (a trial run).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds allowed per encode or decode.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def build(
    recipe_spec: str,
    out_dir: Path,
    executor: str,
    jobs: int | None,
    limit: int | None,
    timeout: float,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build (or resume) a proxy-labelled dataset: crops x codecs x levels, labels, shards, manifest.

    Each finished item (one crop, one codec) is written atomically; a killed
    build continues where it stopped when run again with the same --out.

    \b
    Examples:
      sursmr-train build --out data/default
      sursmr-train build --recipe my.json --executor ray --jobs 8 --out data/mine
      sursmr-train build --limit 3 --out /tmp/try --json
    """
    from sursmr.encoding import default_jobs
    from training.datasets.builder import build_dataset
    from training.datasets.recipe import load_recipe

    chosen = load_recipe(recipe_spec)
    bar = progress(desc=f"build {chosen.name}", quiet=quiet)

    def planned(total: int, done: int) -> None:
        bar.reset(total=total)
        bar.update(done)

    def finished(outcome: Any) -> None:
        bar.update()
        if not outcome.ok:
            bar.write(f"failed: {outcome.item_id}: {outcome.error}")

    try:
        report = build_dataset(
            chosen,
            out_dir,
            executor=executor,
            workers=jobs or default_jobs(),
            limit=limit,
            timeout=timeout,
            on_item=finished,
            on_plan=planned,
        )
    finally:
        bar.close()
    summary = report.to_dict()
    if as_json:
        emit_json(summary)
    else:
        emit_table([summary], ["out_dir", "items", "already_done", "built", "failed", "seconds"])
    if report.failed:
        click.echo(
            f"sursmr-train: {len(report.failed)} item(s) failed (see {out_dir}/failed/); run again to retry", err=True
        )
        click.get_current_context().exit(ExitCode.INTERNAL)


def run() -> None:
    """Console-script entry point."""
    show_warnings_on_stderr()
    main(prog_name="sursmr-train")


__all__ = ["main", "run"]
