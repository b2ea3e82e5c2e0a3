"""libbpg's chroma upsampling (codec_adapters._yuv.upsample_chroma_libbpg) against hand-computed values.

libbpg 0.9.8 weights chroma samples k-3..k+3 by (2, -6, 18, 57, -10, 4, -1)/64 for
output sample 2k and by the reverse for 2k+1, vertical pass first, edges repeated.
The expected numbers below are worked out by hand from those taps.
"""

from __future__ import annotations

import numpy as np
import pytest

from codec_adapters._yuv import planes_420_to_rgb, upsample_chroma_libbpg
from sursmr_core.errors import InputError


def _row(values: list[int], rows: int = 1) -> np.ndarray:
    return np.tile(np.array(values, dtype=np.uint8), (rows, 1))


def test_a_step_rings_like_the_lanczos_taps() -> None:
    # chroma 100 100 164 164, edges repeated; output 2k+p sums window c[k-3..k+3] with taps for phase p:
    #   k=0 window 100 100 100 100 100 164 164: even 100·61 + 164·3 = 6592 → 103; odd 100·68 − 164·4 = 6144 → 96
    #   k=1 window 100 100 100 100 164 164 164: even 100·71 − 164·7 = 5952 → 93;  odd 100·50 + 164·14 = 7296 → 114
    #   k=2 window 100 100 100 164 164 164 164: even 100·14 + 164·50 = 9600 → 150; odd −100·7 + 164·71 = 10944 → 171
    #   k=3 window 100 100 164 164 164 164 164: even −100·4 + 164·68 = 10752 → 168; odd 100·3 + 164·61 = 10304 → 161
    # (all in 64ths; bilinear would give 100 100 100 116 148 164 164 164: no ringing)
    out = upsample_chroma_libbpg(_row([100, 100, 164, 164]), width=8, height=2)
    assert out.shape == (2, 8)
    assert out[0].tolist() == [103, 96, 93, 114, 150, 171, 168, 161]
    assert np.array_equal(out[0], out[1])  # one chroma row: every output row is the same


def test_rounding_is_half_up() -> None:
    # chroma 0 48 (8 bit, one row: the vertical pass is exact, (64·s + 2048) >> 12 rounds s/64 half up):
    #   output 0: 48·(−10+4−1) = −336 → clipped to 0;  output 1: 48·(18−6+2) = 672 = 10.5·64 → 11 (half-even: 10)
    #   output 2: 48·(57−10+4−1) = 2400 = 37.5·64 → 38;  output 3: 48·(57+18−6+2) = 3408 = 53.25·64 → 53
    assert upsample_chroma_libbpg(_row([0, 48]), width=4, height=1)[0].tolist() == [0, 11, 38, 53]


def test_vertical_pass_uses_the_same_taps() -> None:
    plane = _row([100, 100, 164, 164]).T.copy()  # a column
    out = upsample_chroma_libbpg(plane, width=2, height=8)
    assert out[:, 0].tolist() == [103, 96, 93, 114, 150, 171, 168, 161]
    assert np.array_equal(out[:, 0], out[:, 1])


def test_overshoot_is_clipped_to_the_sample_range() -> None:
    # 0 0 255 255: output 2 → 255·(−7)/64 = −27.9 → clipped to 0; output 5 → 255·(64 + 7)/64 → clipped to 255
    out = upsample_chroma_libbpg(_row([0, 0, 255, 255]), width=8, height=1)
    assert out[0].tolist()[2] == 0 and out[0].tolist()[5] == 255


def test_ten_bit_keeps_libbpg_intermediate_rounding() -> None:
    # 10 bit: the vertical sum s_v becomes (s_v + 2) >> 2, then the horizontal pass (here of a constant row,
    # taps summing to 64) gives (64·v + 512) >> 10. Column 1000 1000 1020 1020, window for k=1 repeats edges:
    #   row 2: s_v = 1000·71 − 1020·7 = 63860 → 15965 → (1021760 + 512) >> 10 = 998
    #   row 3: s_v = 1000·50 + 1020·14 = 64280 → 16070 → (1028480 + 512) >> 10 = 1004
    plane = np.array([[1000], [1000], [1020], [1020]], dtype=np.uint16)
    out = upsample_chroma_libbpg(plane, width=1, height=8, bit_depth=10)
    assert out.dtype == np.uint16
    assert out[2:4, 0].tolist() == [998, 1004]


def test_odd_size_and_coded_padding() -> None:
    # a 5x3 picture has 3x2 chroma samples; rows/columns past them (coded padding) must not leak in
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 256, size=(2, 3), dtype=np.uint8)
    padded = np.pad(plane, ((0, 2), (0, 1)), constant_values=255)
    out = upsample_chroma_libbpg(plane, width=5, height=3)
    assert out.shape == (3, 5)
    assert np.array_equal(out, upsample_chroma_libbpg(padded, width=5, height=3))


def test_a_flat_plane_stays_flat_and_bad_input_is_refused() -> None:
    flat = np.full((3, 4), 77, dtype=np.uint8)
    assert np.all(upsample_chroma_libbpg(flat, width=8, height=6) == 77)
    with pytest.raises(InputError, match="too small"):
        upsample_chroma_libbpg(flat, width=10, height=6)
    with pytest.raises(InputError, match="bit_depth"):
        upsample_chroma_libbpg(flat, width=8, height=6, bit_depth=7)
    y = np.full((6, 8), 128, dtype=np.uint8)
    with pytest.raises(InputError, match="chroma_filter"):
        planes_420_to_rgb(y, flat, flat, width=8, height=6, chroma_filter="nearest")  # type: ignore[arg-type]


def test_planes_to_rgb_uses_the_chosen_filter() -> None:
    y = np.full((2, 8), 128, dtype=np.uint8)
    cb = _row([100, 100, 164, 164])
    cr = np.full((1, 4), 128, dtype=np.uint8)
    libbpg = planes_420_to_rgb(y, cb, cr, width=8, height=2, chroma_filter="libbpg")
    bilinear = planes_420_to_rgb(y, cb, cr, width=8, height=2)
    # blue = Y + 1.772·(Cb − 128): the filters differ where the step rings (Cb 93 vs 100 at column 2)
    assert int(libbpg[0, 2, 2]) == round(128 + 1.772 * (93 - 128))  # 66
    assert int(bilinear[0, 2, 2]) == round(128 + 1.772 * (100 - 128))  # 78
