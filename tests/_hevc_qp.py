"""Test helper: read the luma QP of a BPG picture's first slice back from its HEVC data (H.265 7.3.2.3, 7.3.6).

Only the tests need this (to check the level → QP mapping is in the
bitstream), so it lives with them, not in the codec package.
"""

from __future__ import annotations

from dataclasses import dataclass

from codec_adapters._bits import BitReader
from codec_adapters._bpg_format import BpgFile
from codec_adapters._hevc import NAL_IDR_N_LP, NAL_IDR_W_RADL, NAL_MAX_VCL, NAL_PPS, nal_header
from codec_adapters._nal import split_annexb, unescape_rbsp
from sursmr_core.errors import CodecError, CorruptBitstreamError


@dataclass(frozen=True)
class PictureQp:
    """The QP of a picture's first slice, and whether the PPS lets CUs change it."""

    slice_qp: int
    init_qp: int
    slice_qp_delta: int
    cu_qp_delta_enabled: bool


@dataclass(frozen=True)
class _Pps:
    dependent_slice_segments: bool
    output_flag_present: bool
    num_extra_slice_header_bits: int
    init_qp: int
    cu_qp_delta_enabled: bool


def _parse_pps(rbsp: bytes) -> _Pps:
    bits = BitReader(rbsp, "PPS")
    bits.u(16)
    bits.ue()  # pps_pic_parameter_set_id
    bits.ue()  # pps_seq_parameter_set_id
    dependent = bits.flag()
    output_flag = bits.flag()
    extra_bits = bits.u(3)
    bits.u(2)  # sign_data_hiding_enabled_flag, cabac_init_present_flag
    bits.ue()  # num_ref_idx_l0_default_active_minus1
    bits.ue()  # num_ref_idx_l1_default_active_minus1
    init_qp = 26 + bits.se()
    bits.u(2)  # constrained_intra_pred_flag, transform_skip_enabled_flag
    cu_qp_delta = bits.flag()
    return _Pps(dependent, output_flag, extra_bits, init_qp, cu_qp_delta)


def picture_qp(bpg: BpgFile) -> PictureQp:
    """Read the luma QP of the first colour slice (PPS ``init_qp`` + ``slice_qp_delta``).

    Only intra (IDR) first slices are parsed, which is what a BPG still holds.
    """
    stream = b"\x00\x00\x00\x01" + bpg.hevc_data
    pps: _Pps | None = None
    for span in split_annexb(stream):
        nal = span.nal(stream)
        kind, layer = nal_header(nal)
        if layer != 0:
            continue
        if kind == NAL_PPS:
            pps = _parse_pps(unescape_rbsp(nal))
        elif kind <= NAL_MAX_VCL:
            if pps is None:
                raise CorruptBitstreamError("bpg: a slice comes before its picture parameter set")
            if kind not in (NAL_IDR_W_RADL, NAL_IDR_N_LP):
                raise CodecError(f"bpg: reading the QP of NAL type {kind} slices is not supported (only IDR)")
            delta = _slice_qp_delta(unescape_rbsp(nal), pps, bpg)
            return PictureQp(pps.init_qp + delta, pps.init_qp, delta, pps.cu_qp_delta_enabled)
    raise CorruptBitstreamError("bpg: no colour slice found")


def _slice_qp_delta(rbsp: bytes, pps: _Pps, bpg: BpgFile) -> int:
    bits = BitReader(rbsp, "slice header")
    bits.u(16)
    first_slice = bits.flag()
    bits.u(1)  # no_output_of_prior_pics_flag (IRAP)
    bits.ue()  # slice_pic_parameter_set_id
    dependent = False
    if not first_slice:
        if pps.dependent_slice_segments:
            dependent = bits.flag()
        ctb = bpg.header.ctb_size
        ctbs = -(-bpg.width // ctb) * -(-bpg.height // ctb)
        bits.u((ctbs - 1).bit_length())  # slice_segment_address: Ceil(Log2(PicSizeInCtbsY)) bits
    if dependent:
        raise CodecError("bpg: the first colour slice is a dependent slice segment; its QP is inherited")
    bits.u(pps.num_extra_slice_header_bits)
    slice_type = bits.ue()
    if slice_type != 2:
        raise CorruptBitstreamError(f"bpg: an IDR slice has slice_type {slice_type}, not I")
    if pps.output_flag_present:
        bits.u(1)  # pic_output_flag
    if bpg.header.sao_enabled:
        bits.u(1)  # slice_sao_luma_flag
        if bpg.chroma_format_idc != 0:
            bits.u(1)  # slice_sao_chroma_flag
    return bits.se()
