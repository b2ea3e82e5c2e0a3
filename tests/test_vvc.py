"""VVC adapter: exact sizes, a pinned QP read back from the bitstream, typed errors."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from conftest import photo_crop
from hypothesis import given
from hypothesis import strategies as st

import codec_adapters
from codec_adapters import vvc
from codec_adapters._yuv import planes_420_to_rgb, rgb_to_420
from sursmr import fidelity
from sursmr_core.errors import CorruptBitstreamError, InputError
from sursmr_core.toolrun import run_tool

_STATUS = vvc.VvcAdapter.availability()
needs_vvc = pytest.mark.skipif(not _STATUS.available, reason=f"vvc unavailable here: {_STATUS.reason}")

_TRACE_LINE = re.compile(r"\s(\w+(?:\[\d+\])*)\s+[01]+ = (-?\d+)\s*$")


def trace_headers(data: bytes) -> dict[str, int]:
    """Syntax elements of a VVC stream, as FFmpeg's ``trace_headers`` bitstream filter prints them."""
    args = [vvc._ffmpeg_exe(), "-hide_banner", "-f", "vvc", "-i", "-"]
    args += ["-c:v", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"]
    result = run_tool(args, timeout=60.0, stdin=data)
    fields: dict[str, int] = {}
    for line in result.stderr.decode("utf-8", "replace").splitlines():
        match = _TRACE_LINE.search(line)
        if match:
            fields[match.group(1)] = int(match.group(2))
    return fields


@pytest.fixture
def adapter() -> vvc.VvcAdapter:
    return vvc.VvcAdapter()


# --- pure helpers --------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_emulation_prevention_round_trips_and_hides_start_codes(rbsp: bytes) -> None:
    escaped = vvc.escape_rbsp(rbsp)
    assert vvc.unescape_rbsp(escaped) == rbsp
    assert re.search(rb"\x00\x00[\x00-\x02]", escaped) is None


def test_size_sei_is_found_after_insertion() -> None:
    stream = b"\x00\x00\x00\x01\x00\x79" + b"\x11" * 5 + b"\x00\x00\x01\x00\x41" + b"\x22" * 8  # SPS, IDR slice
    with_sei = vvc.insert_before_picture(stream, vvc.size_sei_nal(33, 17))
    kinds = [vvc.nal_type(with_sei[begin:end]) for _, begin, end in vvc.split_annexb(with_sei)]
    assert kinds == [15, 23, 8]
    assert vvc.read_size_sei(with_sei) == (33, 17)
    assert vvc.read_size_sei(stream) is None


def test_canvases_are_codable_and_roomy_fits_the_worst_case() -> None:
    assert vvc.tight_canvas(33, 17) == (40, 24)
    assert vvc.tight_canvas(96, 64) == (96, 64)
    width, height = vvc.roomy_canvas(33, 17)
    assert width % 8 == 0 and height % 8 == 0
    assert width * height >= 3 * 40 * 24 + 2048


def test_missing_libvvenc_makes_the_codec_unavailable_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vvc, "_ffmpeg_exe", lambda: "/nonexistent/ffmpeg")
    status = vvc._probe.__wrapped__()
    assert not status.available
    assert status.reason and "ffmpeg" in status.reason


# --- real encodes ----------------------------------------------------------------------


@pytest.mark.slow
@needs_vvc
@pytest.mark.parametrize(("height", "width"), [(64, 96), (17, 33), (18, 34), (1, 1)])
def test_round_trip_keeps_the_exact_size(adapter: vvc.VvcAdapter, height: int, width: int) -> None:
    rgb = photo_crop(height, width)
    data = adapter.encode(rgb, 27)
    decoded = adapter.decode(data)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert fidelity.psnr(rgb, decoded) > 25.0
    # the size SEI is only needed (and only written) when a side is odd
    assert (vvc.read_size_sei(data) is not None) == bool(width % 2 or height % 2)


@pytest.mark.slow
@needs_vvc
def test_odd_sizes_decode_to_the_even_conformance_window_without_our_sei(adapter: vvc.VvcAdapter) -> None:
    data = adapter.encode(photo_crop(17, 33), 32)
    sei_free = b"".join(
        b"\x00\x00\x00\x01" + data[begin:end]
        for _, begin, end in vvc.split_annexb(data)
        if vvc.nal_type(data[begin:end]) != 23
    )
    assert adapter.decode(sei_free).shape == (18, 34, 3)


@pytest.mark.slow
@needs_vvc
def test_qp_is_pinned_in_the_bitstream_and_colour_is_signalled(adapter: vvc.VvcAdapter) -> None:
    rgb = photo_crop(64, 96)
    for level in (0, 22, 37, 63):
        fields = trace_headers(adapter.encode(rgb, level))
        assert fields["pps_cu_qp_delta_enabled_flag"] == 0  # no CU-level QP changes possible
        delta = fields.get("sh_qp_delta", fields.get("ph_qp_delta", 0))
        assert 26 + fields["pps_init_qp_minus26"] + delta == level
        assert fields["vui_matrix_coeffs"] == 1 and fields["vui_full_range_flag"] == 0
        assert fields["vui_chroma_sample_loc_type_frame"] == 1


@pytest.mark.slow
@needs_vvc
def test_bytes_fall_and_psnr_falls_as_qp_rises(adapter: vvc.VvcAdapter) -> None:
    rgb = photo_crop(64, 96)
    sizes, psnrs = [], []
    for level in (12, 22, 32, 42, 52):
        data = adapter.encode(rgb, level)
        sizes.append(len(data))
        psnrs.append(fidelity.psnr(rgb, adapter.decode(data)))
    assert all(a > b for a, b in itertools.pairwise(sizes)), sizes
    assert all(a > b for a, b in itertools.pairwise(psnrs)), psnrs


@pytest.mark.slow
@needs_vvc
def test_pictures_too_big_for_ffmpegs_buffer_are_retried_on_a_roomy_canvas(adapter: vvc.VvcAdapter) -> None:
    # white noise at QP 0 codes to more than width × height bytes, ffmpeg's libvvenc output buffer
    noise = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    data = adapter.encode(noise, 0)
    assert len(data) > 24 * 40
    decoded = adapter.decode(data)
    assert decoded.shape == noise.shape
    # near-lossless: close to what the 4:2:0 conversion alone leaves of the noise
    planes = rgb_to_420(noise, bit_depth=10, full_range=vvc.FULL_RANGE, matrix=vvc.MATRIX, pad_to=8)
    converted = planes_420_to_rgb(
        planes.y,
        planes.cb,
        planes.cr,
        width=40,
        height=24,
        bit_depth=10,
        full_range=vvc.FULL_RANGE,
        matrix=vvc.MATRIX,
        chroma_filter=adapter.chroma_filter,  # upsampled as the decode does
    )
    assert fidelity.psnr(converted, decoded) > 40.0


@pytest.mark.slow
@needs_vvc
def test_eight_bit_streams_from_other_encoders_decode_too(adapter: vvc.VvcAdapter) -> None:
    rgb = photo_crop(64, 96)
    planes = rgb_to_420(rgb, bit_depth=10, full_range=vvc.FULL_RANGE, matrix=vvc.MATRIX, pad_to=8)
    args = [vvc._ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p10le"]
    args += ["-s", "96x64", "-i", "-", "-c:v", "libvvenc", "-qp", "22", "-qpa", "0"]
    args += ["-vvenc-params", "InternalBitDepth=8:OutputBitDepth=8", "-f", "vvc", "-"]
    data = run_tool(args, timeout=60.0, stdin=planes.tobytes()).stdout
    assert trace_headers(data)["sps_bitdepth_minus8"] == 0
    decoded = adapter.decode(data)
    assert decoded.shape == rgb.shape
    assert fidelity.psnr(rgb, decoded) > 35.0


@pytest.mark.slow
@needs_vvc
def test_presets_are_accepted_and_bad_options_refused(adapter: vvc.VvcAdapter) -> None:
    rgb = photo_crop(17, 33)
    assert adapter.decode(adapter.encode(rgb, 32, preset="medium", threads=0)).shape == rgb.shape
    with pytest.raises(InputError, match="preset"):
        adapter.encode(rgb, 32, preset="ultrafast")
    for threads in (-1, 1.5, True):
        with pytest.raises(InputError, match="threads"):
            adapter.encode(rgb, 32, threads=threads)
    with pytest.raises(InputError, match="unknown option"):
        adapter.encode(rgb, 32, crf=20)
    with pytest.raises(InputError, match="outside"):
        adapter.encode(rgb, 64)


@pytest.mark.slow
@needs_vvc
def test_corrupt_streams_raise_corrupt_bitstream_error(adapter: vvc.VvcAdapter) -> None:
    garbage = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    with pytest.raises(CorruptBitstreamError):
        adapter.decode(garbage)
    data = adapter.encode(photo_crop(64, 96), 32)
    for cut in (len(data) // 3, len(data) // 2, 40):
        with pytest.raises(CorruptBitstreamError):
            adapter.decode(data[:cut])
    with pytest.raises(CorruptBitstreamError):
        adapter.decode(b"\x00\x00\x01" + b"\x00" * 10)
    # a size SEI that disagrees with the coded picture
    lying = vvc.insert_before_picture(data, vvc.size_sei_nal(10, 10))
    with pytest.raises(CorruptBitstreamError, match="size SEI"):
        adapter.decode(lying)
    # our UUID with a malformed payload
    bad_sei = bytes([0, (23 << 3) | 1]) + vvc.escape_rbsp(bytes([5, 17]) + vvc.SIZE_SEI_UUID + b"\x01\x80")
    with pytest.raises(CorruptBitstreamError, match="SEI"):
        adapter.decode(vvc.insert_before_picture(data, bad_sei))
    with pytest.raises(InputError):
        adapter.decode(b"")


def test_registered_under_its_name() -> None:
    assert codec_adapters.get("vvc") is vvc.VvcAdapter
    assert vvc.VvcAdapter.levels.better == "lower"
    assert vvc.VvcAdapter.default_level in vvc.VvcAdapter.levels
