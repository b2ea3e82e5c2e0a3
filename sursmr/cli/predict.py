"""``sursmr predict``: predicted SUR and SMR of one compressed image against its original."""

from __future__ import annotations

from pathlib import Path

import click

from sursmr.cli.app import (
    device_option,
    emit_rows,
    json_option,
    main,
    max_tiles_option,
    runtime_option,
    strict_option,
)
from sursmr.tiling import parse_max_tiles
from sursmr_core.errors import InputError
from sursmr_core.imaging import load_image


@main.command()
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("distorted", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Weights name (see `sursmr models`) or path to a .safetensors file with its .json card "
    "[default: the shipped model].",
)
@device_option
@runtime_option
@max_tiles_option
@strict_option
@json_option
def predict(
    reference: Path,
    distorted: Path,
    model_name: str | None,
    device: str,
    runtime: str,
    max_tiles: str | None,
    strict: bool,
    as_json: bool,
) -> None:
    """Predict SUR and SMR (each in [0, 1]) of DISTORTED as a compressed version of REFERENCE.

    Both images must have the same size. Exit code 6 when the model's weights
    are not installed.

    \b
    Examples:
      sursmr predict photo.png photo_q40.jpg
      sursmr predict photo.png photo_q40.jpg --model my_model.safetensors --json
    """
    ref = load_image(reference, strict=strict)
    dist = load_image(distorted, strict=strict)
    if ref.shape != dist.shape:
        raise InputError(
            f"{distorted} is {dist.shape[1]}x{dist.shape[0]} but {reference} is {ref.shape[1]}x{ref.shape[0]}; "
            "a compressed image must have its original's size"
        )
    # torch loads only once the inputs are known to be usable
    import sursmr.predictor

    tiles = parse_max_tiles(max_tiles)
    predictor = sursmr.predictor.load(model_name, device, runtime=runtime, max_tiles=tiles)
    (result,) = predictor.predict(ref, [dist])
    row = {
        "reference": str(reference),
        "distorted": str(distorted),
        "model": predictor.name,
        "sur": result.sur,
        "smr": result.smr,
    }
    emit_rows([row], ["distorted", "model", "sur", "smr"], as_json)
