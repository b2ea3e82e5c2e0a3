"""Population priors for the ``predicted`` search, made from the model's own predictions (no labels).

The ``predicted`` strategy (:mod:`sursmr.rate_control`) moves a population
curve onto each image (:mod:`sursmr.anchoring`), so what matters is that the
curve has the shape of the *predictor's* curves: the search verifies every
probe with the predictor, not with labels. Label means (what
:mod:`training.export` writes from a dataset) are jagged where few crops
carry a level and sit where the labels are, not where the predictor is. This
module therefore encodes training-split crops of a recipe's photos at every
level of each codec's grid, scores them with the model, and stores per level
the **logit mean** of the predictions (the mean of the logits, mapped back:
the curve of a typical image, sharper than the mean of the ratios, which
blurs images that rise at different levels into one flat slope).

Only training-split photos are used (the split rule of the recipe), so the
test split stays unseen by anything the shipped card holds.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sursmr.curves import LEVEL_STATISTICS_KEY
from sursmr.encoding import encode_levels
from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.recipe import Recipe

PRIOR_SOURCE = "model predictions (logit mean over training-split crops)"
_CLIP = 1e-4


def _logit(value: float) -> float:
    clipped = min(max(value, _CLIP), 1.0 - _CLIP)
    return math.log(clipped / (1.0 - clipped))


def prior_crops(
    recipe: Recipe,
    count: int,
    size: tuple[int, int] = (384, 512),
    *,
    per_photo: int = 1,
    second_size: tuple[int, int] = (256, 256),
) -> list[tuple[str, RGBImage]]:
    """Crops of ``count`` distinct training-split photos of ``recipe``: (crop id, pixels), photo by photo.

    Crop 0 of a photo is ``size`` (height, width), at scale 1 of the photo
    brought to the recipe's reference side; with ``per_photo`` > 1 the
    further crops are ``second_size`` at other seeded positions (crop 0 stays
    the same whatever ``per_photo``). Photos are drawn in a seeded order over
    every collection (not by name, which would take one collection first).
    """
    from training.datasets.builder import assign_splits, choose_sources
    from training.datasets.crops import plan_crops, render_crop, stable_seed
    from training.datasets.sources import gather_sources

    if count < 1 or per_photo < 1:
        raise InputError(f"the prior needs at least one photo and one crop per photo, got {count} and {per_photo}")
    photos = choose_sources(gather_sources(recipe.collections, recipe.source_dirs), recipe.max_sources, recipe.seed)
    splits = assign_splits((p.source_id for p in photos), recipe.split, recipe.seed)
    train = sorted(
        (p for p in photos if splits[p.source_id] == "train"),
        key=lambda p: (stable_seed(recipe.seed, "prior", p.source_id), p.source_id),
    )
    if not train:
        raise InputError(f"recipe {recipe.name!r} has no training-split photo installed; see the README's data section")
    sizes = (size,) if per_photo == 1 else (size, *([second_size] * (per_photo - 1)))
    crops = plan_crops(train[:count], sizes, (1.0,), per_photo, recipe.seed, recipe.scale_reference)
    return [(crop.crop_id, render_crop(crop)) for crop in crops]


def prediction_rows(
    predictor: Any,
    crops: Sequence[tuple[str, RGBImage]],
    codec: str,
    levels: Sequence[int],
    *,
    jobs: int = 1,
    on_crop: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, int, float, float]]:
    """``(codec, level, sur, smr)`` predicted for every crop at every level (one encode each)."""
    for crop_id, rgb in crops:
        encodes = encode_levels(rgb, codec, levels, jobs=jobs)
        predictions = predictor.predict(rgb, [e.decoded for e in encodes])
        for encode, prediction in zip(encodes, predictions, strict=True):
            yield codec, encode.level, float(prediction.sur), float(prediction.smr)
        if on_crop is not None:
            on_crop(crop_id)


def logit_mean_statistics(rows: Iterable[tuple[str, int, float, float]]) -> dict[str, Any]:
    """The card's ``level_statistics`` section from predicted rows: per codec and level, logit means and counts."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    for codec, level, sur, smr in rows:
        acc = sums[codec][int(level)]
        acc[0] += _logit(sur)
        acc[1] += _logit(smr)
        acc[2] += 1
    if not sums:
        raise InputError("no predictions to summarise")

    def mean(total: float, count: float) -> float:
        return round(1.0 / (1.0 + math.exp(-total / count)), 4)

    return {
        codec: {
            "source": PRIOR_SOURCE,
            "levels": {
                str(level): {"sur": mean(acc[0], acc[2]), "smr": mean(acc[1], acc[2]), "count": int(acc[2])}
                for level, acc in sorted(per_level.items())
            },
        }
        for codec, per_level in sorted(sums.items())
    }


def write_card_level_statistics(card_file: str | Path, section: dict[str, Any], recipe: str) -> Path:
    """Replace the codecs of ``section`` in the card's ``level_statistics`` (other codecs and fields kept)."""
    path = Path(card_file)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the model card ({exc})") from None
    merged = dict(card.get(LEVEL_STATISTICS_KEY) or {})
    for codec, entry in section.items():
        merged[codec] = {**entry, "recipe": recipe}
    card[LEVEL_STATISTICS_KEY] = merged
    return atomic_write_bytes(path, (json.dumps(card, indent=2) + "\n").encode("utf-8"))
