"""Butteraugli distances through libjxl's ``butteraugli_main`` (Debian ``libjxl-devtools``).

Butteraugli is a psychovisual distance whose unit is tied to just-noticeable
differences: 1.0 is meant as "just noticeable" at the tool's default viewing
conditions (80 nits). Two metrics share one tool:

* ``butteraugli_max``: the maximum of the distance map (the tool's first line);
* ``butteraugli_3norm``: the 3-norm of the map (its ``3-norm:`` line),
  less dominated by a single worst spot.

Both are distances: 0 for identical images, lower is better. Images travel
as PNG files (no ICC profile, so the tool reads them as sRGB) through a
scratch directory that is always removed.
"""

from __future__ import annotations

import re
import shutil
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

BUTTERAUGLI_BINARY = "butteraugli_main"
BUTTERAUGLI_TIMEOUT_S = 120.0
_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_MAX_LINE = re.compile(rf"^\s*{_NUMBER}\s*$", re.MULTILINE)
_PNORM_LINE = re.compile(rf"^\s*3-norm:\s*{_NUMBER}\s*$", re.MULTILINE)


@cache
def butteraugli_path() -> str | None:
    """Absolute path of ``butteraugli_main`` on PATH, or None."""
    return shutil.which(BUTTERAUGLI_BINARY)


@dataclass(frozen=True)
class ButteraugliDistances:
    """Both summaries of one butteraugli distance map (unitless, 1.0 ≈ just noticeable)."""

    max: float
    norm3: float


def parse_butteraugli_output(stdout: str) -> ButteraugliDistances:
    """Read ``<max>\\n3-norm: <p3>`` as printed by libjxl's butteraugli_main."""
    max_match = _MAX_LINE.search(stdout)
    norm_match = _PNORM_LINE.search(stdout)
    if max_match is None or norm_match is None:
        raise ToolError(f"{BUTTERAUGLI_BINARY} printed no distances: {stdout.strip()[-300:]!r}")
    return ButteraugliDistances(max=float(max_match.group(1)), norm3=float(norm_match.group(1)))


def butteraugli_distances(reference: RGBImage, distorted: RGBImage) -> ButteraugliDistances:
    """Both summaries for a pair of uint8 RGB images (checked by the caller).

    The two metrics come from one run of the tool: scoring butteraugli_max and
    then butteraugli_3norm over a level sweep runs it once per pair, not twice.
    """
    if butteraugli_path() is None:
        raise ToolError(f"{BUTTERAUGLI_BINARY} is not installed (Debian/Ubuntu: apt install libjxl-devtools)")
    return _MEMO(reference, distorted)


def _run_butteraugli(reference: RGBImage, distorted: RGBImage) -> ButteraugliDistances:
    """Run the tool once on a pair of uint8 RGB images."""
    binary = butteraugli_path()
    if binary is None:
        raise ToolError(f"{BUTTERAUGLI_BINARY} is not installed (Debian/Ubuntu: apt install libjxl-devtools)")
    with scratch_dir("sursmr-butteraugli-") as tmp:
        ref_path, dist_path = tmp / "reference.png", tmp / "distorted.png"
        save_png(reference, ref_path)
        save_png(distorted, dist_path)
        result = run_tool([binary, ref_path, dist_path], timeout=BUTTERAUGLI_TIMEOUT_S)
    return parse_butteraugli_output(result.stdout.decode("utf-8", "replace"))


_MEMO = PairMemo(lambda reference, distorted: _run_butteraugli(reference, distorted))


class ButteraugliMetric(SizedMetric):
    """Base of the two butteraugli summaries; ``field`` names the one reported."""

    lower_is_better: ClassVar[bool] = True
    jnd_unit: ClassVar[str | None] = "butteraugli"
    min_side: ClassVar[int] = 16
    field: ClassVar[str]

    @classmethod
    def availability(cls) -> Availability:
        if butteraugli_path() is None:
            return Availability(False, f"{BUTTERAUGLI_BINARY} not found on PATH (apt install libjxl-devtools)")
        return Availability(True)

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        distances = butteraugli_distances(reference, distorted)
        return float(getattr(distances, self.field))


_NOTE = "libjxl butteraugli_main; 1.0 ≈ just noticeable"


@METRICS.register
class ButteraugliMax(ButteraugliMetric):
    """Butteraugli maximum of the butteraugli distance map; lower is better, 0 for identical images."""

    name = "butteraugli_max"
    field = "max"
    description = f"maximum of the butteraugli distance map ({_NOTE})"


@METRICS.register
class Butteraugli3Norm(ButteraugliMetric):
    """Butteraugli 3-norm of the butteraugli distance map; lower is better, 0 for identical images."""

    name = "butteraugli_3norm"
    field = "norm3"
    description = f"3-norm of the butteraugli distance map ({_NOTE})"
