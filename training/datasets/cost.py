"""Build time and disk size of a :class:`~training.datasets.recipe.Recipe`, from measured per-operation costs.

The constants are measured by ``benchmarks/labeller_cost.py``; see
:func:`estimate_cost`. Re-exported by :mod:`training.datasets.recipe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.datasets.recipe import Recipe


# Measured by ``benchmarks/labeller_cost.py --images 6`` (benchmarks/results/labeller_cost.json): core-seconds
# (CPU of the worker and the tools it runs) per 256x256 image, one thread; mean over 6 photo crops.
_METRIC_S_256 = {
    "psnr": 0.0012, "ssim": 0.0298, "ms_ssim": 0.0361, "vif_p": 0.0680, "gmsd": 0.0137, "ms_gmsd": 0.0159,
    "haarpsi": 0.0191, "mdsi": 0.0200, "srsim": 0.0663, "dss": 0.0292, "ssimulacra2": 0.1368, "vmaf": 0.0763,
    "vmaf_neg": 0.0007, "butteraugli_max": 0.0006, "butteraugli_3norm": 0.1119, "fsim": 0.2312,
    "iw_ssim": 0.0952, "vsi": 0.0636,
}  # fmt: skip
_MACHINE_S_256 = {
    "dlib_face_embedding": 0.0353, "dlib_hog_face": 0.0383, "dlib_landmarks68": 0.0339,
    "efficientnet_lite0": 0.0726, "haar_eyes": 0.0288, "haar_frontal_face": 0.0359, "hog_people": 0.0262,
    "nudenet": 0.0438, "open_nsfw": 0.0423, "rapidocr": 0.4090, "tesseract": 0.3811,
    "efficientnet_lite1": 0.0950, "efficientnet_lite2": 0.1481, "haar_cat_face": 0.0433, "haar_full_body": 0.0299,
    "haar_plate": 0.0123, "haar_profile_face": 0.0501, "haar_upper_body": 0.0620, "mediapipe_face": 0.0047,
    "mediapipe_face_mesh": 0.0049, "mediapipe_hands": 0.0280, "mediapipe_pose": 0.0300, "mediapipe_selfie": 0.0090,
    "mtcnn_face": 0.0562, "mtcnn_landmarks5": 0.0580, "rapidocr_text_boxes": 0.4557,
}  # fmt: skip
# encode + decode, mean over every level of the v2 grid
_CODEC_S_256 = {"jpeg": 0.0022, "bpg": 0.1892, "vvc": 0.2245}


# Share of v2 crops on which each machine's task applies to the original (so it also runs on the decoded
# images), measured on 42 crops (256x256, every third v2 photo) with training.machines' applies(): at the v2
# crop scale (scale_reference 640) for the first nine, at native scale (fewer votes) for the rest.
# Machines not listed count with CostModel.default_applicable_share.
_APPLICABLE_SHARE = {
    "efficientnet_lite0": 0.262, "efficientnet_lite2": 0.095, "open_nsfw": 1.0, "mediapipe_face": 0.119,
    "mtcnn_face": 0.024, "mediapipe_selfie": 0.31, "hog_people": 0.024, "nudenet": 0.024, "haar_frontal_face": 0.048,
    "efficientnet_lite1": 0.119, "mediapipe_face_mesh": 0.024, "mediapipe_pose": 0.071, "mtcnn_landmarks5": 0.024,
    "dlib_face_embedding": 0.0, "dlib_hog_face": 0.0, "rapidocr": 0.143,
}  # fmt: skip
# metrics computed by another metric's tool run (training/metrics/_pair_memo.py): charged once per pair
_SHARED_RUN = {"vmaf_neg": "vmaf", "butteraugli_3norm": "butteraugli_max"}


@dataclass(frozen=True)
class CostModel:
    """Per-operation costs (core-seconds per 256×256 image) for :func:`estimate_cost`.

    Costs scale with pixel count. A machine runs once on each crop's
    reference and, on the decoded images, only where its task applies to the
    original (``applicable_share`` of crops, per machine; the builder skips
    the rest, see :func:`~training.datasets.labelling.label_sweep`).
    ``unknown_labeller_s`` is charged for a labeller without a measurement.
    """

    metric_s: Mapping[str, float] = field(default_factory=lambda: dict(_METRIC_S_256))
    machine_s: Mapping[str, float] = field(default_factory=lambda: dict(_MACHINE_S_256))
    codec_s: Mapping[str, float] = field(default_factory=lambda: dict(_CODEC_S_256))
    unknown_labeller_s: float = 0.1
    applicable_share: Mapping[str, float] = field(default_factory=lambda: dict(_APPLICABLE_SHARE))
    default_applicable_share: float = 0.5
    png_and_overhead_s: float = 0.03  # PNG of each decoded image, npz, JSON
    model_load_s_per_worker: float = 60.0
    bytes_per_pixel_stored: float = 1.65  # measured: PNG of decoded 256x256 photo crops (+ tiny bitstreams)

    def label_s_per_image(self, recipe: Recipe) -> float:
        """Labelling core-seconds of one decoded 256×256 image (metrics + applicable machines)."""
        metrics = recipe.metrics if recipe.metrics is not None else tuple(self.metric_s)
        machines = recipe.machines if recipe.machines is not None else tuple(self.machine_s)
        # one tool run serves both members of a pair: the member measured first paid for it, so charge the
        # pair the larger of the two measurements, once
        runs: dict[str, float] = {}
        for m in metrics:
            run = _SHARED_RUN.get(m, m)
            members = [k for k in self.metric_s if _SHARED_RUN.get(k, k) == run] or [m]
            runs[run] = max(self.metric_s.get(k, self.unknown_labeller_s) for k in members)
        metric = sum(runs.values())
        machine = sum(
            self.machine_s.get(m, self.unknown_labeller_s) * self.applicable_share.get(m, self.default_applicable_share)
            for m in machines
        )
        return metric + machine

    def reference_s(self, recipe: Recipe) -> float:
        machines = recipe.machines if recipe.machines is not None else tuple(self.machine_s)
        return sum(self.machine_s.get(m, self.unknown_labeller_s) for m in machines)


def estimate_cost(recipe: Recipe, n_sources: int, cost: CostModel | None = None, cores: int = 2) -> dict[str, float]:
    """Rough wall time (hours on ``cores``) and disk size (MB) of a recipe over ``n_sources`` photos.

    Photos are split by the recipe's shares; validation and test crops carry
    every grid level, training crops ``train_levels`` per codec.
    """
    model = cost or CostModel()
    sources = min(n_sources, recipe.max_sources) if recipe.max_sources is not None else n_sources
    crops = sources * recipe.crops_per_source
    train_crops = crops * recipe.split[0]
    eval_crops = crops - train_crops
    mean_pixels = sum(h * w for h, w in recipe.crop_sizes) / len(recipe.crop_sizes)
    scale = mean_pixels / (256 * 256)
    label = model.label_s_per_image(recipe) + model.png_and_overhead_s
    core_s = 0.0
    images = 0.0
    for plan in recipe.codecs:
        per_crop_train = plan.train_levels or len(plan.levels)
        levels = train_crops * per_crop_train + eval_crops * len(plan.levels)
        core_s += levels * scale * (label + model.codec_s.get(plan.codec, 0.5))
        core_s += crops * scale * model.reference_s(recipe)
        images += levels + crops
    core_s += model.model_load_s_per_worker * max(1, cores)
    return {
        "crops": float(crops),
        "images": float(round(images)),
        "core_hours": core_s / 3600.0,
        "wall_hours": core_s / 3600.0 / max(1, cores),
        "size_mb": images * mean_pixels * model.bytes_per_pixel_stored / 1e6,
    }
