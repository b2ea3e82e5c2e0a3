"""``sursmr models``: registered network configurations and whether weights for them are here."""

from __future__ import annotations

from typing import Any

from sursmr.cli.app import emit_json, emit_table, json_option, main


def model_rows() -> list[dict[str, Any]]:
    """One row per registered configuration, with the weights files whose card names it."""
    # torch and timm load here, not when the CLI starts
    from sursmr.confidence import table_of
    from sursmr.models import MODELS, config_parameter_count
    from sursmr.models.weights import WEIGHTS_DIR, list_weights

    by_architecture: dict[str, list[str]] = {}
    confidences: dict[str, dict[str, Any]] = {}
    for path, card in list_weights():
        if card is not None:
            by_architecture.setdefault(card.config.name, []).append(str(path))
            table = table_of(card)
            if table is not None:
                confidences[str(path)] = {"confidences": table.confidences(), "default": table.default}
    rows = []
    for name, config in MODELS.items():
        weights = by_architecture.get(name, [])
        rows.append(
            {
                "name": name,
                "backbone": config.backbone,
                "head": config.head,
                "input_mode": config.input_mode,
                "params_m": round(config_parameter_count(config) / 1e6, 2),
                "weights_present": bool(weights),
                "weights": weights,
                "confidences": {path: confidences[path] for path in weights if path in confidences},
                "weights_dir": str(WEIGHTS_DIR),
                "description": config.description,
            }
        )
    return rows


@main.command()
@json_option
def models(as_json: bool) -> None:
    """List registered predictor networks, their size and whether trained weights are installed.

    Weights are found in the package's weights/ folder through their model
    cards (`<name>.json` beside `<name>.safetensors`). The confidences column
    lists the `sursmr compress --confidence` values a card is calibrated for
    (default marked with *).

    \b
    Examples:
      sursmr models
      sursmr models --json | jq -r 'select(.weights_present) | .weights[]'
    """
    rows = model_rows()
    if as_json:
        for row in rows:
            emit_json(row)
        return
    table = [
        {
            **row,
            "params_m": f"{row['params_m']:.2f}",
            "weights": ("yes " + ", ".join(row["weights"])) if row["weights_present"] else "no",
            "confidences": "; ".join(
                ", ".join(f"{c:g}{'*' if c == found['default'] else ''}" for c in found["confidences"])
                for found in row["confidences"].values()
            )
            or "-",
        }
        for row in rows
    ]
    emit_table(table, ["name", "backbone", "head", "input_mode", "params_m", "weights", "confidences"])
