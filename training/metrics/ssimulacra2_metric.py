"""SSIMULACRA2 through the pure-Python ``ssimulacra2`` package (PyPI).

Higher is better; 100 for identical images, negative for very strong
distortion. Its authors map scores to quality bands (libjxl/cloudinary
README: 90 ≈ visually lossless, 80 ≈ not noticeable side by side, 70 ≈
barely noticeable side by side, 50 medium, 30 low), which the absolute SUR
proxy in :mod:`training.labels.jnd_proxy` uses.

Size caveat: the metric runs 6 dyadic scales and skips scales under 8 px,
but its weights are indexed as if all 6 were present, so images whose
short side is under 256 px get scores on a different (lower) scale:
measured here on a photo crop with JPEG quality 95, 64x96 → 49.6,
128x128 → 80.9, 512x512 → 88.1. Compare such scores only between versions
of one image (as Eq. 3 does).
"""

from __future__ import annotations

import io
from typing import ClassVar

import ssimulacra2
from PIL import Image

from sursmr_core.imaging import RGBImage
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS

FULL_SCALE_MIN_SIDE = 256
"""Short side from which all 6 SSIMULACRA2 scales are used (8 px · 2⁵)."""


def _png(image: RGBImage) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


@METRICS.register
class Ssimulacra2(SizedMetric):
    """SSIMULACRA2 score of a uint8 RGB pair; ≤ 100, higher is better."""

    name: ClassVar[str] = "ssimulacra2"
    lower_is_better: ClassVar[bool] = False
    jnd_unit: ClassVar[str | None] = "ssimulacra2"
    version: ClassVar[str] = f"ssimulacra2-py-{ssimulacra2.__version__}"
    description: ClassVar[str] = "SSIMULACRA2 (pure-Python port, PyPI ssimulacra2)"
    min_side: ClassVar[int] = 16

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        # the package reads images through Pillow, which accepts in-memory PNGs
        return float(ssimulacra2.compute_ssimulacra2(_png(reference), _png(distorted)))
