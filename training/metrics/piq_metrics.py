"""Classic full-reference metrics from ``piq`` (no weights, no downloads).

Each metric is one small registered class naming its piq function, its
direction and the smallest side piq accepts; adding one means adding a class.
Inputs are uint8 RGB (H, W, 3); they reach piq as float tensors in [0, 1],
shape (1, 3, H, W), with ``data_range=1``. Scores are deterministic (CPU,
no randomness, gradients off).

Small images: each metric declares ``min_side`` (the smallest side piq accepts
for that metric, found by probing piq 0.8.0). MS-SSIM and IW-SSIM normally
need ≥ 161 px for their 5 scales; on smaller images they use as many scales
as fit (≥ 2, i.e. ≥ 21 px) with the standard weights of those scales
renormalised to sum to 1, so their values on small images are not
comparable with the 5-scale values on large ones (Eq. 3 only compares
versions of one image, which all have the same size).
"""

from __future__ import annotations

from collections.abc import Callable
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


PIQ_VERSION = f"piq-{piq.__version__}"


def _described(text: str) -> str:
    return f"{text} (piq {piq.__version__})"


class PiqMetric(SizedMetric):
    """Base of the piq metrics: each subclass names its piq ``function`` and declares direction and ``min_side``."""

    version: ClassVar[str] = PIQ_VERSION
    function: ClassVar[PiqFunction]

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        # piq's argument order is (x=distorted, y=reference)
        with torch.inference_mode():
            value = type(self).function(to_tensor(distorted), to_tensor(reference), data_range=1.0)
        return float(value.item())


@METRICS.register
class Psnr(PiqMetric):
    """piq metric 'psnr': PSNR over RGB in dB; identical images give 80 dB (piq adds 1e-8 to the MSE)."""

    name = "psnr"
    lower_is_better = False
    min_side = 16
    description = _described("PSNR over RGB in dB; identical images give 80 dB (piq adds 1e-8 to the MSE)")
    function = staticmethod(piq.psnr)


@METRICS.register
class Ssim(PiqMetric):
    """piq metric 'ssim': SSIM, 11x11 Gaussian window, mean over RGB channels."""

    name = "ssim"
    lower_is_better = False
    min_side = 16
    description = _described("SSIM, 11x11 Gaussian window, mean over RGB channels")
    function = staticmethod(piq.ssim)


@METRICS.register
class MsSsim(PiqMetric):
    """piq metric 'ms_ssim': MS-SSIM; fewer scales under 161 px."""

    name = "ms_ssim"
    lower_is_better = False
    min_side = 21
    description = _described("MS-SSIM; fewer scales under 161 px")
    function = staticmethod(_adaptive_scales(piq.multi_scale_ssim))


@METRICS.register
class IwSsim(PiqMetric):
    """piq metric 'iw_ssim': IW-SSIM; fewer scales under 161 px."""

    name = "iw_ssim"
    lower_is_better = False
    min_side = 21
    description = _described("IW-SSIM; fewer scales under 161 px")
    function = staticmethod(_adaptive_scales(piq.information_weighted_ssim))


@METRICS.register
class VifP(PiqMetric):
    """piq metric 'vif_p': pixel-domain VIF on luminance."""

    name = "vif_p"
    lower_is_better = False
    min_side = 41
    description = _described("pixel-domain VIF on luminance")
    function = staticmethod(piq.vif_p)


@METRICS.register
class Fsim(PiqMetric):
    """piq metric 'fsim': FSIMc (chromatic)."""

    name = "fsim"
    lower_is_better = False
    min_side = 16
    description = _described("FSIMc (chromatic)")
    function = staticmethod(piq.fsim)


@METRICS.register
class Gmsd(PiqMetric):
    """piq metric 'gmsd': gradient magnitude similarity deviation."""

    name = "gmsd"
    lower_is_better = True
    min_side = 16
    description = _described("gradient magnitude similarity deviation")
    function = staticmethod(piq.gmsd)


@METRICS.register
class MsGmsd(PiqMetric):
    """piq metric 'ms_gmsd': multi-scale GMSD."""

    name = "ms_gmsd"
    lower_is_better = True
    min_side = 17
    description = _described("multi-scale GMSD")
    function = staticmethod(piq.multi_scale_gmsd)


@METRICS.register
class Vsi(PiqMetric):
    """piq metric 'vsi': visual saliency-induced index."""

    name = "vsi"
    lower_is_better = False
    min_side = 16
    description = _described("visual saliency-induced index")
    function = staticmethod(piq.vsi)


@METRICS.register
class HaarPsi(PiqMetric):
    """piq metric 'haarpsi': Haar wavelet-based perceptual similarity."""

    name = "haarpsi"
    lower_is_better = False
    min_side = 16
    description = _described("Haar wavelet-based perceptual similarity")
    function = staticmethod(piq.haarpsi)


@METRICS.register
class Mdsi(PiqMetric):
    """piq metric 'mdsi': mean deviation similarity index."""

    name = "mdsi"
    lower_is_better = True
    min_side = 16
    description = _described("mean deviation similarity index")
    function = staticmethod(piq.mdsi)


@METRICS.register
class SrSim(PiqMetric):
    """piq metric 'srsim': spectral residual similarity."""

    name = "srsim"
    lower_is_better = False
    min_side = 40
    description = _described("spectral residual similarity")
    function = staticmethod(piq.srsim)


@METRICS.register
class Dss(PiqMetric):
    """piq metric 'dss': DCT subband similarity (NaN on images under 32 px)."""

    name = "dss"
    lower_is_better = False
    min_side = 32
    description = _described("DCT subband similarity (NaN on images under 32 px)")
    function = staticmethod(piq.dss)
