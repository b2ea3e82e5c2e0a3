"""Train the per-image curve model (:mod:`sursmr.curve_model`) from the predictor's own curves on training crops.

Data: training-split crops of a recipe's photos (:func:`training.curve_prior.prior_crops`),
each encoded at the levels of every codec's grid and scored by the model
(:func:`prediction_grids`; no proxy labels, so nothing but the photos is
needed). Per crop, codec, output (SUR, SMR) and threshold, the target is the
grid index where the predicted curve first reaches the threshold
(:func:`sursmr.curve_model.crossings`). One ridge regression per target from
the standardised :func:`sursmr.curve_model.image_features`; its strength is
chosen per codec and output by leave-one-photo-out error (the
crops of a photo are held out together), which :func:`fit_curve_model` also reports
against the constant guess (the mean crossing: what a population curve does).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sursmr.curve_model import CURVE_MODEL_KEY, FEATURES, THRESHOLDS, crossings
from sursmr.encoding import encode_levels
from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from sursmr_core.outputs import atomic_write_bytes

ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
"""Ridge strengths tried (on standardised features), per codec and output."""

CURVE_SOURCE = "ridge on image_features -> grid index where the model's predicted curve crosses each threshold"

Grid = list[tuple[int, int, float, float]]
"""``(level, bytes, sur, smr)`` of one crop and codec."""


def read_grids(path: str | Path) -> dict[str, dict[str, Grid]]:
    """The grid cache: ``{crop id: {codec: [(level, bytes, sur, smr), ...]}}``; empty when the file is missing."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            crop: {
                codec: [(int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows] for codec, rows in entry.items()
            }
            for crop, entry in raw.items()
        }
    except (OSError, json.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{path}: not a curve-model grid cache ({exc}); delete it to start again") from None


def prediction_grids(
    predictor: Any,
    crops: Sequence[tuple[str, RGBImage]],
    levels: Mapping[str, Sequence[int]],
    cache: str | Path,
    *,
    jobs: int = 1,
    on_crop: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Grid]]:
    """Encode every crop at ``levels[codec]`` and score it; resumable through the JSON ``cache`` (written per crop)."""
    grids = read_grids(cache)
    for crop_id, rgb in crops:
        entry = grids.get(crop_id, {})
        missing = [codec for codec in levels if codec not in entry]
        for codec in missing:
            encodes = encode_levels(rgb, codec, list(levels[codec]), jobs=jobs)
            predictions = predictor.predict(rgb, [e.decoded for e in encodes])
            entry[codec] = [
                (e.level, len(e.data), float(p.sur), float(p.smr)) for e, p in zip(encodes, predictions, strict=True)
            ]
        if missing:
            grids[crop_id] = entry
            atomic_write_bytes(Path(cache), json.dumps(grids).encode("utf-8"))
        if on_crop is not None:
            on_crop(crop_id)
    return grids


def dataset_grids(
    predictor: Any,
    data: str | Path,
    cache: str | Path,
    *,
    split: str = "train",
    on_item: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, Grid]], dict[str, RGBImage]]:
    """The model's grids on a built dataset's ``split`` items (their stored decoded levels: no encodes).

    Returns ``(grids, references)``: per crop id and codec the scored levels
    the item holds (a training item's seeded subset of the grid, both ends
    included), and each crop's original. Resumable through the JSON ``cache``
    like :func:`prediction_grids` (written per item).
    """
    from training.datasets.items import decode_png, read_items

    grids = read_grids(cache)
    references: dict[str, RGBImage] = {}
    records = [r for r in read_items(data) if r.get("split") == split]
    if not records:
        raise InputError(f"{data}: no {split} item (build the dataset first: sursmr-train build)")
    for record in records:
        crop_id, codec = str(record["crop"]["crop_id"]), str(record["codec"])
        with np.load(Path(data) / str(record["npz"])) as arrays:
            reference = decode_png(arrays["reference_png"])
            references[crop_id] = reference
            if codec not in grids.get(crop_id, {}):
                count = len(record["levels"])
                decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i in range(count)]
                predictions = predictor.predict(reference, decoded)
                grids.setdefault(crop_id, {})[codec] = [
                    (int(level), int(nbytes), float(p.sur), float(p.smr))
                    for level, nbytes, p in zip(record["levels"], record["bytes"], predictions, strict=True)
                ]
                atomic_write_bytes(Path(cache), json.dumps(grids).encode("utf-8"))
        if on_item is not None:
            on_item(str(record["item_id"]))
    return {c: g for c, g in grids.items() if c in references}, references


def crossing_targets(grid: Grid, order: Sequence[int]) -> dict[str, list[float]]:
    """Per output, the crossing index (on ``order``, the grid worst to best) of each of its :data:`THRESHOLDS`."""
    index_of = {level: i for i, level in enumerate(order)}
    rows = sorted((index_of[level], sur, smr) for level, _, sur, smr in grid if level in index_of)
    if len(rows) < 2:
        raise InputError(f"a grid needs at least two levels of {list(order)[:3]}..., got {len(rows)}")
    xs = [float(r[0]) for r in rows]
    return {
        "sur": crossings([r[1] for r in rows], xs, THRESHOLDS["sur"]),
        "smr": crossings([r[2] for r in rows], xs, THRESHOLDS["smr"]),
    }


def _ridge(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], alpha: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Ridge with an unpenalised intercept: (intercepts (targets,), coefficients (targets, features))."""
    xm = x.mean(axis=0)
    ym = y.mean(axis=0)
    xc = x - xm
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - ym))
    return ym - xm @ coef, coef.T


def _held_out_residuals(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], groups: Sequence[str], alpha: float | None
) -> npt.NDArray[np.float64]:
    """Residuals of each row predicted by a fit without its group (``alpha`` None: the constant guess, the mean)."""
    labels = np.asarray(groups)
    residuals = np.empty_like(y)
    for group in dict.fromkeys(groups):
        out = labels == group
        if alpha is None:
            residuals[out] = y[out] - y[~out].mean(axis=0)
        else:
            intercept, coef = _ridge(x[~out], y[~out], alpha)
            residuals[out] = y[out] - (intercept + x[out] @ coef.T)
    return residuals


def photo_of(crop_id: str) -> str:
    """The photo a crop id of :func:`training.datasets.crops.plan_crops` belongs to (``<photo>-NN``)."""
    return crop_id.rsplit("-", 1)[0]


def fit_curve_model(
    features: Mapping[str, Mapping[str, float]],
    grids: Mapping[str, Mapping[str, Grid]],
    orders: Mapping[str, Sequence[int]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card section and a report (leave-one-photo-out MAE in grid indices, ridge vs the constant guess).

    ``features``: :func:`image_features` per crop; ``grids``: per crop and
    codec; ``orders``: per codec, the grid's levels worst to best. Crops of
    one photo (:func:`photo_of`) are held out together.
    """
    crops = sorted(c for c in grids if c in features)
    if len(crops) < 8:
        raise InputError(f"the curve model needs at least 8 crops with grids and features, got {len(crops)}")
    x = np.asarray([[features[c][f] for f in FEATURES] for c in crops], dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    section: dict[str, Any] = {
        "features": list(FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "codecs": {},
    }
    report: dict[str, Any] = {"crops": len(crops), "codecs": {}}
    for codec, order in orders.items():
        have = [c for c in crops if codec in grids[c]]
        if len(have) < 8:
            continue
        rows = [crops.index(c) for c in have]
        targets = [crossing_targets(grids[c][codec], order) for c in have]
        entry: dict[str, Any] = {"levels": [int(level) for level in order]}
        codec_report: dict[str, Any] = {}
        for output, thresholds in THRESHOLDS.items():
            y = np.asarray([t[output] for t in targets], dtype=np.float64)
            groups = [photo_of(c) for c in have]
            fits = []
            for alpha in ALPHAS:
                residuals = _held_out_residuals(z[rows], y, groups, alpha)
                fits.append((float(np.abs(residuals).mean()), alpha, residuals))
            error, alpha, residuals = min(fits, key=lambda fit: fit[0])
            intercept, coef = _ridge(z[rows], y, alpha)
            constant = np.abs(_held_out_residuals(z[rows], y, groups, None)).mean(axis=0)
            entry[output] = {
                "thresholds": list(thresholds),
                "alpha": alpha,
                "intercept": [round(float(v), 5) for v in intercept],
                "coef": [[round(float(v), 5) for v in row] for row in coef],
            }
            codec_report[output] = {
                "alpha": alpha,
                "loo_mae": {
                    str(t): round(float(v), 3) for t, v in zip(thresholds, np.abs(residuals).mean(axis=0), strict=True)
                },
                "constant_mae": {str(t): round(float(v), 3) for t, v in zip(thresholds, constant, strict=True)},
                "loo_mae_mean": round(error, 3),
                "constant_mae_mean": round(float(constant.mean()), 3),
            }
        section["codecs"][codec] = entry
        report["codecs"][codec] = {"crops": len(have), **codec_report}
    if not section["codecs"]:
        raise InputError("no codec has grids on at least 8 crops")
    return section, report


def write_card_curve_model(card_file: str | Path, section: Mapping[str, Any]) -> Path:
    """Store ``section`` under the card's :data:`CURVE_MODEL_KEY` (the other fields kept)."""
    path = Path(card_file)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the model card ({exc})") from None
    card[CURVE_MODEL_KEY] = dict(section)
    return atomic_write_bytes(path, (json.dumps(card, indent=2) + "\n").encode("utf-8"))


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per codec and output: leave-one-photo-out MAE (grid indices) of the ridge and of the constant guess."""
    rows = []
    for codec, entry in report["codecs"].items():
        for output in THRESHOLDS:
            part = entry[output]
            rows.append(
                {
                    "codec": codec,
                    "output": output,
                    "crops": entry["crops"],
                    "alpha": part["alpha"],
                    "loo_mae": part["loo_mae_mean"],
                    "constant_mae": part["constant_mae_mean"],
                    "ratio": round(part["loo_mae_mean"] / part["constant_mae_mean"], 3)
                    if part["constant_mae_mean"] > 0
                    else math.nan,
                }
            )
    return rows
