"""RGB ↔ Y'CbCr 4:2:0 conversion shared by the HEVC (BPG) and VVC adapters.

We do the colour conversion ourselves, in numpy, so both directions use the
same matrix and range whatever the encoder's or decoder's defaults are.
Chroma is sited at the centre of each 2×2 block (JPEG/BPG siting): a box
filter to subsample, and the matching 3:1 bilinear filter to upsample where
asked; BPG and VVC pictures are upsampled with libbpg's own longer filter
(:func:`upsample_chroma_libbpg`), so our BPG decode matches ``bpgdec``'s and
VVC gets the same (VVC leaves upsampling to the player).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage

Matrix = Literal["bt601", "bt709"]
ChromaFilter = Literal["bilinear", "libbpg"]
"""How :func:`planes_420_to_rgb` upsamples chroma: our 3:1 bilinear filter, or libbpg's 7-tap one."""

# (Kr, Kb) luma coefficients of each matrix
_K = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


@dataclass(frozen=True)
class Planes420:
    """Three planes of a 4:2:0 picture; luma padded to even size, chroma half of that.

    ``width``/``height`` are the picture's real size (before padding).
    Samples are ``uint8`` for 8-bit and ``uint16`` for deeper pictures.
    """

    y: npt.NDArray[np.integer]
    cb: npt.NDArray[np.integer]
    cr: npt.NDArray[np.integer]
    width: int
    height: int
    bit_depth: int

    def tobytes(self) -> bytes:
        """Planar ``yuv420p`` (8-bit) or ``yuv420p10le``-style little-endian bytes."""
        dtype = "<u2" if self.bit_depth > 8 else "u1"
        return b"".join(np.ascontiguousarray(p, dtype=dtype).tobytes() for p in (self.y, self.cb, self.cr))


def _matrices(matrix: Matrix) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    kr, kb = _K[matrix]
    kg = 1.0 - kr - kb
    forward = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )
    return forward, np.linalg.inv(forward)


def _pad_even(a: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    h, w = a.shape[:2]
    return np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def rgb_to_420(
    rgb: RGBImage,
    *,
    bit_depth: int = 8,
    full_range: bool = True,
    matrix: Matrix = "bt601",
    pad_to: int = 2,
) -> Planes420:
    """Convert uint8 RGB (H, W, 3) to 4:2:0 planes; luma padded by edge replication to a multiple of ``pad_to``."""
    if pad_to % 2:
        raise ValueError("pad_to must be even for 4:2:0")
    height, width = rgb.shape[:2]
    forward, _ = _matrices(matrix)
    ycc = rgb.astype(np.float32) @ forward.T.astype(np.float32) / np.float32(255.0)  # Y in [0,1], Cb/Cr in [-0.5, 0.5]
    pad_h, pad_w = (-height) % pad_to, (-width) % pad_to
    ycc = np.pad(ycc, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    ph, pw = ycc.shape[:2]
    chroma = ycc[:, :, 1:].reshape(ph // 2, 2, pw // 2, 2, 2).mean(axis=(1, 3))
    peak = (1 << bit_depth) - 1
    mid = 1 << (bit_depth - 1)
    if full_range:
        y = ycc[:, :, 0] * peak
        c = chroma * peak + mid
    else:  # "studio" range: Y 16..235, C 16..240 scaled to the bit depth
        scale = 1 << (bit_depth - 8)
        y = (16 + 219 * ycc[:, :, 0]) * scale
        c = (128 + 224 * chroma) * scale
    dtype = np.uint16 if bit_depth > 8 else np.uint8
    y_q: npt.NDArray[np.integer] = np.clip(np.rint(y), 0, peak).astype(dtype)
    c_q: npt.NDArray[np.integer] = np.clip(np.rint(c), 0, peak).astype(dtype)
    return Planes420(y_q, c_q[:, :, 0], c_q[:, :, 1], width, height, bit_depth)


def _upsample_axis(c: npt.NDArray[np.floating], axis: int) -> npt.NDArray[np.floating]:
    # centre-sited chroma: each output sample is 3/4 of the nearest chroma sample and 1/4 of the next one
    prev = np.concatenate([np.take(c, [0], axis=axis), np.delete(c, -1, axis=axis)], axis=axis)
    nxt = np.concatenate([np.delete(c, 0, axis=axis), np.take(c, [-1], axis=axis)], axis=axis)
    even = 0.75 * c + 0.25 * prev
    odd = 0.75 * c + 0.25 * nxt
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(c.shape)
    shape[axis] *= 2
    return out.reshape(shape)


# libbpg 0.9.8 (libbpg.c, IP1C0..IP1C6: "7 tap Lanczos interpolator (phase=0.5)"): the weights, in 64ths,
# of chroma samples k-3..k+3 for the luma sample 2k (left of / above chroma sample k); 2k+1 takes them reversed.
_LIBBPG_TAPS_EVEN = np.array([2, -6, 18, 57, -10, 4, -1], dtype=np.int64)
_LIBBPG_TAPS_ODD = _LIBBPG_TAPS_EVEN[::-1].copy()
_LIBBPG_REACH = 3  # chroma samples used on each side of the nearest one


def _libbpg_taps_axis(c: npt.NDArray[np.int64], axis: int) -> npt.NDArray[np.int64]:
    """Both 7-tap phases along ``axis`` (edge samples repeated), interleaved: twice the length, in 64ths."""
    pad = [(0, 0)] * c.ndim
    pad[axis] = (_LIBBPG_REACH, _LIBBPG_REACH)
    padded = np.pad(c, pad, mode="edge")
    n = c.shape[axis]
    even, odd = np.zeros_like(c), np.zeros_like(c)
    for i, (tap_even, tap_odd) in enumerate(zip(_LIBBPG_TAPS_EVEN, _LIBBPG_TAPS_ODD, strict=True)):
        window = np.take(padded, np.arange(i, i + n), axis=axis)  # chroma sample k - 3 + i for every k
        even += int(tap_even) * window
        odd += int(tap_odd) * window
    shape = list(c.shape)
    shape[axis] *= 2
    return np.stack([even, odd], axis=axis + 1).reshape(shape)


def upsample_chroma_libbpg(
    chroma: npt.NDArray[np.integer], *, width: int, height: int, bit_depth: int = 8
) -> npt.NDArray[np.integer]:
    """Upsample one centre-sited 4:2:0 chroma plane to ``height`` × ``width`` exactly as libbpg's decoder does.

    ``chroma``: (≥ ceil(height/2), ≥ ceil(width/2)) samples; rows and columns
    past the picture's own chroma size (coded padding) are ignored, as libbpg
    ignores them: its edge samples are repeated instead. Each output sample is
    a separable 7×7 sum of chroma samples with libbpg's integer taps (in 64ths,
    vertical pass first, kept at 8-bit precision plus 6 bits, then the
    horizontal pass), rounded half up, shifted back and clipped to the
    ``bit_depth`` range. Returns integers of ``chroma``'s dtype, (height, width).
    Facts from libbpg 0.9.8's ``libbpg.c`` (``interp2_vh``, ``interp2p1_simple16``);
    the code is ours.
    """
    if bit_depth < 8 or bit_depth > 14:
        raise InputError(f"bit_depth must be 8..14, got {bit_depth}")
    c_h, c_w = (height + 1) // 2, (width + 1) // 2
    if chroma.ndim != 2 or chroma.shape[0] < c_h or chroma.shape[1] < c_w:
        raise InputError(f"a chroma plane of {chroma.shape} is too small for a {width}x{height} picture")
    c = chroma[:c_h, :c_w].astype(np.int64)
    vertical = _libbpg_taps_axis(c, axis=0)
    shift = bit_depth - 8  # libbpg keeps the vertical pass in 16 bits: 8 bits of sample plus 6 of taps
    vertical = (vertical + ((1 << shift) >> 1)) >> shift
    both = _libbpg_taps_axis(vertical, axis=1)
    shift = 20 - bit_depth  # undo the 6 + 6 tap bits and the vertical pass's rescaling
    out = (both + (1 << (shift - 1))) >> shift
    peak = (1 << bit_depth) - 1
    upsampled: npt.NDArray[np.integer] = np.clip(out[:height, :width], 0, peak).astype(chroma.dtype)
    return upsampled


def planes_420_to_rgb(
    y: npt.NDArray[np.integer],
    cb: npt.NDArray[np.integer],
    cr: npt.NDArray[np.integer],
    *,
    width: int,
    height: int,
    bit_depth: int = 8,
    full_range: bool = True,
    matrix: Matrix = "bt601",
    chroma_filter: ChromaFilter = "bilinear",
) -> RGBImage:
    """Convert 4:2:0 planes (luma possibly padded) back to uint8 RGB cropped to ``height`` × ``width``.

    ``chroma_filter``: ``"bilinear"`` (ours) or ``"libbpg"`` (:func:`upsample_chroma_libbpg`).
    """
    peak = (1 << bit_depth) - 1
    mid = 1 << (bit_depth - 1)
    if chroma_filter == "libbpg":
        cb_up = upsample_chroma_libbpg(cb, width=width, height=height, bit_depth=bit_depth).astype(np.float32)
        cr_up = upsample_chroma_libbpg(cr, width=width, height=height, bit_depth=bit_depth).astype(np.float32)
    elif chroma_filter == "bilinear":
        cb_up = _upsample_axis(_upsample_axis(cb.astype(np.float32), 0), 1)
        cr_up = _upsample_axis(_upsample_axis(cr.astype(np.float32), 0), 1)
    else:
        raise InputError(f"chroma_filter must be one of {get_args(ChromaFilter)}, got {chroma_filter!r}")
    luma = y.astype(np.float32)
    h = min(luma.shape[0], cb_up.shape[0])
    w = min(luma.shape[1], cb_up.shape[1])
    if h < height or w < width:
        raise ValueError(f"planes of {w}x{h} are smaller than the picture {width}x{height}")
    luma, cb_up, cr_up = luma[:height, :width], cb_up[:height, :width], cr_up[:height, :width]
    if full_range:
        yn = luma / peak
        cbn = (cb_up - mid) / peak
        crn = (cr_up - mid) / peak
    else:
        scale = 1 << (bit_depth - 8)
        yn = (luma / scale - 16) / 219
        cbn = (cb_up / scale - 128) / 224
        crn = (cr_up / scale - 128) / 224
    _, inverse = _matrices(matrix)
    rgb = np.stack([yn, cbn, crn], axis=-1) @ inverse.T.astype(np.float32) * np.float32(255.0)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
