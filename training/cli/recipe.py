"""``sursmr-train recipe``: a dataset recipe, its estimated size and build time."""

from __future__ import annotations

from typing import Any

import click

from sursmr.cli.app import emit_rows, json_option
from training.cli import main


@main.command()
@click.option(
    "--recipe",
    "recipe_spec",
    default="default",
    show_default=True,
    help="Named recipe (default = v2, quick, v1) or a JSON file.",
)
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
    emit_rows([row], ["recipe", "sources", "crops", "codecs", "images", "wall_hours", "size_mb"], as_json)
    if not as_json:
        cost = round(CostModel().label_s_per_image(chosen), 2)
        click.echo(f"(estimate for 2 cores at {cost} core-s of labelling per decoded image, see CostModel)", err=True)
