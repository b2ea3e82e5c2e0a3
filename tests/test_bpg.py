"""BPG: our container against the spec, bpgenc's -q → slice QP mapping, and corrupt input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _hevc_qp import picture_qp
from PIL import Image

import codec_adapters
from codec_adapters import _bits, _hevc, _nal
from codec_adapters import _bpg_format as fmt
from codec_adapters.bpg import BpgAdapter, x265_params
from sursmr import fidelity
from sursmr_core.errors import CodecError, CorruptBitstreamError, InputError
from sursmr_core.toolrun import run_tool

_status = BpgAdapter.availability()
needs_bpg = pytest.mark.skipif(not _status.available, reason=f"bpg unavailable here: {_status.reason}")


@pytest.fixture(scope="module")
def adapter() -> BpgAdapter:
    if not _status.available:
        pytest.skip(f"bpg unavailable here: {_status.reason}")
    bpg = codec_adapters.create("bpg")
    assert isinstance(bpg, BpgAdapter)
    return bpg


# --- pure container pieces ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"), [(8, b"\x08"), (542, b"\x84\x1e"), (728855, b"\xac\xbe\x17"), (0, b"\x00")]
)
def test_ue7_matches_the_spec_examples(value: int, encoded: bytes) -> None:
    assert _bits.write_ue7(value) == encoded
    assert _bits.read_ue7(encoded + b"\xff", 0, "x") == (value, len(encoded))


def test_ue7_refuses_non_shortest_and_oversized_codes() -> None:
    with pytest.raises(CorruptBitstreamError, match="shortest"):
        _bits.read_ue7(b"\x80\x08", 0, "x")
    with pytest.raises(CorruptBitstreamError, match="32 bits"):
        _bits.read_ue7(b"\x9f\xff\xff\xff\x7f", 0, "x")
    with pytest.raises(CorruptBitstreamError, match="ends inside"):
        _bits.read_ue7(b"\x84", 0, "x")


def test_emulation_prevention_round_trips() -> None:
    rbsp = bytes([0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 7, 0, 0])
    escaped = _nal.escape_rbsp(rbsp)
    assert b"\x00\x00\x00" not in escaped and b"\x00\x00\x01" not in escaped
    assert _nal.unescape_rbsp(escaped) == rbsp


def test_hevc_header_round_trips_with_optional_parts() -> None:
    header = _hevc.HevcHeader(
        log2_min_cb_size=3,
        log2_diff_max_min_cb_size=3,
        log2_min_tb_size=2,
        log2_diff_max_min_tb_size=3,
        max_transform_hierarchy_depth_intra=1,
        sao_enabled=True,
        pcm=_hevc.PcmParams(7, 7, 0, 2, True),
        strong_intra_smoothing=True,
        extension_present=True,
        range_extension_flags=0b100000010,
    )
    data = header.to_bytes() + b"tail"
    parsed, end = _hevc.HevcHeader.parse(data, 0)
    assert parsed == header
    assert data[end:] == b"tail"
    assert header.coded_size(33, 17) == (40, 24)


# --- files the adapter writes ------------------------------------------------------------


@pytest.mark.slow
@needs_bpg
def test_header_fields_read_back(adapter: BpgAdapter, small_photo: np.ndarray) -> None:
    data = adapter.encode(small_photo, 28)
    assert data[:4] == b"BPG\xfb"
    bpg = fmt.read_bpg(data)
    assert (bpg.width, bpg.height) == (96, 64)
    assert bpg.pixel_format == fmt.FORMAT_420  # 4:2:0, JPEG chroma siting
    assert bpg.bit_depth == 8
    assert bpg.color_space == fmt.CS_YCBCR_BT601
    assert not bpg.limited_range  # full range
    assert not (bpg.alpha1 or bpg.alpha2 or bpg.animation or bpg.extensions)
    # picture_data_length covers hevc_header + hevc_data, up to the end of the file
    header_end = 6 + len(_bits.write_ue7(96) + _bits.write_ue7(64) + _bits.write_ue7(bpg.picture_data_length))
    assert bpg.picture_data_length == len(data) - header_end
    assert bpg.header.min_cb_size == 8
    # hevc_data starts with the PPS NAL unit, its start code dropped; no VPS/SPS inside
    assert _hevc.nal_header(bpg.hevc_data[:2]) == (_hevc.NAL_PPS, 0)
    kinds = [_hevc.nal_header(span.nal(data))[0] for span in _nal.split_annexb(data)]
    assert _hevc.NAL_VPS not in kinds and _hevc.NAL_SPS not in kinds


@pytest.mark.slow
@needs_bpg
@pytest.mark.parametrize("q", [20, 35, 2])
def test_slice_qp_follows_bpgenc_mapping(adapter: BpgAdapter, odd_photo: np.ndarray, q: int) -> None:
    qp = picture_qp(fmt.read_bpg(adapter.encode(odd_photo, q)))
    assert qp.slice_qp == max(0, q - 3)
    assert qp.slice_qp == qp.init_qp + qp.slice_qp_delta
    assert not qp.cu_qp_delta_enabled  # CQP: no adaptive quantisation moves CUs off the slice QP


@pytest.mark.slow
@needs_bpg
def test_odd_size_codes_padded_and_decodes_exact(adapter: BpgAdapter, odd_photo: np.ndarray) -> None:
    data = adapter.encode(odd_photo, 20)
    bpg = fmt.read_bpg(data)
    assert (bpg.width, bpg.height) == (33, 17)
    stream = fmt.to_annexb(bpg)
    spans = _nal.split_annexb(stream)
    assert [_hevc.nal_header(s.nal(stream))[0] for s in spans[:3]] == [_hevc.NAL_VPS, _hevc.NAL_SPS, _hevc.NAL_PPS]
    # the SPS we rebuild codes what the header implies and parses back to the same fields
    sps = _hevc.parse_sps(_nal.unescape_rbsp(spans[1].nal(stream)))
    assert (sps.coded_width, sps.coded_height) == (40, 24)
    assert sps.header == bpg.header
    decoded = adapter.decode(data)
    assert decoded.shape == odd_photo.shape
    assert fidelity.psnr(odd_photo, decoded) > 35.0


@pytest.mark.slow
@needs_bpg
def test_thread_count_does_not_change_the_bitstream(adapter: BpgAdapter, small_photo: np.ndarray) -> None:
    assert adapter.encode(small_photo, 30, threads=1) == adapter.encode(small_photo, 30, threads=0)


def test_x265_settings_match_bpgenc() -> None:
    params = dict(item.split("=") for item in x265_params(28, 1).split(":"))
    assert params["qp"] == "28" and params["keyint"] == "1"
    assert params["amp"] == params["rect"] == "1"
    assert params["info"] == params["hash"] == "0"
    assert BpgAdapter.options["preset"] == "veryslow"  # bpgenc -m 8
    assert BpgAdapter.default_level == 28


@needs_bpg
def test_bad_options_are_input_errors(adapter: BpgAdapter, small_photo: np.ndarray) -> None:
    with pytest.raises(InputError, match="preset"):
        adapter.encode(small_photo, 28, preset="warp")
    with pytest.raises(InputError, match="threads"):
        adapter.encode(small_photo, 28, threads=-1)


# --- corrupt and unsupported files -------------------------------------------------------


@pytest.fixture(scope="module")
def valid_file(adapter: BpgAdapter) -> bytes:
    rgb = np.ascontiguousarray(np.asarray(Image.linear_gradient("L").convert("RGB").resize((48, 32)), dtype=np.uint8))
    return adapter.encode(rgb, 30, preset="ultrafast")


def _with_header_bytes(valid: bytes, byte4: int, byte5: int) -> bytes:
    return valid[:4] + bytes([byte4, byte5]) + valid[6:]


@pytest.mark.slow
@needs_bpg
def test_corrupt_files_raise_corrupt_bitstream(adapter: BpgAdapter, valid_file: bytes) -> None:
    bpg = fmt.read_bpg(valid_file)
    header_len = len(valid_file) - len(bpg.hevc_data)
    rng = np.random.default_rng(1)
    garbage_hevc = rng.integers(0, 256, len(bpg.hevc_data), dtype=np.uint8).tobytes()
    cases = {
        "wrong magic": b"BPG\xfa" + valid_file[4:],
        "reserved pixel format": _with_header_bytes(valid_file, 0xC0, valid_file[5]),
        "reserved colour space": _with_header_bytes(valid_file, valid_file[4], 0x70),
        "garbage HEVC data": valid_file[:header_len] + garbage_hevc,
        "truncated picture data": valid_file[:-5],
        "zero width": valid_file[:6] + b"\x00" + valid_file[7:],
    }
    cases.update({f"truncated header ({n} bytes)": valid_file[:n] for n in range(1, header_len)})
    for what, data in cases.items():
        with pytest.raises(CorruptBitstreamError):
            adapter.decode(data)
            pytest.fail(f"{what} decoded")


@pytest.mark.slow
@needs_bpg
def test_alpha_files_are_refused_as_unsupported(adapter: BpgAdapter, valid_file: bytes) -> None:
    bpg = fmt.read_bpg(valid_file)
    header = bpg.header.to_bytes()
    picture = header + header + bpg.hevc_data  # alpha hevc_header, then the colour one
    data = (
        fmt.MAGIC
        + bytes([valid_file[4] | 0x10, valid_file[5]])
        + _bits.write_ue7(bpg.width)
        + _bits.write_ue7(bpg.height)
        + _bits.write_ue7(len(picture))
        + picture
    )
    assert fmt.read_bpg(data).alpha_header == bpg.header
    with pytest.raises(CodecError, match="alpha") as info:
        adapter.decode(data)
    assert not isinstance(info.value, CorruptBitstreamError)


@pytest.mark.slow
@needs_bpg
def test_zero_picture_data_length_means_to_the_end(adapter: BpgAdapter, valid_file: bytes) -> None:
    # bpgenc writes picture_data_length = 0; such files must read too
    bpg = fmt.read_bpg(valid_file)
    zero = (
        valid_file[:6]
        + _bits.write_ue7(bpg.width)
        + _bits.write_ue7(bpg.height)
        + b"\x00"
        + bpg.header.to_bytes()
        + bpg.hevc_data
    )
    assert np.array_equal(adapter.decode(zero), adapter.decode(valid_file))


# --- interoperability with the reference decoder, where one is installed ---------------------

_BPGDEC = shutil.which("bpgdec")


@pytest.mark.slow
@needs_bpg
@pytest.mark.skipif(_BPGDEC is None, reason="libbpg's bpgdec is not installed")
def test_reference_bpgdec_reads_our_files(adapter: BpgAdapter, odd_photo: np.ndarray, tmp_path: Path) -> None:
    assert _BPGDEC is not None
    data = adapter.encode(odd_photo, 25)
    (tmp_path / "in.bpg").write_bytes(data)
    run_tool([_BPGDEC, "-o", str(tmp_path / "out.png"), str(tmp_path / "in.bpg")], timeout=60.0)
    with Image.open(tmp_path / "out.png") as im:
        reference = np.asarray(im.convert("RGB"))
    assert reference.shape == odd_photo.shape
    # same HEVC decode and libbpg's chroma filter: only the float vs fixed-point colour conversion may round apart
    ours = adapter.decode(data)
    assert int(np.abs(reference.astype(np.int16) - ours.astype(np.int16)).max()) <= 1
    assert fidelity.psnr(reference, ours) > 60.0
