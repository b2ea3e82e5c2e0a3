"""Calibrate a predictor's ``--confidence`` margins on a held-out split and store them in its model card.

Reads a built dataset (items whose every level has a SUR label; SMR may be
``null`` where no machine could judge), scores every level with the
predictor (cached beside the dataset), and runs the split-conformal
calibration of :mod:`sursmr.confidence`. The table goes into the card
beside the weights under ``"confidence"``; ``sursmr compress --confidence P``
reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sursmr.compress_settings import DEFAULT_TARGET_SMR, DEFAULT_TARGET_SUR
from sursmr.confidence import (
    CONFIDENCES,
    DEFAULT_RELIABILITY,
    DEFAULT_SUBSTEPS,
    ConfidenceTable,
    ItemCurves,
    Target,
    calibrate,
)
from sursmr_core.errors import InputError
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.items import read_header
from training.datasets.relabel import SmrJury
from training.datasets.torch_dataset import LABEL_KEYS

CALIBRATION_TARGETS: tuple[Target, ...] = tuple(
    (sur, smr) for smr in (None, 0.8, 0.9) for sur in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
)
"""Target pairs a card is calibrated at; others are answered from the ones around them."""


def labelled_levels(record: Mapping[str, Any], label_kind: str = "jnd") -> dict[str, Any] | None:
    """The record's levels ordered worst → best quality with labels, or None when a level lacks a SUR label.

    Returns ``order`` (stored indices), ``levels``, ``nbytes``, ``sur``, ``smr``
    (NaN where unjudged) and ``scores`` (metric name → values) as arrays.
    """
    labels = record["labels"]
    sur_values = labels.get(LABEL_KEYS[label_kind]) or []
    n = len(record["levels"])
    if len(sur_values) != n or any(v is None or not math.isfinite(float(v)) for v in sur_values):
        return None
    order = sorted(range(n), key=lambda i: record["levels"][i], reverse=record["better"] == "lower")
    smr = labels.get("smr") or [None] * n
    return {
        "order": order,
        "levels": [int(record["levels"][i]) for i in order],
        "nbytes": np.array([record["bytes"][i] for i in order], dtype=np.float64),
        "sur": np.array([float(sur_values[i]) for i in order]),
        "smr": np.array([math.nan if smr[i] is None else float(smr[i]) for i in order]),
        "scores": {k: np.array([float(v[i]) for i in order]) for k, v in labels.get("scores", {}).items()},
    }


def item_curves(
    records: Sequence[Mapping[str, Any]], predictions: Mapping[str, Mapping[str, Any]], label_kind: str = "jnd"
) -> list[ItemCurves]:
    """Calibration items: every record with all levels labelled and predicted."""
    items = []
    for record in records:
        labelled = labelled_levels(record, label_kind)
        pred = predictions.get(str(record["item_id"]))
        if labelled is None or pred is None:
            continue
        order = labelled["order"]
        items.append(
            ItemCurves(
                item_id=str(record["item_id"]),
                codec=str(record["codec"]),
                group=str(record.get("source_id") or record["crop"]["source_id"]),
                nbytes=labelled["nbytes"],
                pred_sur=np.array([pred["sur"][i] for i in order], dtype=np.float64),
                pred_smr=np.array([pred["smr"][i] for i in order], dtype=np.float64),
                true_sur=labelled["sur"],
                true_smr=labelled["smr"],
            )
        )
    return items


def calibrate_predictor(
    predictor: Any,
    data: str | Path,
    *,
    split: str = "val",
    confidences: Sequence[float] = CONFIDENCES,
    targets: Sequence[Target] = CALIBRATION_TARGETS,
    label_kind: str = "jnd",
    cache_key: str | None = None,
    substeps: int = DEFAULT_SUBSTEPS,
) -> ConfidenceTable:
    """Conformal margins of ``predictor`` on ``split`` of the dataset at ``data`` (see :mod:`sursmr.confidence`)."""
    from training.evaluate import level_predictions, read_records

    records = read_records(data, split)
    if not records:
        raise InputError(f"{data}: split {split!r} has no items to calibrate on")
    predictions = level_predictions(predictor, data, records, cache_key=cache_key)
    items = item_curves(records, predictions, label_kind)
    if not items:
        raise InputError(f"{data}: no {split} item has every level labelled")
    recipe = read_header(data, required=False).get("recipe") or {}
    jury = SmrJury.of_recipe(recipe)
    info = {
        "method": (
            "split-conformal: per item, the smallest margin from which the controller's pick (levels densified "
            f"x{substeps} by linear interpolation) meets the targets on the proxy labels; margin = the "
            "ceil((n+1)P)-th smallest; codecs with too few items use every codec's scores (scope 'pooled')"
        ),
        "data": Path(data).name,
        "recipe": recipe.get("name"),
        "split": split,
        "labels": f"proxy: {LABEL_KEYS[label_kind]} and machine-zoo SMR"
        + (f" ({jury.describe()})" if jury is not None else ""),
        "smr_jury": jury.to_dict() if jury is not None else None,
        "items": {codec: sum(1 for i in items if i.codec == codec) for codec in sorted({i.codec for i in items})},
        "source_photos": len({i.group for i in items}),
        "substeps": substeps,
        "default_rule": (
            f"fewest mean validation bytes among the confidences with validation hit rate >= {DEFAULT_RELIABILITY:g} "
            f"whose margins at the default targets (SUR {DEFAULT_TARGET_SUR:g}, SMR {DEFAULT_TARGET_SMR:g}) the "
            f"predictions reach on >= {DEFAULT_RELIABILITY:g} of the validation images of every codec; none "
            "(no margin unless --confidence is given) when no confidence qualifies"
        ),
    }
    return calibrate(
        items,
        targets,
        confidences,
        substeps=substeps,
        default_targets=(DEFAULT_TARGET_SUR, DEFAULT_TARGET_SMR),
        info=info,
    )


def write_card_confidence(card_file: str | Path, table: ConfidenceTable) -> Path:
    """Store ``table`` under ``"confidence"`` in the model card JSON at ``card_file`` (other fields kept)."""
    path = Path(card_file)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the model card ({exc})") from None
    card["confidence"] = table.to_dict()
    return atomic_write_bytes(path, (json.dumps(card, indent=2) + "\n").encode("utf-8"))
