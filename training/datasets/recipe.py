"""Dataset recipes: everything that decides what a built dataset contains.

A :class:`Recipe` names the photo collections, how they are cropped, which
codecs and which levels of each are swept, how source photos are split into
train/val/test, the random seed, and which labellers (IQA metrics for the
pseudo-SUR proxy, machines for the SMR proxy) make the labels. Recipes are
plain JSON (``Recipe.to_json`` / ``Recipe.from_json``) and the one used is
written into every built dataset, so a dataset can always be rebuilt.

Named recipes (:data:`RECIPES`, :func:`load_recipe`):

``default`` (= ``v2``)
    dense level grids (JPEG 20–100, BPG 0–46, VVC 0–50) over every offline
    photo collection; validation and test crops carry every level of the
    grid, training crops a seeded per-crop subset (``CodecPlan.train_levels``).
``quick``
    the same grids and labellers over a seeded handful of photos: a
    ≤ 30-minute trial of the whole pipeline on 2 cores.
``v1``
    the recipe of the first shipped model (40 photos, 7–8 levels per codec).

How build time is estimated is in :func:`estimate_cost` (constants measured
by ``benchmarks/labeller_cost.py``; in :mod:`training.datasets.cost`,
re-exported here).

Format history: 1 = first recipes; 2 adds ``CodecPlan.train_levels``,
``Recipe.max_sources`` and ``Recipe.scale_reference``. Format-1 files still load (no subsets, every photo).
A reader that only knows format 1 refuses format 2 with a message naming the
format, so an old sursmr never silently builds a different dataset.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sursmr_core.errors import InputError
from training.datasets.cost import CostModel as CostModel
from training.datasets.cost import estimate_cost as estimate_cost
from training.datasets.sources import stable_seed

RECIPE_FORMAT = 2
READABLE_FORMATS = (1, 2)


@dataclass(frozen=True)
class CodecPlan:
    """One codec of a recipe: its registry name, the levels swept and encoder options.

    ``levels`` are integers on the codec's own axis (JPEG quality 1..100,
    BPG ``-q`` 0..51, VVC QP 0..63): the *grid*. Eq. 3 normalises each
    metric over one crop's own level set, so the grid should span
    near-transparent to clearly damaged quality.

    ``train_levels``: when set, each *training* crop is encoded at only this
    many levels of the grid, drawn per crop from a generator seeded by
    (recipe seed, crop id, codec) (:meth:`levels_for`); validation and test
    crops always get the whole grid, so oracle, fixed-level and hit-rate
    truths are exact. The subset always holds both ends of the grid, so the
    Eq. 3 min/max of a training crop come from the same two levels as for an
    evaluation crop; the normalisation is still over the crop's own set.
    """

    codec: str
    levels: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    train_levels: int | None = None

    def __post_init__(self) -> None:
        if not self.codec:
            raise InputError("a codec plan needs a codec name")
        if len(self.levels) < 2:
            raise InputError(f"codec {self.codec!r}: Eq. 3 needs at least 2 levels, got {list(self.levels)}")
        if len(set(self.levels)) != len(self.levels):
            raise InputError(f"codec {self.codec!r}: levels repeat: {list(self.levels)}")
        if any(isinstance(level, bool) or not isinstance(level, int) for level in self.levels):
            raise InputError(f"codec {self.codec!r}: levels must be integers, got {list(self.levels)}")
        if self.train_levels is not None and not 2 <= self.train_levels <= len(self.levels):
            raise InputError(
                f"codec {self.codec!r}: train_levels must lie in 2..{len(self.levels)} (the grid size), "
                f"got {self.train_levels}"
            )

    def levels_for(self, split: str, crop_id: str, seed: int) -> tuple[int, ...]:
        """The levels one crop is encoded at: the whole grid, or (training crops) a seeded subset in grid order."""
        if split != "train" or self.train_levels is None or self.train_levels >= len(self.levels):
            return self.levels
        ends = {0, len(self.levels) - 1}
        inner = [i for i in range(len(self.levels)) if i not in ends]
        rng = np.random.default_rng(stable_seed(seed, "levels", crop_id, self.codec))
        chosen = ends | {int(i) for i in rng.choice(inner, size=self.train_levels - len(ends), replace=False)}
        return tuple(self.levels[i] for i in sorted(chosen))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"codec": self.codec, "levels": list(self.levels), "options": dict(self.options)}
        if self.train_levels is not None:
            data["train_levels"] = self.train_levels
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodecPlan:
        train = data.get("train_levels")
        return cls(
            str(data["codec"]),
            tuple(int(v) for v in data["levels"]),
            dict(data.get("options") or {}),
            None if train is None else int(train),
        )


@dataclass(frozen=True)
class Recipe:
    """What to build. Sizes are (height, width) in pixels; ``crop_scales`` are resize factors ≤ 1.

    ``metrics`` / ``machines``: registry names, or ``None`` for every one that
    is available here (the ones skipped, and why, go into the manifest).
    ``jnd_proxy``: also compute the absolute JND-calibrated SUR proxy, with the
    calibration registered as ``jnd_proxy_name`` (``training.labels.jnd_proxy.JND_PROXIES``).
    ``split``: train/val/test shares of *source photos* (crops follow their source).
    ``min_applicable_machines``: K, crops with fewer applicable machines get no SMR label.
    ``max_sources``: use only this many photos, drawn by the seed (``None``: every one found).
    ``scale_reference``: crop scales are relative to the photo brought to this shorter side in pixels
    (never enlarged; ``None``: relative to the photo's own size), see :func:`~training.datasets.sources.plan_crops`.
    """

    name: str = "custom"
    collections: tuple[str, ...] = ("skimage", "opencv-doc", "matplotlib")
    source_dirs: tuple[str, ...] = ()
    crop_sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    crop_scales: tuple[float, ...] = (1.0,)
    crops_per_source: int = 1
    codecs: tuple[CodecPlan, ...] = ()
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0
    metrics: tuple[str, ...] | None = None
    machines: tuple[str, ...] | None = None
    min_applicable_machines: int = 4  # training.labels.smr.DEFAULT_MIN_APPLICABLE
    jnd_proxy: bool = True
    jnd_proxy_name: str = "konjnd"
    description: str = ""
    max_sources: int | None = None
    scale_reference: int | None = None

    def __post_init__(self) -> None:
        if not self.codecs:
            raise InputError(f"recipe {self.name!r} lists no codecs")
        names = [plan.codec for plan in self.codecs]
        if len(set(names)) != len(names):
            raise InputError(f"recipe {self.name!r}: a codec is listed twice: {names}")
        if not self.collections and not self.source_dirs:
            raise InputError(f"recipe {self.name!r} names no photo collection and no source folder")
        if not self.crop_sizes:
            raise InputError(f"recipe {self.name!r} lists no crop size")
        for height, width in self.crop_sizes:
            if height < 16 or width < 16:
                raise InputError(f"recipe {self.name!r}: crop size {height}x{width} is under 16 px")
        if not self.crop_scales or any(not 0 < s <= 1 for s in self.crop_scales):
            raise InputError(f"recipe {self.name!r}: crop scales must lie in (0, 1], got {list(self.crop_scales)}")
        if self.min_applicable_machines < 1:
            raise InputError(f"recipe {self.name!r}: min_applicable_machines must be ≥ 1")
        if self.crops_per_source < 1:
            raise InputError(f"recipe {self.name!r}: crops_per_source must be ≥ 1")
        if self.max_sources is not None and self.max_sources < 1:
            raise InputError(f"recipe {self.name!r}: max_sources must be ≥ 1 or null")
        if self.scale_reference is not None and self.scale_reference < 16:
            raise InputError(f"recipe {self.name!r}: scale_reference must be ≥ 16 pixels or null")
        if len(self.split) != 3 or any(s < 0 for s in self.split) or not math.isclose(sum(self.split), 1.0):
            raise InputError(
                f"recipe {self.name!r}: split must be 3 non-negative shares summing to 1, got {self.split}"
            )

    # --- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = RECIPE_FORMAT
        data["codecs"] = [p.to_dict() for p in self.codecs]
        data["crop_sizes"] = [list(size) for size in self.crop_sizes]
        for key in ("collections", "source_dirs", "crop_scales", "split"):
            data[key] = list(data[key])
        for key in ("metrics", "machines"):
            data[key] = None if data[key] is None else list(data[key])
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        if not isinstance(data, Mapping):
            raise InputError("a recipe must be a JSON object")
        fmt = data.get("format", 1)
        if fmt not in READABLE_FORMATS:
            raise InputError(
                f"recipe format {fmt!r} is not supported (this sursmr reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))}); upgrade sursmr to build this recipe"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise InputError(f"unknown recipe field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            kwargs: dict[str, Any] = dict(data)
            kwargs.pop("format", None)
            # recipes written before calibrations had names were labelled with today's "strict" constants
            kwargs.setdefault("jnd_proxy_name", "strict")
            if "codecs" in kwargs:
                kwargs["codecs"] = tuple(CodecPlan.from_dict(c) for c in kwargs["codecs"])
            if "crop_sizes" in kwargs:
                kwargs["crop_sizes"] = tuple((int(h), int(w)) for h, w in kwargs["crop_sizes"])
            for key in ("collections", "source_dirs"):
                if key in kwargs:
                    kwargs[key] = tuple(str(v) for v in kwargs[key])
            if "crop_scales" in kwargs:
                kwargs["crop_scales"] = tuple(float(v) for v in kwargs["crop_scales"])
            if "split" in kwargs:
                kwargs["split"] = tuple(float(v) for v in kwargs["split"])
            for key in ("metrics", "machines"):
                if kwargs.get(key) is not None:
                    kwargs[key] = tuple(str(v) for v in kwargs[key])
            for key in ("max_sources", "scale_reference"):
                if kwargs.get(key) is not None:
                    kwargs[key] = int(kwargs[key])
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed recipe: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"recipe is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def with_changes(self, **changes: Any) -> Recipe:
        return replace(self, **changes)

    def plan(self, codec: str) -> CodecPlan:
        for plan in self.codecs:
            if plan.codec == codec:
                return plan
        raise InputError(f"recipe {self.name!r} has no codec {codec!r}")


# --- recipe v1 (the first shipped model) -------------------------------------------
# Level subsets. Each spans from about transparent (JND SUR proxy ≥ 0.8 on
# photo crops) to clearly damaged, so the per-image min/max of Eq. 3 is
# meaningful. The counts are what a two-hour budget allowed then.
V1_JPEG_LEVELS = (20, 35, 50, 65, 75, 85, 92, 97)
V1_BPG_LEVELS = (18, 22, 26, 30, 34, 38, 42)
V1_VVC_LEVELS = (20, 24, 28, 32, 36, 40, 44)

# The IQA ensemble: every offline metric but the three slowest (fsim, iw_ssim,
# vsi; see benchmarks/results/labeller_cost.json), which add cost and no new
# kind of signal to the 15 kept.
DEFAULT_METRICS = (
    "psnr", "ssim", "ms_ssim", "vif_p", "gmsd", "ms_gmsd", "haarpsi", "mdsi", "srsim", "dss",
    "ssimulacra2", "vmaf", "vmaf_neg", "butteraugli_max", "butteraugli_3norm",
)  # fmt: skip

# The SMR jury of the v1 recipe (data/default was built with it): every machine
# registered then but three whose verdicts did not follow the compression level.
# Measured on that build (jpeg + vvc, 320 items; share satisfied at JPEG q20 / q97):
# haar_eyes 0.29 / 0.38, tesseract 0.12 / 0.12, dlib_landmarks68 0.62 / 0.62 —
# against efficientnet_lite0 0.35 / 0.84 and open_nsfw 0.47 / 1.00.
V1_MACHINES = (
    "dlib_face_embedding", "dlib_hog_face", "efficientnet_lite0", "haar_frontal_face",
    "hog_people", "nudenet", "open_nsfw", "rapidocr",
)  # fmt: skip

# The SMR jury of the default recipe: 15 of the 26 registered machines. A
# machine is left out when, on 20 photo crops (benchmarks/machine_zoo.py,
# benchmarks/results/machine_zoo.json; JPEG q100 / q95 / q30, votes only where
# its task applies to the original), it called more than 5 % of its applicable
# crops "not satisfied" at q100 (noise floor), or it applied to none:
#   noise: dlib_landmarks68 1/2 crops, haar_upper_body 1/1, mediapipe_hands 1/2,
#          rapidocr_text_boxes 1/8 (2/8 at q95), haar_eyes 0/1 at q100 but 1/1 at q95;
#   never applicable (0/20): haar_cat_face, haar_full_body, haar_plate,
#          haar_profile_face, hog_people, tesseract.
# The 15 kept: noise floor 0 % at q100 (rapidocr 1/2 at q95), applicable to
# 2–20 of 20 crops; open_nsfw votes on every crop, the ImageNet classifiers on
# 2–5, the face machines on the 2 crops with a face (mediapipe_face also on 3
# person-free crops, where it stays satisfied). Their CPU cost is 1.16 s per
# 256×256 image in all (rapidocr 0.45 s), run on the compressed levels only
# where they apply. With K = 4, 15 of those 20 crops get no SMR label (median
# 1.5 applicable machines per crop); on 60 crops spread over this recipe's own
# 375 (benchmarks/results/machine_zoo_coverage.json) only 1 reaches K = 4, 10
# reach K = 3 and 28 K = 2: open_nsfw votes on all 60, every other machine on
# at most 8, since most crops hold no face, person or text and the ImageNet
# classifiers reach top-1 p ≥ 0.5 on 2–8. All stay registered; a recipe can name any.
DEFAULT_MACHINES = (
    "dlib_face_embedding", "dlib_hog_face", "efficientnet_lite0", "efficientnet_lite1",
    "efficientnet_lite2", "haar_frontal_face", "mediapipe_face", "mediapipe_face_mesh",
    "mediapipe_pose", "mediapipe_selfie", "mtcnn_face", "mtcnn_landmarks5", "nudenet",
    "open_nsfw", "rapidocr",
)  # fmt: skip

V1_RECIPE = Recipe(
    name="v1",  # built as "default" (data/default); names are cosmetic, so that build still resumes
    collections=("skimage", "opencv-doc", "matplotlib"),
    crop_sizes=((256, 256), (256, 384)),
    crop_scales=(1.0, 0.75, 0.5),
    crops_per_source=4,
    codecs=(
        CodecPlan("jpeg", V1_JPEG_LEVELS),
        CodecPlan("bpg", V1_BPG_LEVELS),
        CodecPlan("vvc", V1_VVC_LEVELS),
    ),
    split=(0.7, 0.1, 0.2),
    seed=20240601,
    metrics=DEFAULT_METRICS,
    machines=V1_MACHINES,
    description=(
        "40 offline colour photos x 4 crops (256x256 / 256x384 at scales 1, 0.75, 0.5) x "
        "jpeg(8 levels) + bpg(7) + vvc(7); labels are proxies: Eq. 3 pseudo-SUR from the IQA "
        "ensemble, a JND-calibrated SUR proxy and SMR from the machine zoo"
    ),
)

# --- recipe v2 (dense grids, more photos) -----------------------------------------
# Grids span "almost everyone notices" to "nobody notices" on every crop
# (issue 11): JPEG 20..83 in steps of 3, then every quality 85..100; BPG and
# VVC every second level from lossless-like to heavily damaged.
V2_JPEG_LEVELS = tuple(range(20, 85, 3)) + tuple(range(85, 101))
V2_BPG_LEVELS = tuple(range(0, 47, 2))
V2_VVC_LEVELS = tuple(range(0, 51, 2))
# levels per codec of one training crop (a seeded subset of the grid, both ends included)
V2_TRAIN_LEVELS = 10

V2_COLLECTIONS = (
    "skimage", "skimage-grey", "opencv-doc", "opencv-doc-more", "matplotlib",
    "plasma-workspace-wallpapers", "mate-backgrounds", "ukui-wallpapers", "gnome-backgrounds", "lxqt-themes",
)  # fmt: skip

V2_CODECS = (
    CodecPlan("jpeg", V2_JPEG_LEVELS, train_levels=V2_TRAIN_LEVELS),
    CodecPlan("bpg", V2_BPG_LEVELS, train_levels=V2_TRAIN_LEVELS),
    CodecPlan("vvc", V2_VVC_LEVELS, train_levels=V2_TRAIN_LEVELS),
)

DEFAULT_RECIPE = Recipe(
    name="v2",
    collections=V2_COLLECTIONS,
    crop_sizes=((256, 256),),
    crop_scales=(1.0, 0.75, 0.55),
    scale_reference=640,
    crops_per_source=3,
    codecs=V2_CODECS,
    split=(0.7, 0.1, 0.2),
    seed=20261201,
    metrics=DEFAULT_METRICS,
    machines=DEFAULT_MACHINES,
    description=(
        "every offline photo collection (scikit-image, opencv-doc, matplotlib, Debian wallpaper packages) x "
        "3 crops (256x256 at scales 1, 0.75, 0.55 of the photo brought to a 640-px shorter side) x "
        "jpeg(38-level grid) + bpg(24) + vvc(26); "
        "val/test crops carry the whole grid, training crops 10 seeded levels per codec; labels are proxies: "
        "Eq. 3 pseudo-SUR from the IQA ensemble, a JND-calibrated SUR proxy and SMR from the 15-machine default jury"
    ),
)

QUICK_RECIPE = DEFAULT_RECIPE.with_changes(
    name="quick",
    crops_per_source=1,
    max_sources=10,
    description=(
        "a 30-minute trial of the v2 recipe: 10 seeded photos x 1 crop, the same grids, labellers and "
        "split rule; labels are proxies"
    ),
)

RECIPES: dict[str, Recipe] = {"default": DEFAULT_RECIPE, "v2": DEFAULT_RECIPE, "quick": QUICK_RECIPE, "v1": V1_RECIPE}


def load_recipe(spec: str | os.PathLike[str] | None) -> Recipe:
    """``None``: :data:`DEFAULT_RECIPE`; a name in :data:`RECIPES` (default, v2, quick, v1); else a JSON file."""
    if spec is None:
        return DEFAULT_RECIPE
    if str(spec) in RECIPES:
        return RECIPES[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise InputError(
            f"recipe file {path} does not exist (use a named recipe: {', '.join(RECIPES)}; or a JSON file)"
        )
    return Recipe.from_json(path.read_text(encoding="utf-8"))


def save_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    from sursmr_core.outputs import atomic_write_bytes

    return atomic_write_bytes(path, (recipe.to_json() + "\n").encode("utf-8"))
