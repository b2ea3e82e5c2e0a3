"""``sursmr-train curve-model``: the per-image curve model the ``predicted`` search starts from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from sursmr.cli.app import emit_rows, jobs_option, json_option, progress, quiet_option
from training.cli import main


def _steps(values: tuple[str, ...]) -> dict[str, int]:
    steps: dict[str, int] = {}
    for value in values:
        codec, _, step = value.partition("=")
        if not codec or not step.isdigit() or int(step) < 1:
            raise click.BadParameter(f"expected CODEC=N with N ≥ 1, got {value!r}", param_hint="--step")
        steps[codec.strip()] = int(step)
    return steps


def _dataset_recipe(data: Path) -> Any:
    """The recipe a built dataset records in its ``dataset.json``."""
    from sursmr_core.errors import InputError
    from training.datasets.items import read_header
    from training.datasets.recipe import Recipe

    recipe = read_header(data).get("recipe")
    if not isinstance(recipe, dict):
        raise InputError(f"{data}/dataset.json records no recipe; build the dataset with sursmr-train build")
    return Recipe.from_dict(recipe)


@main.command("curve-model")
@click.option("--model", default=None, help="Weights name or .safetensors path [default: the shipped model].")
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="Recipe whose photos to use.")
@click.option("--photos", default=88, show_default=True, type=click.IntRange(1), help="Training-split photos.")
@click.option(
    "--crops-per-photo",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Crops per photo: the first 384×512, the others 256×256 at other positions.",
)
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="CODEC=N",
    help="Encode every N-th level of CODEC's grid (in ascending order, from the first); repeatable [default: all].",
)
@click.option(
    "--grids",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON cache of the predicted grids; resumed when it exists (crops and codecs already in it are kept).",
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Fit on a built dataset's training items (their stored levels: no encodes) instead of encoding "
    "crops of the recipe's photos; --recipe, --photos, --crops-per-photo and --step are then unused.",
)
@click.option("--write-card", is_flag=True, help="Store the model in the model card beside the weights.")
@click.option("--device", default="cpu", show_default=True)
@jobs_option
@quiet_option
@json_option
def curve_model_command(
    model: str | None,
    recipe_spec: str,
    photos: int,
    crops_per_photo: int,
    steps: tuple[str, ...],
    grids: Path,
    data: Path | None,
    write_card: bool,
    device: str,
    jobs: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Fit where each codec's predicted SUR/SMR curves cross fixed ratios, from the original's pixel statistics.

    Encodes crops of training-split photos at every level of each codec's
    grid, scores them with the model (no labels needed), and fits one ridge
    regression per codec, output and threshold from
    ``sursmr.curve_model.image_features`` to the grid index where the
    predicted curve crosses it. Prints the leave-one-photo-out error in grid
    steps against the constant guess (what a population curve does). With
    ``--write-card`` the ``predicted`` search moves the card's population
    curve onto each image by these guesses before its first encode.

    \b
    Examples:
      sursmr-train curve-model --photos 16 --crops-per-photo 1 --grids /tmp/grids.json
      sursmr-train curve-model --step bpg=2 --step vvc=2 --grids grids.json --write-card
      sursmr-train curve-model --data data/default --grids grids-data.json --write-card
    """
    import codec_adapters
    from sursmr.curve_model import image_features
    from sursmr.encoding import default_jobs
    from sursmr.models.weights import card_path, read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL, load
    from training.curve_model import (
        CURVE_SOURCE,
        dataset_grids,
        fit_curve_model,
        photo_of,
        prediction_grids,
        summary_rows,
        write_card_curve_model,
    )
    from training.curve_prior import prior_crops
    from training.datasets.recipe import load_recipe

    if data is not None:
        recipe = _dataset_recipe(data)
        steps = ()
    else:
        recipe = load_recipe(recipe_spec)
    step_of = _steps(steps)
    unknown = sorted(set(step_of) - {plan.codec for plan in recipe.codecs})
    if unknown:
        raise click.BadParameter(f"codecs not in recipe {recipe.name!r}: {', '.join(unknown)}", param_hint="--step")
    orders: dict[str, list[int]] = {}
    levels: dict[str, list[int]] = {}
    for plan in recipe.codecs:
        axis = codec_adapters.get(plan.codec).levels
        order = [level for level in axis.worst_to_best() if level in set(plan.levels)]
        orders[plan.codec] = order
        levels[plan.codec] = sorted(plan.levels)[:: step_of.get(plan.codec, 1)]
    name = model or DEFAULT_MODEL
    weights = resolve_weights(name)
    predictor = load(name, device)
    if data is not None:
        count = sum(1 for _ in data.glob("items/*/*.json"))
        with progress(total=count, desc="curve grids (stored levels)", quiet=quiet) as bar:
            grid, originals = dataset_grids(predictor, data, grids, on_item=lambda _: bar.update())
        chosen = list(originals.items())
    else:
        chosen = prior_crops(recipe, photos, per_photo=crops_per_photo)
        with progress(total=len(chosen), desc="curve grids", quiet=quiet) as bar:
            grid = prediction_grids(
                predictor, chosen, levels, grids, jobs=jobs or default_jobs(), on_crop=lambda _: bar.update()
            )
    wanted = {crop_id for crop_id, _ in chosen}
    features = {crop_id: image_features(rgb) for crop_id, rgb in chosen}
    section, report = fit_curve_model(features, {c: g for c, g in grid.items() if c in wanted}, orders)
    rows = summary_rows(report)
    emit_rows(rows, ["codec", "output", "crops", "alpha", "loo_mae", "constant_mae", "ratio"], as_json)
    section.update(
        {
            "source": CURVE_SOURCE,
            "command": " ".join(["sursmr-train", *sys.argv[1:]]),
            "predictions_of": predictor.weights_sha256,
            "recipe": recipe.name,
            "photos": len({photo_of(c) for c in features}),
            "crops": report["crops"],
            "steps": {codec: step_of.get(codec, 1) for codec in orders},
            "data": None if data is None else f"{data.name} (stored levels of its train split)",
            "leave_one_photo_out": rows,
        }
    )
    if write_card:
        path = write_card_curve_model(card_path(weights), section)
        click.echo(f"wrote the curve model into {path} ({read_card(weights).name})", err=True)
