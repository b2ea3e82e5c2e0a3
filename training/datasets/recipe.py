"""Dataset recipes: everything that decides what a built dataset contains.

A :class:`Recipe` names the photo collections, how they are cropped, which
codecs and which levels of each are swept, how source photos are split into
train/val/test, the random seed, and which labellers (IQA metrics for the
pseudo-SUR proxy, machines for the SMR proxy) make the labels. Recipes are
plain JSON (``Recipe.to_json`` / ``Recipe.from_json``) and the one used is
written into every built dataset, so a dataset can always be rebuilt.

The :data:`DEFAULT_RECIPE` aims at ≥150 source crops × 3 codecs (jpeg, bpg,
vvc) built on 2 CPU cores in about two hours. How that budget was estimated
is in :func:`estimate_cost` and the module README of ``training/datasets``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sursmr_core.errors import InputError

RECIPE_FORMAT = 1


@dataclass(frozen=True)
class CodecPlan:
    """One codec of a recipe: its registry name, the levels swept and encoder options.

    ``levels`` are integers on the codec's own axis (JPEG quality 1..100,
    BPG ``-q`` 0..51, VVC QP 0..63). Eq. 3 normalises each metric over this
    set, so it should span near-transparent to clearly damaged quality.
    """

    codec: str
    levels: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.codec:
            raise InputError("a codec plan needs a codec name")
        if len(self.levels) < 2:
            raise InputError(f"codec {self.codec!r}: Eq. 3 needs at least 2 levels, got {list(self.levels)}")
        if len(set(self.levels)) != len(self.levels):
            raise InputError(f"codec {self.codec!r}: levels repeat: {list(self.levels)}")
        if any(isinstance(level, bool) or not isinstance(level, int) for level in self.levels):
            raise InputError(f"codec {self.codec!r}: levels must be integers, got {list(self.levels)}")


@dataclass(frozen=True)
class Recipe:
    """What to build. Sizes are (height, width) in pixels; ``crop_scales`` are resize factors ≤ 1.

    ``metrics`` / ``machines``: registry names, or ``None`` for every one that
    is available here (the ones skipped, and why, go into the manifest).
    ``jnd_proxy``: also compute the absolute JND-calibrated SUR proxy.
    ``split``: train/val/test shares of *source photos* (crops follow their source).
    ``min_applicable_machines``: K, crops with fewer applicable machines get no SMR label.
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
    description: str = ""

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
        if len(self.split) != 3 or any(s < 0 for s in self.split) or not math.isclose(sum(self.split), 1.0):
            raise InputError(
                f"recipe {self.name!r}: split must be 3 non-negative shares summing to 1, got {self.split}"
            )

    # --- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = RECIPE_FORMAT
        data["codecs"] = [{"codec": p.codec, "levels": list(p.levels), "options": dict(p.options)} for p in self.codecs]
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
        fmt = data.get("format", RECIPE_FORMAT)
        if fmt != RECIPE_FORMAT:
            raise InputError(f"recipe format {fmt!r} is not supported (this sursmr reads format {RECIPE_FORMAT})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise InputError(f"unknown recipe field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            kwargs: dict[str, Any] = dict(data)
            kwargs.pop("format", None)
            if "codecs" in kwargs:
                kwargs["codecs"] = tuple(
                    CodecPlan(str(c["codec"]), tuple(int(v) for v in c["levels"]), dict(c.get("options") or {}))
                    for c in kwargs["codecs"]
                )
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


# Level subsets. Each spans from about transparent (JND SUR proxy ≥ 0.8 on
# photo crops) to clearly damaged, so the per-image min/max of Eq. 3 is
# meaningful. The counts are what the two-hour budget allows: labelling
# (19 IQA metrics + 11 machines) measured ~3.9 core-s per decoded 256x256
# image here, so ~3,500 labelled images fit in 2 h on 2 cores (see estimate_cost).
DEFAULT_JPEG_LEVELS = (20, 35, 50, 65, 75, 85, 92, 97)
DEFAULT_BPG_LEVELS = (18, 22, 26, 30, 34, 38, 42)
DEFAULT_VVC_LEVELS = (20, 24, 28, 32, 36, 40, 44)

# The IQA ensemble of the default recipe: every offline metric but the three
# slowest (fsim ~1.0, iw_ssim ~0.7, vsi ~0.5 s per 256x256 pair, measured
# under load), which would push the build past two hours on 2 cores.
DEFAULT_METRICS = (
    "psnr", "ssim", "ms_ssim", "vif_p", "gmsd", "ms_gmsd", "haarpsi", "mdsi", "srsim", "dss",
    "ssimulacra2", "vmaf", "vmaf_neg", "butteraugli_max", "butteraugli_3norm",
)  # fmt: skip

# The SMR jury of the default recipe: every registered machine but three whose
# verdicts do not follow the compression level, so they add label noise and
# no signal. Measured on the first default build (jpeg + vvc, 320 items;
# share satisfied at JPEG q20 / q97): haar_eyes 0.29 / 0.38, tesseract
# 0.12 / 0.12, dlib_landmarks68 0.62 / 0.62 — against efficientnet_lite0
# 0.35 / 0.84 and open_nsfw 0.47 / 1.00. They stay registered (and can be
# named in a recipe); `sursmr-train relabel` narrows an existing build.
DEFAULT_MACHINES = (
    "dlib_face_embedding", "dlib_hog_face", "efficientnet_lite0", "haar_frontal_face",
    "hog_people", "nudenet", "open_nsfw", "rapidocr",
)  # fmt: skip

DEFAULT_RECIPE = Recipe(
    name="default",
    collections=("skimage", "opencv-doc", "matplotlib"),
    crop_sizes=((256, 256), (256, 384)),
    crop_scales=(1.0, 0.75, 0.5),
    crops_per_source=4,
    codecs=(
        CodecPlan("jpeg", DEFAULT_JPEG_LEVELS),
        CodecPlan("bpg", DEFAULT_BPG_LEVELS),
        CodecPlan("vvc", DEFAULT_VVC_LEVELS),
    ),
    split=(0.7, 0.1, 0.2),
    seed=20240601,
    metrics=DEFAULT_METRICS,
    machines=DEFAULT_MACHINES,
    description=(
        "40 offline colour photos x 4 crops (256x256 / 256x384 at scales 1, 0.75, 0.5) x "
        "jpeg(8 levels) + bpg(7) + vvc(7); labels are proxies: Eq. 3 pseudo-SUR from the IQA "
        "ensemble, a JND-calibrated SUR proxy and SMR from the machine zoo"
    ),
)


def load_recipe(spec: str | os.PathLike[str] | None) -> Recipe:
    """``None`` or ``"default"``: :data:`DEFAULT_RECIPE`; otherwise a JSON file path."""
    if spec is None or str(spec) == "default":
        return DEFAULT_RECIPE
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"recipe file {path} does not exist (use 'default' or a JSON file)")
    return Recipe.from_json(path.read_text(encoding="utf-8"))


def save_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    from sursmr_core.outputs import atomic_write_bytes

    return atomic_write_bytes(path, (recipe.to_json() + "\n").encode("utf-8"))


@dataclass(frozen=True)
class CostModel:
    """Per-operation costs (core-seconds) for :func:`estimate_cost`.

    Encode costs scale with pixel count from a 768×512 reference measurement
    (``/work/shared/notes/codecs.md``: BPG veryslow ~0.7 s, VVC faster
    ~0.5 s, JPEG ~3 ms) plus a fixed per-call overhead (process start, muxing).
    ``label_s_per_image`` covers every metric and machine on one decoded image.
    """

    encode_s_768x512: Mapping[str, float] = field(default_factory=lambda: {"jpeg": 0.003, "bpg": 0.7, "vvc": 0.5})
    encode_overhead_s: Mapping[str, float] = field(default_factory=lambda: {"jpeg": 0.001, "bpg": 0.05, "vvc": 0.1})
    # measured: `sursmr-train build --limit 3` (jpeg+vvc, 66 decoded 256x256 images, all 19 available
    # metrics + 11 machines) used 320 core-s, i.e. ~4.8 core-s per image including model loading
    # (~60 s once per worker), ~3.9 in steady state
    label_s_per_image: float = 3.9
    model_load_s_per_worker: float = 60.0
    bytes_per_pixel_stored: float = 1.65  # measured: PNG of decoded 256x256 photo crops (+ tiny bitstreams)


def estimate_cost(recipe: Recipe, n_sources: int, cost: CostModel | None = None, cores: int = 2) -> dict[str, float]:
    """Rough wall time (hours on ``cores``) and disk size (MB) of a recipe over ``n_sources`` photos."""
    model = cost or CostModel()
    crops = n_sources * recipe.crops_per_source
    mean_pixels = sum(h * w for h, w in recipe.crop_sizes) / len(recipe.crop_sizes)
    scale = mean_pixels / (768 * 512)
    core_s = 0.0
    images = 0
    for plan in recipe.codecs:
        per = model.encode_s_768x512.get(plan.codec, 0.5) * scale + model.encode_overhead_s.get(plan.codec, 0.05)
        core_s += crops * len(plan.levels) * (per + model.label_s_per_image)
        images += crops * (len(plan.levels) + 1)
    core_s += model.model_load_s_per_worker * max(1, cores)
    return {
        "crops": float(crops),
        "images": float(images),
        "core_hours": core_s / 3600.0,
        "wall_hours": core_s / 3600.0 / max(1, cores),
        "size_mb": images * mean_pixels * model.bytes_per_pixel_stored / 1e6,
    }
