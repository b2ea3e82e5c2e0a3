"""``sursmr-train calibrate``: the margins behind ``sursmr compress --confidence P``, written into a model card."""

from __future__ import annotations

from pathlib import Path

import click

from sursmr.cli.app import emit_rows, json_option
from training.cli import main


@main.command()
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Dataset built by `sursmr-train build` (items with every level labelled).",
)
@click.option("--model", default=None, help="Weights name or .safetensors path [default: the shipped model].")
@click.option("--split", default="val", show_default=True, help="Held-out split to calibrate on.")
@click.option(
    "--confidences",
    default="0.75,0.9,0.95",
    show_default=True,
    help="Comma-separated confidences to calibrate.",
)
@click.option("--write-card", is_flag=True, help="Store the table in the model card beside the weights.")
@click.option("--device", default="cpu", show_default=True)
@json_option
def calibrate(
    data_dir: Path, model: str | None, split: str, confidences: str, write_card: bool, device: str, as_json: bool
) -> None:
    """Calibrate the margin for each confidence (split-conformal on held-out proxy labels).

    For every codec, calibrated target pair and confidence P, finds the margin
    with which a share ≥ P of held-out images truly meet the targets (on the
    dataset's proxy labels), and prints one row per entry. With --write-card
    the table goes into the model card, where `sursmr compress --confidence`
    and `sursmr models` read it.

    \b
    Examples:
      sursmr-train calibrate --data data/default
      sursmr-train calibrate --data data/default --write-card --json
    """
    from sursmr.models.weights import card_path, read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL, load
    from sursmr_core.errors import InputError
    from training.calibration import calibrate_predictor, write_card_confidence
    from training.evaluate import prediction_cache_key

    try:
        wanted = tuple(float(v) for v in confidences.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--confidences must be numbers separated by commas, got {confidences!r}") from None
    name = model or DEFAULT_MODEL
    weights = resolve_weights(name)
    card = read_card(weights)
    predictor = load(name, device)
    table = calibrate_predictor(
        predictor, data_dir, split=split, confidences=wanted, cache_key=prediction_cache_key(card)
    )
    rows = [
        {
            **entry.to_dict(),
            "target_smr": "-" if entry.target_smr is None and not as_json else entry.target_smr,
        }
        for entry in table.entries
    ]
    emit_rows(
        rows,
        ["codec", "target_sur", "target_smr", "confidence", "margin", "items", "scope", "val_hit_rate"],
        as_json,
    )
    click.echo(f"default confidence: {table.default}", err=True)
    if write_card:
        path = write_card_confidence(card_path(weights), table)
        click.echo(f"wrote the confidence table into {path}", err=True)
