"""Fast fidelity numbers for sweeps and baselines: PSNR and SSIM on RGB arrays.

These are classic signal metrics, not predictions of SUR; the IQA ensemble
used for labels lives in ``training``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage

# BT.601 luma weights, the same Y the JPEG/BPG encoders code
_LUMA = np.array([0.299, 0.587, 0.114])


def _same_shape(a: RGBImage, b: RGBImage) -> None:
    if a.shape != b.shape:
        raise InputError(f"images differ in size: {a.shape} vs {b.shape}")


def psnr(reference: RGBImage, distorted: RGBImage) -> float:
    """PSNR in dB over all RGB samples (peak 255); ``inf`` for identical images."""
    _same_shape(reference, distorted)
    mse = float(np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(reference: RGBImage, distorted: RGBImage) -> float:
    """SSIM (Wang et al. 2004) on BT.601 luma, Gaussian window σ = 1.5; in [-1, 1]."""
    _same_shape(reference, distorted)
    x = reference.astype(np.float64) @ _LUMA
    y = distorted.astype(np.float64) @ _LUMA
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        blurred: np.ndarray = gaussian_filter(a, sigma=1.5, truncate=3.5)
        return blurred

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))
