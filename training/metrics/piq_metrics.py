"""Classic full-reference metrics from ``piq`` (no weights, no downloads).

Each metric is one row of :data:`PIQ_SPECS`; a small class per row is built
and registered from the table, so adding a metric means adding a row.
Inputs are uint8 RGB (H, W, 3); they reach piq as float tensors in [0, 1],
shape (1, 3, H, W), with ``data_range=1``. Scores are deterministic (CPU,
no randomness, gradients off).

Small images: each row declares ``min_side`` (the smallest side piq accepts
for that metric, found by probing piq 0.8.0). MS-SSIM and IW-SSIM normally
need ≥ 161 px for their 5 scales; on smaller images they use as many scales
as fit (≥ 2, i.e. ≥ 21 px) with the standard weights of those scales
renormalised to sum to 1, so their values on small images are not
comparable with the 5-scale values on large ones (Eq. 3 only compares
versions of one image, which all have the same size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import piq
import torch

from sursmr_core.imaging import RGBImage
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS

PiqFunction = Callable[..., torch.Tensor]

# Wang, Simoncelli & Bovik 2003 (MS-SSIM), the weights piq also uses by default
MS_SSIM_SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_SSIM_KERNEL = 11


def to_tensor(image: RGBImage) -> torch.Tensor:
    """uint8 (H, W, 3) → float32 (1, 3, H, W) in [0, 1]."""
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(array).unsqueeze(0)


def scales_that_fit(height: int, width: int, max_scales: int = len(MS_SSIM_SCALE_WEIGHTS)) -> int:
    """Number of dyadic scales an 11-tap SSIM window fits into: side ≥ 10·2^(n−1) + 1."""
    short = min(height, width)
    scales = max_scales
    while scales > 1 and short < (_SSIM_KERNEL - 1) * 2 ** (scales - 1) + 1:
        scales -= 1
    return scales


def _adaptive_scales(function: PiqFunction) -> PiqFunction:
    """Wrap a multi-scale piq function so images under 161 px use fewer scales."""

    def call(x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        scales = scales_that_fit(int(x.shape[-2]), int(x.shape[-1]))
        weights = torch.tensor(MS_SSIM_SCALE_WEIGHTS[:scales], dtype=x.dtype)
        return function(x, y, scale_weights=weights / weights.sum(), **kwargs)

    return call


@dataclass(frozen=True)
class PiqSpec:
    """One piq metric: registry name, piq function, direction, smallest side, extra arguments."""

    name: str
    function: PiqFunction
    lower_is_better: bool
    min_side: int
    description: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


PIQ_SPECS: tuple[PiqSpec, ...] = (
    PiqSpec("psnr", piq.psnr, False, 16, "PSNR over RGB in dB; identical images give 80 dB (piq adds 1e-8 to the MSE)"),
    PiqSpec("ssim", piq.ssim, False, 16, "SSIM, 11x11 Gaussian window, mean over RGB channels"),
    PiqSpec("ms_ssim", _adaptive_scales(piq.multi_scale_ssim), False, 21, "MS-SSIM; fewer scales under 161 px"),
    PiqSpec(
        "iw_ssim", _adaptive_scales(piq.information_weighted_ssim), False, 21, "IW-SSIM; fewer scales under 161 px"
    ),
    PiqSpec("vif_p", piq.vif_p, False, 41, "pixel-domain VIF on luminance"),
    PiqSpec("fsim", piq.fsim, False, 16, "FSIMc (chromatic)"),
    PiqSpec("gmsd", piq.gmsd, True, 16, "gradient magnitude similarity deviation"),
    PiqSpec("ms_gmsd", piq.multi_scale_gmsd, True, 17, "multi-scale GMSD"),
    PiqSpec("vsi", piq.vsi, False, 16, "visual saliency-induced index"),
    PiqSpec("haarpsi", piq.haarpsi, False, 16, "Haar wavelet-based perceptual similarity"),
    PiqSpec("mdsi", piq.mdsi, True, 16, "mean deviation similarity index"),
    PiqSpec("srsim", piq.srsim, False, 40, "spectral residual similarity"),
    PiqSpec("dss", piq.dss, False, 32, "DCT subband similarity (NaN on images under 32 px)"),
)


class PiqMetric(SizedMetric):
    """Base of the table-generated piq metrics; ``spec`` is set per subclass."""

    spec: ClassVar[PiqSpec]

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        # piq's argument order is (x=distorted, y=reference)
        with torch.inference_mode():
            value = self.spec.function(to_tensor(distorted), to_tensor(reference), data_range=1.0, **self.spec.kwargs)
        return float(value.item())


def _build(spec: PiqSpec) -> type[PiqMetric]:
    attributes: dict[str, Any] = {
        "spec": spec,
        "name": spec.name,
        "lower_is_better": spec.lower_is_better,
        "min_side": spec.min_side,
        "description": f"{spec.description} (piq {piq.__version__})",
        "version": f"piq-{piq.__version__}",
        "__module__": __name__,
        "__doc__": f"piq metric {spec.name!r}: {spec.description}.",
    }
    return type(f"Piq_{spec.name}", (PiqMetric,), attributes)


for _spec in PIQ_SPECS:
    METRICS.register(_build(_spec))
