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
Debian wallpaper packages (one collection per package, named after it)
    ``plasma-workspace-wallpapers``, ``mate-backgrounds``, ``ukui-wallpapers``,
    ``gnome-backgrounds``, ``lxqt-themes``: photographs and digital artwork.
    Each photo records its package, file and licence, read from
    ``/usr/share/doc/PKG/copyright`` (see :data:`DEBIAN_WALLPAPERS`). Variants
    of one picture (resolutions, light/dark, colourways) count as one source,
    so no picture leaks between splits; near-blank ones (flat colour, logos
    on a plain field) are left out. Install them with ``apt-get install`` of
    the package names; none is needed by the tests. The ``lomiri-wallpapers*``
    packages are kept out on purpose: they are reserved for outside checks.
``dir:PATH``
    any folder of photos a user points a recipe at (``Recipe.source_dirs``).

This module is mostly declarative tables (collections, files, licences); the
crops are planned and rendered in :mod:`training.datasets.crops` (re-exported
here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sursmr_core.errors import InputError
from sursmr_core.levels import Availability
from sursmr_core.registry import Registry
from training.datasets.crops import CropSpec, plan_crops, render_crop, slug, stable_seed


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


# greyscale photographs (used as grey RGB): a collection of their own, so "skimage" keeps the v1 set
_SKIMAGE_GREY_PHOTOS = {
    "brick.png": "CC0 (CC0Textures Bricks25)",
    "camera.png": "CC0 (Lav Varshney)",
    "coins.png": "no known copyright restrictions (Brooklyn Museum)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures Gravel04)",
    "text.png": "public domain",
}


def _skimage_find(files: dict[str, str] = _SKIMAGE_PHOTOS) -> list[SourcePhoto]:
    root = _skimage_dir()
    if root is None:
        return []
    return [
        SourcePhoto(f"skimage/{Path(name).stem}", root / name, "skimage", licence)
        for name, licence in sorted(files.items())
        if (root / name).is_file()
    ]


def _skimage_availability(files: dict[str, str] = _SKIMAGE_PHOTOS) -> Availability:
    root = _skimage_dir()
    if root is None:
        return Availability(False, "scikit-image is not installed (pip install 'sursmr[train]')")
    if not _skimage_find(files):
        return Availability(False, f"no sample photos under {root}")
    return Availability(True)


COLLECTIONS.register(
    PhotoCollection("skimage", "scikit-image sample colour photos (7)", _skimage_find, _skimage_availability)
)
COLLECTIONS.register(
    PhotoCollection(
        "skimage-grey",
        "scikit-image sample greyscale photos (6)",
        lambda: _skimage_find(_SKIMAGE_GREY_PHOTOS),
        lambda: _skimage_availability(_SKIMAGE_GREY_PHOTOS),
    )
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
# more photographs of the same package (two greyscale), added for recipe v2 as their own collection
_OPENCV_MORE_PHOTOS = (
    "data/basketball1.png",
    "data/box_in_scene.png",
    "hfs/data/000.jpg",
)


def _opencv_find(files: tuple[str, ...] = _OPENCV_PHOTOS) -> list[SourcePhoto]:
    return [
        SourcePhoto(f"opencv-doc/{_opencv_stem(rel)}", OPENCV_DOC_ROOT / rel, "opencv-doc", _OPENCV_LICENCE)
        for rel in files
        if (OPENCV_DOC_ROOT / rel).is_file()
    ]


def _opencv_stem(rel: str) -> str:
    stem = Path(rel).stem
    return f"hfs-{stem}" if rel.startswith("hfs/") else stem


def _opencv_availability(files: tuple[str, ...] = _OPENCV_PHOTOS) -> Availability:
    if not OPENCV_DOC_ROOT.is_dir():
        return Availability(False, f"{OPENCV_DOC_ROOT} is missing (Debian: apt-get install opencv-doc)")
    if not _opencv_find(files):
        return Availability(False, f"none of the listed photos exist under {OPENCV_DOC_ROOT}")
    return Availability(True)


COLLECTIONS.register(
    PhotoCollection(
        "opencv-doc", "Debian opencv-doc sample photos (32 colour photos)", _opencv_find, _opencv_availability
    )
)
COLLECTIONS.register(
    PhotoCollection(
        "opencv-doc-more",
        "more Debian opencv-doc sample photos (3)",
        lambda: _opencv_find(_OPENCV_MORE_PHOTOS),
        lambda: _opencv_availability(_OPENCV_MORE_PHOTOS),
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

# --- Debian wallpaper packages ------------------------------------------------------


@dataclass(frozen=True)
class DebianWallpapers:
    """The pictures of one Debian package: file (relative to ``root``) -> licence from its ``copyright``.

    A value of ``files`` may name a folder holding several renderings of one
    picture (``contents/images/WxH.ext``, KDE style): the largest is used.
    """

    package: str
    root: Path
    files: tuple[tuple[str, str], ...]

    def find(self) -> list[SourcePhoto]:
        photos = []
        for rel, licence in self.files:
            path = self.root / rel
            if path.is_dir():
                path_or_none = _largest_rendering(path)
                if path_or_none is None:
                    continue
                path = path_or_none
            elif not path.is_file():
                continue
            stem = Path(rel).parts[0] if "/" in rel and (self.root / rel).is_dir() else Path(rel).stem
            photos.append(SourcePhoto(f"{self.package}/{slug(stem)}", path, self.package, f"{licence} [{rel}]"))
        return photos

    def availability(self) -> Availability:
        if not self.root.is_dir() or not self.find():
            return Availability(
                False, f"Debian package {self.package} is not installed (apt-get install {self.package})"
            )
        return Availability(True)


def _largest_rendering(folder: Path) -> Path | None:
    """The file of ``folder`` named ``WxH.ext`` with the most pixels (KDE wallpaper layout)."""
    best: tuple[int, Path] | None = None
    for path in folder.iterdir():
        match = re.fullmatch(r"(\d+)x(\d+)", path.stem)
        if match and path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
            pixels = int(match.group(1)) * int(match.group(2))
            if best is None or pixels > best[0]:
                best = (pixels, path)
    return None if best is None else best[1]


_PLASMA = "GPL-2+ (debian/copyright Files: *, 2014 KDE Visual Design Group)"
_MATE_GPL = "GPL-2+ (debian/copyright, holders in AUTHORS)"
_UKUI = "CC-BY-SA-3.0 (debian/copyright Files: *, Ubuntu Kylin community contributors)"
_GNOME = "GPL-2+ (debian/copyright; adwaita*: CC-BY-SA-3.0 Jakub Steiner)"
_LXQT = "LGPL-2.1+ (debian/copyright Files: *); upstream wallpapers/License: CC-BY-SA-3.0"

# Checked by eye and against /usr/share/doc/PKG/copyright (Debian 12). One entry per picture.
DEBIAN_WALLPAPERS: tuple[DebianWallpapers, ...] = (
    DebianWallpapers(
        "plasma-workspace-wallpapers",
        Path("/usr/share/wallpapers"),
        tuple(
            (f"{name}/contents/images", _PLASMA)
            for name in (
                "Altai", "Autumn", "BytheWater", "Canopee", "Cascade", "Cluster", "ColdRipple", "ColorfulCups",
                "DarkestHour", "Elarun", "EveningGlow", "FallenLeaf", "Flow", "FlyingKonqui", "Grey", "Honeywave",
                "IceCold", "Kay", "Kite", "Kokkini", "MilkyWay", "OneStandsOut", "Opal", "PastelHills", "Patak",
                "Path", "SafeLanding", "Shell", "Volna", "summer_1am",
            )
        ),
    ),
    DebianWallpapers(
        "mate-backgrounds",
        Path("/usr/share/backgrounds/mate"),
        (
            *(
                (f"nature/{name}.jpg", _MATE_GPL)
                for name in (
                    "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
                    "Storm", "TwoWings", "Wood", "YellowFlower",
                )
            ),
            ("abstract/Elephants_5640x3172.jpg", _MATE_GPL),  # Elephants*.jpg: one picture, three sizes
            ("abstract/Flow.png", _MATE_GPL),
            ("abstract/Gulp.png", _MATE_GPL),
            ("desktop/Float-into-MATE.png", _MATE_GPL),
            # Ubuntu-Mate-{Cold,Dark,Radioactive,Warm}: one picture in four colourways
            ("desktop/Ubuntu-Mate-Warm-no-logo.png", "CC-BY-SA-4.0 (debian/copyright, 2014 Goce Mitevski)"),
        ),
    ),
    DebianWallpapers(
        "ukui-wallpapers",
        Path("/usr/share/backgrounds"),
        tuple(
            (name, _UKUI)
            for name in (
                "2004default.jpg", "calla.png", "city.png", "desert.png", "firstgeneration.jpg", "fluent-color.png",
                "focal-ubuntukylin.png", "goldfish.png", "rhythm.jpg", "rollpaper.png", "string.jpg", "the-mouse.jpg",
            )
        ),
    ),
    DebianWallpapers(
        "gnome-backgrounds",
        Path("/usr/share/backgrounds/gnome"),
        # *-l / *-d are light and dark versions of one picture; symbolic and vnc are near-flat
        tuple((f"{name}-l.webp", _GNOME) for name in ("adwaita", "grid", "licorice", "pixels", "truchet", "wood")),
    ),
    DebianWallpapers(
        "lxqt-themes",
        Path("/usr/share/lxqt/wallpapers"),
        tuple(
            (name, _LXQT)
            for name in (
                "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
                "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg",
            )
        ),
    ),
)  # fmt: skip

for _package in DEBIAN_WALLPAPERS:
    COLLECTIONS.register(
        PhotoCollection(
            _package.package,
            f"Debian package {_package.package} ({len(_package.files)} pictures)",
            _package.find,
            _package.availability,
        )
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


__all__ = [
    "COLLECTIONS",
    "DEBIAN_WALLPAPERS",
    "OPENCV_DOC_ROOT",
    "CropSpec",
    "DebianWallpapers",
    "PhotoCollection",
    "SourcePhoto",
    "directory_photos",
    "gather_sources",
    "plan_crops",
    "render_crop",
    "slug",
    "stable_seed",
]
