"""VMAF through the ``libvmaf`` filter of imageio-ffmpeg's static ffmpeg.

Each image pair is scored as a one-frame video: both PNGs are converted to
``yuv444p`` by ffmpeg (its default BT.601 matrix, limited range) and fed to
libvmaf with a model built into the library, so no model file is needed.
VMAF is higher-is-better on a 0..100 scale; note that an image scored
against itself gives about 97.4, not 100 (measured here with
vmaf_v0.6.1 on still images: the temporal feature is 0 for one frame).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

from sursmr_core.errors import ToolError
from sursmr_core.imaging import RGBImage, save_png
from sursmr_core.levels import Availability
from sursmr_core.toolrun import run_tool, scratch_dir
from training.metrics._pair_memo import PairMemo
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS

VMAF_TIMEOUT_S = 120.0


@cache
def ffmpeg_with_libvmaf() -> tuple[str | None, str | None]:
    """(ffmpeg path, None) when imageio-ffmpeg's ffmpeg has libvmaf, else (None, reason)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        return None, f"imageio-ffmpeg has no ffmpeg binary: {exc}"
    try:
        result = run_tool([exe, "-hide_banner", "-filters"], timeout=30.0)
    except ToolError as exc:
        return None, f"cannot run {exe}: {exc}"
    if b" libvmaf " not in result.stdout:
        return None, f"{exe} was built without the libvmaf filter"
    return exe, None


@dataclass(frozen=True)
class VmafModel:
    """A libvmaf model built into the library, named as its ``version=`` option."""

    name: str
    version: str
    description: str


VMAF_DEFAULT = VmafModel("vmaf", "vmaf_v0.6.1", "VMAF v0.6.1 (default model)")
VMAF_NEG = VmafModel("vmaf_neg", "vmaf_v0.6.1neg", "VMAF v0.6.1 NEG (no enhancement gain)")
# every model one ffmpeg run scores
VMAF_MODELS: tuple[VmafModel, ...] = (VMAF_DEFAULT, VMAF_NEG)


def vmaf_scores(reference: RGBImage, distorted: RGBImage) -> dict[str, float]:
    """Every model of :data:`VMAF_MODELS` on one pair of uint8 RGB images (checked by the caller), 0..100 each.

    One ffmpeg run scores all models (they share the feature extraction), and
    the result is remembered, so scoring ``vmaf`` and then ``vmaf_neg`` over
    a level sweep runs ffmpeg once per pair.
    """
    exe, reason = ffmpeg_with_libvmaf()
    if exe is None:
        raise ToolError(f"VMAF cannot run: {reason}")
    return _MEMO(reference, distorted)


def _run_vmaf(reference: RGBImage, distorted: RGBImage) -> dict[str, float]:
    exe, _ = ffmpeg_with_libvmaf()
    models = "|".join(f"version={m.version}\\:name={m.name}" for m in VMAF_MODELS)
    with scratch_dir("sursmr-vmaf-") as tmp:
        save_png(reference, tmp / "reference.png")
        save_png(distorted, tmp / "distorted.png")
        graph = (
            "[0:v]format=yuv444p[dist];[1:v]format=yuv444p[ref];"
            f"[dist][ref]libvmaf=model='{models}':log_fmt=json:log_path=vmaf.json:n_threads=1"
        )
        inputs = ["-i", "distorted.png", "-i", "reference.png"]
        run_tool(
            [str(exe), "-hide_banner", "-nostdin", "-loglevel", "error", *inputs, "-lavfi", graph, "-f", "null", "-"],
            timeout=VMAF_TIMEOUT_S,
            cwd=tmp,  # a relative log path keeps ffmpeg's option escaping out of the way
        )
        try:
            pooled = json.loads((tmp / "vmaf.json").read_text())["pooled_metrics"]
            return {m.name: float(pooled[m.name]["mean"]) for m in VMAF_MODELS}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ToolError(f"libvmaf wrote no readable score: {exc}") from exc


_MEMO = PairMemo(_run_vmaf)


def vmaf_score(reference: RGBImage, distorted: RGBImage, model_version: str) -> float:
    """VMAF of one pair of uint8 RGB images (checked by the caller) with the model of that version, 0..100."""
    for model in VMAF_MODELS:
        if model.version == model_version:
            return vmaf_scores(reference, distorted)[model.name]
    raise ToolError(f"no VMAF model {model_version!r}; known: {', '.join(m.version for m in VMAF_MODELS)}")


class VmafMetric(SizedMetric):
    """Base of the VMAF models; ``model`` is set per subclass."""

    lower_is_better: ClassVar[bool] = False
    jnd_unit: ClassVar[str | None] = "vmaf"
    min_side: ClassVar[int] = 16
    model: ClassVar[VmafModel]

    @classmethod
    def availability(cls) -> Availability:
        exe, reason = ffmpeg_with_libvmaf()
        return Availability(exe is not None, reason)

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        return vmaf_score(reference, distorted, self.model.version)


@METRICS.register
class Vmaf(VmafMetric):
    """VMAF v0.6.1 (default model); higher is better, about 97.4 for identical still images."""

    name = "vmaf"
    model = VMAF_DEFAULT
    version = model.version
    description = f"{model.description} via imageio-ffmpeg's libvmaf"


@METRICS.register
class VmafNeg(VmafMetric):
    """VMAF v0.6.1 NEG (no enhancement gain); higher is better, about 97.4 for identical still images."""

    name = "vmaf_neg"
    model = VMAF_NEG
    version = model.version
    description = f"{model.description} via imageio-ffmpeg's libvmaf"
