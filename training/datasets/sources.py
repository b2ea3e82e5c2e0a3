"""Offline source photos and the deterministic crops that stretch them.

Few photos can be had offline (no dataset downloads), so each is cropped at
several scales. Every crop remembers the id of the photo it came from: the
train/val/test split is made *by source photo*, never by crop, so no photo
leaks between splits.

Collections (registered in :data:`COLLECTIONS`; licences checked by hand):

``skimage``
    scikit-image's bundled colour photos (``skimage/data``). Licences are in
    the docstrings of ``skimage/data/_fetchers.py``: astronaut, hubble deep
    field (NASA, public domain), rocket (SpaceX, public domain), chelsea,
    coffee, retina (CC0), immunohistochemistry ("no known copyright
    restrictions"). Greyscale images (camera, coins, moon, text...), synthetic
    ones (color, logo, phantom, chessboard) and the stereo motorcycle pair
    (Middlebury, no licence stated) are left out.
``opencv-doc``
    Debian package ``opencv-doc`` (``apt-get install opencv-doc``; 4.6.0),
    photos under ``/usr/share/doc/opencv-doc/examples/data``, ``.../text`` and
    ``.../alphamat/input_images``. ``/usr/share/doc/opencv-doc/copyright``
    puts the tree (``Files: *``) under Apache-2.0 AND BSD-3-Clause. Only
    colour photographs are listed (no logos, drawings, calibration boards).
``matplotlib``
    ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy photo, public domain).
``dir:PATH``
    any folder of photos a user points a recipe at (``Recipe.source_dirs``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage, load_image
from sursmr_core.levels import Availability
from sursmr_core.registry import Registry


@dataclass(frozen=True)
class SourcePhoto:
    """One source photo on disk. ``source_id`` is stable ("collection/stem") and used for splitting."""

    source_id: str
    path: Path
    collection: str
    licence: str


@dataclass(frozen=True)
class PhotoCollection:
    """A named set of photos that may or may not be installed here."""

    name: str
    description: str
    find: Callable[[], list[SourcePhoto]]
    availability: Callable[[], Availability]


COLLECTIONS: Registry[PhotoCollection] = Registry("photo collection")


def _skimage_dir() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


# file -> licence, from skimage/data/_fetchers.py docstrings
_SKIMAGE_PHOTOS = {
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "ihc.png": "no known copyright restrictions (CMMI)",
    "retina.jpg": "CC0 1.0",
    "rocket.jpg": "public domain (SpaceX)",
}


def _skimage_find() -> list[SourcePhoto]:
    root = _skimage_dir()
    if root is None:
        return []
    return [
        SourcePhoto(f"skimage/{Path(name).stem}", root / name, "skimage", licence)
        for name, licence in sorted(_SKIMAGE_PHOTOS.items())
        if (root / name).is_file()
    ]


def _skimage_availability() -> Availability:
    root = _skimage_dir()
    if root is None:
        return Availability(False, "scikit-image is not installed (pip install 'sursmr[train]')")
    if not _skimage_find():
        return Availability(False, f"no sample photos under {root}")
    return Availability(True)


COLLECTIONS.register(
    PhotoCollection("skimage", "scikit-image sample colour photos (7)", _skimage_find, _skimage_availability)
)

OPENCV_DOC_ROOT = Path("/usr/share/doc/opencv-doc/examples")
_OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright, Files: *)"
# colour photographs only, checked by eye; relative to OPENCV_DOC_ROOT
_OPENCV_PHOTOS = (
    "data/aero1.jpg",
    "data/aero3.jpg",
    "data/aloeL.jpg",
    "data/apple.jpg",
    "data/baboon.jpg",
    "data/board.jpg",
    "data/building.jpg",
    "data/butterfly.jpg",
    "data/chicky_512.png",
    "data/ela_original.jpg",
    "data/fruits.jpg",
    "data/graf1.png",
    "data/home.jpg",
    "data/left.jpg",
    "data/leuvenA.jpg",
    "data/licenseplate_motion.jpg",
    "data/messi5.jpg",
    "data/orange.jpg",
    "data/pca_test1.jpg",
    "data/rubberwhale1.png",
    "data/smarties.png",
    "data/squirrel_cls.jpg",
    "data/starry_night.jpg",
    "data/stuff.jpg",
    "data/sudoku.png",
    "text/scenetext01.jpg",
    "text/scenetext02.jpg",
    "text/scenetext03.jpg",
    "text/scenetext04.jpg",
    "text/scenetext05.jpg",
    "text/scenetext06.jpg",
    "alphamat/input_images/plant.jpg",
)


def _opencv_find() -> list[SourcePhoto]:
    return [
        SourcePhoto(f"opencv-doc/{Path(rel).stem}", OPENCV_DOC_ROOT / rel, "opencv-doc", _OPENCV_LICENCE)
        for rel in _OPENCV_PHOTOS
        if (OPENCV_DOC_ROOT / rel).is_file()
    ]


def _opencv_availability() -> Availability:
    if not OPENCV_DOC_ROOT.is_dir():
        return Availability(False, f"{OPENCV_DOC_ROOT} is missing (Debian: apt-get install opencv-doc)")
    if not _opencv_find():
        return Availability(False, f"none of the listed photos exist under {OPENCV_DOC_ROOT}")
    return Availability(True)


COLLECTIONS.register(
    PhotoCollection(
        "opencv-doc", "Debian opencv-doc sample photos (32 colour photos)", _opencv_find, _opencv_availability
    )
)


def _matplotlib_find() -> list[SourcePhoto]:
    try:
        import matplotlib
    except ImportError:
        return []
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        return []
    return [SourcePhoto("matplotlib/grace_hopper", path, "matplotlib", "public domain (US Navy photo)")]


def _matplotlib_availability() -> Availability:
    if not _matplotlib_find():
        return Availability(False, "matplotlib (with its sample data) is not installed")
    return Availability(True)


COLLECTIONS.register(
    PhotoCollection("matplotlib", "matplotlib sample photo (1)", _matplotlib_find, _matplotlib_availability)
)

_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def directory_photos(folder: str | os.PathLike[str]) -> list[SourcePhoto]:
    """Every image file directly in ``folder`` (sorted); ids are ``dir:<folder name>/<stem>``."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"source folder {root} does not exist")
    photos = [
        SourcePhoto(f"dir:{root.name}/{path.stem}", path, f"dir:{root}", "user-supplied")
        for path in sorted(root.iterdir())
        if path.suffix.lower() in _PHOTO_SUFFIXES and path.is_file()
    ]
    if not photos:
        raise InputError(f"source folder {root} holds no image files ({', '.join(sorted(_PHOTO_SUFFIXES))})")
    return photos


def gather_sources(collections: Sequence[str], source_dirs: Sequence[str] = ()) -> list[SourcePhoto]:
    """All photos of the named collections (unavailable ones are skipped) and folders, by id.

    Raises :class:`InputError` when nothing at all is found.
    """
    photos: list[SourcePhoto] = []
    for name in collections:
        collection = COLLECTIONS.get(name)
        if collection.availability().available:
            photos.extend(collection.find())
    for folder in source_dirs:
        photos.extend(directory_photos(folder))
    seen: dict[str, SourcePhoto] = {}
    for photo in photos:
        seen.setdefault(photo.source_id, photo)
    if not seen:
        reasons = "; ".join(f"{n}: {COLLECTIONS.get(n).availability().reason}" for n in collections)
        raise InputError(f"no source photos found ({reasons or 'no collection named'})")
    return [seen[key] for key in sorted(seen)]


# --- crops ---------------------------------------------------------------------


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
) -> list[CropSpec]:
    """Deterministic crop plan: ``crops_per_source`` crops of each photo.

    Crop *i* of a photo uses scale ``crop_scales[i % len]`` and size
    ``crop_sizes[(i // len(scales)) % len]``, so scales and sizes are spread
    evenly; the position is drawn from a generator seeded by (``seed``, photo
    id, i), so adding or removing a photo never moves another photo's crops.
    A size that does not fit the scaled photo is shrunk to fit (never below
    16 px); a photo too small for any crop is skipped.
    """
    crops: list[CropSpec] = []
    for photo in photos:
        src_h, src_w = _image_size(photo.path)
        for i in range(crops_per_source):
            scale = crop_scales[i % len(crop_scales)]
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
