"""Seeded crops of source photos: the plan (which crop of which photo, where) and the pixels of one crop.

Every crop remembers the id of the photo it came from, so splits are made by
source photo (see :mod:`training.datasets.sources`, which re-exports this
module's names).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage, load_image

if TYPE_CHECKING:
    from training.datasets.sources import SourcePhoto


@dataclass(frozen=True)
class CropSpec:
    """One crop: resize ``source`` by ``scale`` (Lanczos), then cut ``height``×``width`` at (``top``, ``left``).

    ``crop_id`` is unique and file-name safe; ``source_id`` is the photo it came from.
    """

    crop_id: str
    source_id: str
    path: str
    scale: float
    height: int
    width: int
    top: int
    left: int

    def to_dict(self) -> dict[str, object]:
        return {
            "crop_id": self.crop_id,
            "source_id": self.source_id,
            "path": self.path,
            "scale": self.scale,
            "height": self.height,
            "width": self.width,
            "top": self.top,
            "left": self.left,
        }


def slug(text: str) -> str:
    """A file-name-safe version of an id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from strings/ints that does not depend on Python's hash randomisation."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        width, height = im.size
    return height, width


def plan_crops(
    photos: Sequence[SourcePhoto],
    crop_sizes: Sequence[tuple[int, int]],
    crop_scales: Sequence[float],
    crops_per_source: int,
    seed: int,
    scale_reference: int | None = None,
) -> list[CropSpec]:
    """Deterministic crop plan: ``crops_per_source`` crops of each photo.

    Crop *i* of a photo uses scale ``crop_scales[i % len]`` and size
    ``crop_sizes[(i // len(scales)) % len]``, so scales and sizes are spread
    evenly; the position is drawn from a generator seeded by (``seed``, photo
    id, i), so adding or removing a photo never moves another photo's crops.
    A size that does not fit the scaled photo is shrunk to fit (never below
    16 px); a photo too small for any crop is skipped.

    ``scale_reference``: when set, scales are relative to a photo whose
    shorter side is this many pixels: the photo is first brought to that
    shorter side (never enlarged), so a crop of a 5120-pixel wallpaper
    shows as much of the scene as a crop of a 640-pixel photo, not a
    featureless patch of it.
    """
    crops: list[CropSpec] = []
    for photo in photos:
        src_h, src_w = _image_size(photo.path)
        for i in range(crops_per_source):
            scale = crop_scales[i % len(crop_scales)]
            if scale_reference is not None:
                scale = round(min(1.0, scale * scale_reference / min(src_h, src_w)), 6)
            size_h, size_w = crop_sizes[(i // len(crop_scales)) % len(crop_sizes)]
            scaled_h, scaled_w = max(1, round(src_h * scale)), max(1, round(src_w * scale))
            height, width = min(size_h, scaled_h), min(size_w, scaled_w)
            if height < 16 or width < 16:
                continue
            rng = np.random.default_rng(stable_seed(seed, photo.source_id, i))
            top = int(rng.integers(0, scaled_h - height + 1))
            left = int(rng.integers(0, scaled_w - width + 1))
            crop_id = f"{slug(photo.source_id)}-{i:02d}"
            crops.append(CropSpec(crop_id, photo.source_id, str(photo.path), scale, height, width, top, left))
    return crops


def render_crop(spec: CropSpec) -> RGBImage:
    """The crop's pixels: uint8 RGB of shape (height, width, 3)."""
    import warnings

    from sursmr_core.imaging import ImageConversionWarning

    with warnings.catch_warnings():
        # palette/alpha sources (a few opencv-doc PNGs) are flattened on purpose
        warnings.simplefilter("ignore", ImageConversionWarning)
        rgb = load_image(spec.path)
    if spec.scale != 1.0:
        src_h, src_w = rgb.shape[:2]
        size = (max(1, round(src_w * spec.scale)), max(1, round(src_h * spec.scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
    crop = rgb[spec.top : spec.top + spec.height, spec.left : spec.left + spec.width]
    if crop.shape[:2] != (spec.height, spec.width):
        raise InputError(f"crop {spec.crop_id} does not fit its source {spec.path} (source changed?)")
    return np.ascontiguousarray(crop)
