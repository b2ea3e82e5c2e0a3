"""``sursmr-train build``: build (or resume) a proxy-labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sursmr.cli.app import emit_rows, jobs_option, json_option, progress, quiet_option, timeout_option
from sursmr_core.errors import ExitCode
from training.cli import main


@main.command()
@click.option(
    "--recipe",
    "recipe_spec",
    default="default",
    show_default=True,
    help="Named recipe (default = v2, quick, v1) or a JSON file.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sursmr-dataset"),
    show_default=True,
    help="Dataset folder (a build there is resumed).",
)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@jobs_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N crops (a trial run).")
@click.option(
    "--splits",
    "only_splits",
    default=None,
    help="Only the crops of source photos in these splits, comma-separated (e.g. val,test); splits are unchanged.",
)
@timeout_option
@quiet_option
@json_option
def build(
    recipe_spec: str,
    out_dir: Path,
    executor: str,
    jobs: int | None,
    limit: int | None,
    only_splits: str | None,
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
      sursmr-train build --splits val,test --out data/heldout
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
            only_splits=None if only_splits is None else [s.strip() for s in only_splits.split(",") if s.strip()],
            timeout=timeout,
            on_item=finished,
            on_plan=planned,
        )
    finally:
        bar.close()
    summary = report.to_dict()
    emit_rows([summary], ["out_dir", "items", "already_done", "built", "failed", "seconds"], as_json)
    if report.failed:
        click.echo(
            f"sursmr-train: {len(report.failed)} item(s) failed (see {out_dir}/failed/); run again to retry", err=True
        )
        click.get_current_context().exit(ExitCode.INTERNAL)
