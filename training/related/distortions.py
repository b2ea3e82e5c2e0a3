"""Parametric distortions (codec level, Gaussian blur, Gaussian noise) and PSNR matching by bisection.

Used for PCMP-style pairs (:mod:`benchmarks.pcmp`: versions of one crop at
the same PSNR) and for Re-IQA-style quality-aware augmentation
(:mod:`training.related.reiqa`: views that share a distortion).

Kinds: every registered codec (parameter: its integer level, direction from
its ``LevelAxis``), ``blur`` (Gaussian σ in px, applied per channel with
edge reflection) and ``noise`` (additive Gaussian σ in 8-bit units, seeded;
rounded and clipped to uint8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

import codec_adapters
from sursmr.fidelity import psnr
from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage

SIGNAL_KINDS = ("blur", "noise")
SIGMA_RANGE = {"blur": (0.05, 25.0), "noise": (0.05, 120.0)}


@dataclass(frozen=True)
class Distorted:
    """One distorted version: its kind, parameter (level or σ), pixels and PSNR against the original."""

    kind: str
    param: float
    image: RGBImage
    psnr: float


def blur(rgb: RGBImage, sigma: float) -> RGBImage:
    """Gaussian blur with standard deviation ``sigma`` px in both directions (colour channels separately)."""
    out = gaussian_filter(rgb.astype(np.float32), sigma=(sigma, sigma, 0.0), mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def noise(rgb: RGBImage, sigma: float, seed: int = 0) -> RGBImage:
    """Additive white Gaussian noise of standard deviation ``sigma`` (8-bit units), deterministic per ``seed``."""
    rng = np.random.default_rng(seed)
    out = rgb.astype(np.float32) + rng.normal(0.0, sigma, rgb.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def apply(rgb: RGBImage, kind: str, param: float, seed: int = 0) -> RGBImage:
    """``rgb`` distorted by ``kind`` at ``param`` (a codec level, or σ for blur/noise)."""
    if kind == "blur":
        return blur(rgb, param)
    if kind == "noise":
        return noise(rgb, param, seed)
    if kind not in codec_adapters.list():
        raise InputError(f"unknown distortion {kind!r}; use blur, noise or a codec: {codec_adapters.list()}")
    adapter = codec_adapters.create(kind)
    return adapter.decode(adapter.encode(rgb, int(param)))


def _measure(rgb: RGBImage, kind: str, param: float, seed: int) -> Distorted:
    image = apply(rgb, kind, param, seed)
    return Distorted(kind, float(param), image, min(psnr(rgb, image), 99.0))


def match_psnr(rgb: RGBImage, kind: str, target: float, seed: int = 0, steps: int = 18) -> Distorted:
    """The version of ``rgb`` under ``kind`` whose PSNR is closest to ``target`` dB, found by bisection.

    Codecs: bisection over the integer level axis (PSNR assumed monotone in
    the level; the closer of the two bracketing levels wins). Blur and noise:
    bisection on σ in :data:`SIGMA_RANGE` (log scale), ``steps`` halvings.
    The caller checks ``|psnr − target|`` against its tolerance.
    """
    if kind in SIGNAL_KINDS:
        lo, hi = (math.log(v) for v in SIGMA_RANGE[kind])  # PSNR falls as σ grows
        best = _measure(rgb, kind, math.exp(hi), seed)
        for _ in range(steps):
            mid = _measure(rgb, kind, math.exp((lo + hi) / 2), seed)
            if abs(mid.psnr - target) < abs(best.psnr - target):
                best = mid
            if mid.psnr > target:
                lo = (lo + hi) / 2
            else:
                hi = (lo + hi) / 2
        return best
    axis = codec_adapters.get(kind).levels
    # PSNR rises from lo_level (the worst level) towards hi_level (the best)
    lo_level, hi_level = (axis.lo, axis.hi) if axis.better == "higher" else (axis.hi, axis.lo)
    tried: dict[int, Distorted] = {}

    def at(level: int) -> Distorted:
        if level not in tried:
            tried[level] = _measure(rgb, kind, level, seed)
        return tried[level]

    while abs(hi_level - lo_level) > 1:
        mid = (lo_level + hi_level) // 2
        if at(mid).psnr < target:
            lo_level = mid
        else:
            hi_level = mid
    candidates = [at(lo_level), at(hi_level)]
    return min(candidates, key=lambda d: abs(d.psnr - target))
