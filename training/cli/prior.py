"""``sursmr-train prior``: the population curve the ``predicted`` search starts from, written into a model card."""

from __future__ import annotations

import click

from sursmr.cli.app import emit_rows, jobs_option, json_option, progress, quiet_option
from training.cli import main


@main.command()
@click.option("--model", default=None, help="Weights name or .safetensors path [default: the shipped model].")
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="Recipe whose photos to use.")
@click.option("--crops", default=24, show_default=True, type=click.IntRange(1), help="Training-split crops.")
@click.option("--codecs", default=None, help="Comma-separated codecs [default: every codec of the recipe].")
@click.option(
    "--step", default=1, show_default=True, type=click.IntRange(1), help="Use every STEP-th level of each grid."
)
@click.option("--write-card", is_flag=True, help="Store the curves in the model card beside the weights.")
@click.option("--device", default="cpu", show_default=True)
@jobs_option
@quiet_option
@json_option
def prior(
    model: str | None,
    recipe_spec: str,
    crops: int,
    codecs: str | None,
    step: int,
    write_card: bool,
    device: str,
    jobs: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Predict SUR/SMR of training-split crops at every grid level; print the per-level logit means.

    The ``predicted`` search (the default strategy of `sursmr compress`)
    starts from these curves and moves them onto each image after its first
    probe. They are made from the model's own predictions, so they need no
    labels, only the recipe's photos (see the README's data section). The
    first and last levels of every grid are always kept.

    \b
    Examples:
      sursmr-train prior --crops 8 --codecs jpeg
      sursmr-train prior --crops 24 --step 2 --write-card
    """
    from sursmr.encoding import default_jobs
    from sursmr.models.weights import card_path, read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL, load
    from sursmr_core.errors import InputError
    from training.curve_prior import (
        logit_mean_statistics,
        prediction_rows,
        prior_crops,
        write_card_level_statistics,
    )
    from training.datasets.recipe import load_recipe

    recipe = load_recipe(recipe_spec)
    plans = {plan.codec: plan for plan in recipe.codecs}
    wanted = list(plans) if codecs is None else [c.strip() for c in codecs.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in plans]
    if unknown or not wanted:
        raise InputError(f"--codecs must name codecs of recipe {recipe.name!r} ({', '.join(plans)}), got {codecs!r}")
    name = model or DEFAULT_MODEL
    weights = resolve_weights(name)
    predictor = load(name, device)
    chosen = prior_crops(recipe, crops)
    rows: list[tuple[str, int, float, float]] = []
    for codec in wanted:
        grid = plans[codec].levels
        levels = sorted({*grid[::step], grid[0], grid[-1]})
        with progress(total=len(chosen), desc=f"prior {codec}", quiet=quiet) as bar:
            rows += prediction_rows(
                predictor, chosen, codec, levels, jobs=jobs or default_jobs(), on_crop=lambda _: bar.update()
            )
    section = logit_mean_statistics(rows)
    table = [
        {"codec": codec, "level": int(level), **values}
        for codec, entry in section.items()
        for level, values in entry["levels"].items()
    ]
    emit_rows(table, ["codec", "level", "sur", "smr", "count"], as_json)
    if write_card:
        path = write_card_level_statistics(card_path(weights), section, recipe.name)
        click.echo(f"wrote the curves of {', '.join(section)} into {path} ({read_card(weights).name})", err=True)
