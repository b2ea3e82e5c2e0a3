"""The HEVC parameter sets BPG stands in for (ITU-T H.265), written from the standard; no libbpg code.

BPG's ``hevc_header`` (:class:`HevcHeader`) keeps only the SPS fields a BPG
decoder cannot assume (BPG spec 3.1-3.2). This module reads an encoder's SPS
into that header (:func:`parse_sps`, which also checks BPG's fixed
assumptions) and rebuilds the VPS and SPS a standard HEVC decoder needs from
it (:func:`build_vps`, :func:`build_sps`). Pure functions on bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from codec_adapters._bits import BitReader, BitWriter, read_ue7, write_ue7
from codec_adapters._nal import escape_rbsp
from sursmr_core.errors import CodecError, CorruptBitstreamError

# HEVC NAL unit types (H.265 Table 7-1)
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_MAX_VCL = 31

# BPG's fixed SPS assumptions (spec 3.2) that an encoder's SPS must meet
_LOG2_MAX_POC_LSB = 8
# sps_range_extension bits BPG forbids: explicit_rdpcm, extended_precision,
# high_precision_offsets, cabac_bypass_alignment (9 flags, first flag is bit 8)
_FORBIDDEN_RANGE_EXT = (1 << 5) | (1 << 4) | (1 << 2) | (1 << 0)
# the general level of the VPS/SPS we rebuild: BPG streams conform to level 8.5 (level_idc = 30 × 8.5)
_LEVEL_IDC = 255


# --- NAL units ---------------------------------------------------------------------------


def nal_header(nal: bytes) -> tuple[int, int]:
    """``(nal_unit_type, nuh_layer_id)`` of an HEVC NAL unit."""
    if len(nal) < 2:
        raise CorruptBitstreamError("bpg: NAL unit shorter than its header")
    return (nal[0] >> 1) & 0x3F, ((nal[0] & 1) << 5) | (nal[1] >> 3)


def _nal(nal_type: int, rbsp: bytes) -> bytes:
    # forbidden_zero_bit 0, nuh_layer_id 0, nuh_temporal_id_plus1 1
    return bytes([nal_type << 1, 1]) + escape_rbsp(rbsp)


# --- the BPG hevc_header and the SPS it stands for ------------------------------------------


@dataclass(frozen=True)
class PcmParams:
    """PCM fields of the SPS (present when ``pcm_enabled_flag``)."""

    bit_depth_luma_minus1: int
    bit_depth_chroma_minus1: int
    log2_min_size_minus3: int
    log2_diff_max_min_size: int
    loop_filter_disabled: bool


@dataclass(frozen=True)
class HevcHeader:
    """BPG's ``hevc_header``: the SPS fields a BPG decoder cannot assume (spec 3.1).

    ``range_extension_flags`` holds the nine ``sps_range_extension`` flags
    (first flag in bit 8) when ``sps_range_extension_flag`` is set, else ``None``.
    """

    log2_min_cb_size: int
    log2_diff_max_min_cb_size: int
    log2_min_tb_size: int
    log2_diff_max_min_tb_size: int
    max_transform_hierarchy_depth_intra: int
    sao_enabled: bool
    pcm: PcmParams | None
    strong_intra_smoothing: bool
    extension_present: bool
    range_extension_flags: int | None

    @property
    def min_cb_size(self) -> int:
        return 1 << self.log2_min_cb_size

    @property
    def ctb_size(self) -> int:
        return 1 << (self.log2_min_cb_size + self.log2_diff_max_min_cb_size)

    def coded_size(self, width: int, height: int) -> tuple[int, int]:
        """The coded picture size BPG implies: each side rounded up to the minimum CB size."""
        cb = self.min_cb_size
        return -(-width // cb) * cb, -(-height // cb) * cb

    def to_bytes(self) -> bytes:
        """``hevc_header_length`` (ue7) followed by the header bits, zero-padded to a byte."""
        bits = BitWriter()
        bits.ue(self.log2_min_cb_size - 3)
        bits.ue(self.log2_diff_max_min_cb_size)
        bits.ue(self.log2_min_tb_size - 2)
        bits.ue(self.log2_diff_max_min_tb_size)
        bits.ue(self.max_transform_hierarchy_depth_intra)
        bits.flag(self.sao_enabled)
        self._write_pcm(bits)
        bits.flag(self.strong_intra_smoothing)
        bits.flag(self.extension_present)
        if self.extension_present:
            bits.flag(self.range_extension_flags is not None)
            bits.u(7, 0)
            if self.range_extension_flags is not None:
                bits.u(9, self.range_extension_flags)
        body = bits.aligned()
        return write_ue7(len(body)) + body

    def _write_pcm(self, bits: BitWriter) -> None:
        bits.flag(self.pcm is not None)
        if self.pcm is not None:
            bits.u(4, self.pcm.bit_depth_luma_minus1)
            bits.u(4, self.pcm.bit_depth_chroma_minus1)
            bits.ue(self.pcm.log2_min_size_minus3)
            bits.ue(self.pcm.log2_diff_max_min_size)
            bits.flag(self.pcm.loop_filter_disabled)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> tuple[HevcHeader, int]:
        """Parse an ``hevc_header`` at ``pos``; returns it and the position after it."""
        length, pos = read_ue7(data, pos, "hevc_header_length")
        if pos + length > len(data):
            raise CorruptBitstreamError("bpg: file ends inside the HEVC header")
        bits = BitReader(data[pos : pos + length], "HEVC header")
        log2_min_cb = bits.ue() + 3
        diff_cb = bits.ue()
        log2_min_tb = bits.ue() + 2
        diff_tb = bits.ue()
        depth_intra = bits.ue()
        sao = bits.flag()
        pcm = _read_pcm(bits)
        strong = bits.flag()
        ext_present = bits.flag()
        range_flags = None
        if ext_present:
            range_present = bits.flag()
            if bits.u(7):
                raise CorruptBitstreamError("bpg: sps_extension_7bits must be 0")
            if range_present:
                range_flags = bits.u(9)
        if bits.bits_left >= 8 or bits.u(bits.bits_left):
            raise CorruptBitstreamError("bpg: HEVC header has stray bits after its fields")
        header = cls(
            log2_min_cb, diff_cb, log2_min_tb, diff_tb, depth_intra, sao, pcm, strong, ext_present, range_flags
        )
        header.validate()
        return header, pos + length

    def validate(self) -> None:
        """Refuse sizes outside what HEVC allows (CB 8..64, TB 4..32, TB < CB)."""
        max_cb = self.log2_min_cb_size + self.log2_diff_max_min_cb_size
        max_tb = self.log2_min_tb_size + self.log2_diff_max_min_tb_size
        if not (3 <= self.log2_min_cb_size <= max_cb <= 6 and 2 <= self.log2_min_tb_size <= max_tb <= min(5, max_cb)):
            raise CorruptBitstreamError("bpg: HEVC header has impossible coding/transform block sizes")
        if self.log2_min_tb_size >= self.log2_min_cb_size:
            raise CorruptBitstreamError("bpg: HEVC header has transform blocks as large as coding blocks")
        if self.max_transform_hierarchy_depth_intra > max_cb - self.log2_min_tb_size:
            raise CorruptBitstreamError("bpg: HEVC header has an impossible transform hierarchy depth")
        if self.range_extension_flags is not None and self.range_extension_flags & _FORBIDDEN_RANGE_EXT:
            raise CorruptBitstreamError("bpg: HEVC header enables range extensions BPG forbids")


def _read_pcm(bits: BitReader) -> PcmParams | None:
    if not bits.flag():
        return None
    return PcmParams(bits.u(4), bits.u(4), bits.ue(), bits.ue(), bits.flag())


@dataclass(frozen=True)
class SpsInfo:
    """What BPG needs from an encoder's SPS: the picture geometry and the :class:`HevcHeader` fields."""

    chroma_format_idc: int
    coded_width: int
    coded_height: int
    bit_depth_luma: int
    bit_depth_chroma: int
    header: HevcHeader


def _skip_profile_tier_level(bits: BitReader) -> None:
    # general_profile_space .. general_level_idc: 2+1+5+32+4+43+1+8 = 96 bits, no sub-layers
    bits.u(32)
    bits.u(32)
    bits.u(32)


def _skip_hrd_free_vui(bits: BitReader) -> None:
    """Walk the VUI (E.2.1) to reach the SPS extension flags; HRD parameters are refused."""
    # aspect_ratio_info_present_flag, then aspect_ratio_idc == EXTENDED_SAR
    if bits.flag() and bits.u(8) == 255:
        bits.u(32)
    if bits.flag():  # overscan_info_present_flag
        bits.u(1)
    if bits.flag():  # video_signal_type_present_flag
        bits.u(4)  # video_format, video_full_range_flag
        if bits.flag():  # colour_description_present_flag
            bits.u(24)
    if bits.flag():  # chroma_loc_info_present_flag
        bits.ue()
        bits.ue()
    bits.u(3)  # neutral_chroma_indication, field_seq, frame_field_info_present
    if bits.flag():  # default_display_window_flag
        for _ in range(4):
            bits.ue()
    if bits.flag():  # vui_timing_info_present_flag
        bits.u(32)
        bits.u(32)
        if bits.flag():  # vui_poc_proportional_to_timing_flag
            bits.ue()
        if bits.flag():  # vui_hrd_parameters_present_flag
            raise CodecError("bpg: the encoder wrote HRD parameters, which this parser does not read")
    if bits.flag():  # bitstream_restriction_flag
        bits.u(3)
        for _ in range(5):
            bits.ue()


def parse_sps(rbsp: bytes) -> SpsInfo:
    """Parse an SPS RBSP (NAL header included) and check BPG's fixed assumptions (spec 3.2).

    Raises :class:`CodecError` when the SPS uses something a BPG decoder
    would not rebuild (another SPS id, sub-layers, scaling lists, reference
    picture sets, a POC LSB length other than 8 bits...).
    """
    bits = BitReader(rbsp, "SPS")
    bits.u(16)  # NAL unit header

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise CodecError(f"bpg: the encoder's SPS breaks a BPG assumption: {what}")

    need(bits.u(4) == 0, "sps_video_parameter_set_id = 0")
    need(bits.u(3) == 0, "one temporal sub-layer")
    bits.u(1)  # sps_temporal_id_nesting_flag
    _skip_profile_tier_level(bits)
    need(bits.ue() == 0, "sps_seq_parameter_set_id = 0")
    chroma_format_idc = bits.ue()
    if chroma_format_idc == 3:
        need(not bits.flag(), "separate_colour_plane_flag = 0")
    coded_width, coded_height = bits.ue(), bits.ue()
    if bits.flag():  # conformance_window_flag: BPG crops with its own width/height instead
        for _ in range(4):
            bits.ue()
    bit_depth_luma, bit_depth_chroma = bits.ue() + 8, bits.ue() + 8
    need(bits.ue() + 4 == _LOG2_MAX_POC_LSB, "log2_max_pic_order_cnt_lsb = 8")
    sub_layer_ordering_info = bits.flag()
    del sub_layer_ordering_info  # with one sub-layer there is one set either way
    bits.ue()  # sps_max_dec_pic_buffering_minus1
    bits.ue()  # sps_max_num_reorder_pics
    bits.ue()  # sps_max_latency_increase_plus1
    log2_min_cb = bits.ue() + 3
    diff_cb = bits.ue()
    log2_min_tb = bits.ue() + 2
    diff_tb = bits.ue()
    depth_inter = bits.ue()
    depth_intra = bits.ue()
    need(depth_inter == depth_intra, "max_transform_hierarchy_depth_inter = _intra")
    need(not bits.flag(), "scaling_list_enabled_flag = 0")
    need(bits.flag(), "amp_enabled_flag = 1")
    sao = bits.flag()
    pcm = _read_pcm(bits)
    need(bits.ue() == 0, "num_short_term_ref_pic_sets = 0")
    need(not bits.flag(), "long_term_ref_pics_present_flag = 0")
    need(bits.flag(), "sps_temporal_mvp_enabled_flag = 1")
    strong = bits.flag()
    if bits.flag():  # vui_parameters_present_flag
        _skip_hrd_free_vui(bits)
    ext_present = bits.flag()
    range_flags = None
    if ext_present:
        range_present = bits.flag()
        need(bits.u(7) == 0, "no SPS extensions other than the range extension")
        if range_present:
            range_flags = bits.u(9)
            need(not range_flags & _FORBIDDEN_RANGE_EXT, "no range-extension tools that BPG forbids")
    header = HevcHeader(
        log2_min_cb, diff_cb, log2_min_tb, diff_tb, depth_intra, sao, pcm, strong, ext_present, range_flags
    )
    return SpsInfo(chroma_format_idc, coded_width, coded_height, bit_depth_luma, bit_depth_chroma, header)


# --- rebuilding the VPS and SPS a standard decoder needs -------------------------------------


def _profile_tier_level(bits: BitWriter, chroma_format_idc: int, bit_depth: int) -> None:
    if chroma_format_idc == 1 and bit_depth == 8:
        profile, compatible = 1, {1, 2}  # Main (a Main stream is also Main 10)
    elif chroma_format_idc == 1 and bit_depth <= 10:
        profile, compatible = 2, {2}  # Main 10
    else:
        profile, compatible = 4, {4}  # format range extensions
    bits.u(2, 0)  # general_profile_space
    bits.u(1, 0)  # general_tier_flag
    bits.u(5, profile)
    for j in range(32):
        bits.flag(j in compatible)
    bits.u(4, 0b1001)  # progressive_source, interlaced_source, non_packed, frame_only
    bits.u(43, 0)  # general constraint / reserved bits
    bits.u(1, 0)  # general_inbld_flag
    bits.u(8, _LEVEL_IDC)


def build_vps(chroma_format_idc: int, bit_depth: int) -> bytes:
    """A VPS NAL unit (no start code) for one layer and one sub-layer, id 0."""
    bits = BitWriter()
    bits.u(4, 0)  # vps_video_parameter_set_id
    bits.u(2, 3)  # vps_base_layer_internal_flag, vps_base_layer_available_flag
    bits.u(6, 0)  # vps_max_layers_minus1
    bits.u(3, 0)  # vps_max_sub_layers_minus1
    bits.u(1, 1)  # vps_temporal_id_nesting_flag
    bits.u(16, 0xFFFF)
    _profile_tier_level(bits, chroma_format_idc, bit_depth)
    bits.u(1, 1)  # vps_sub_layer_ordering_info_present_flag
    bits.ue(1)  # vps_max_dec_pic_buffering_minus1: the current and one previous picture (BPG animations)
    bits.ue(0)  # vps_max_num_reorder_pics
    bits.ue(0)  # vps_max_latency_increase_plus1
    bits.u(6, 0)  # vps_max_layer_id
    bits.ue(0)  # vps_num_layer_sets_minus1
    bits.u(1, 0)  # vps_timing_info_present_flag
    bits.u(1, 0)  # vps_extension_flag
    return _nal(NAL_VPS, bits.rbsp())


def build_sps(header: HevcHeader, chroma_format_idc: int, bit_depth: int, coded_width: int, coded_height: int) -> bytes:
    """The SPS NAL unit (no start code) a BPG decoder rebuilds from its header (spec 3.2 assumptions)."""
    bits = BitWriter()
    bits.u(4, 0)  # sps_video_parameter_set_id
    bits.u(3, 0)  # sps_max_sub_layers_minus1
    bits.u(1, 1)  # sps_temporal_id_nesting_flag
    _profile_tier_level(bits, chroma_format_idc, bit_depth)
    bits.ue(0)  # sps_seq_parameter_set_id
    bits.ue(chroma_format_idc)
    if chroma_format_idc == 3:
        bits.flag(False)  # separate_colour_plane_flag
    bits.ue(coded_width)
    bits.ue(coded_height)
    bits.flag(False)  # conformance_window_flag: the caller crops to the BPG picture size
    bits.ue(bit_depth - 8)
    bits.ue(bit_depth - 8)
    bits.ue(_LOG2_MAX_POC_LSB - 4)
    bits.flag(True)  # sps_sub_layer_ordering_info_present_flag
    bits.ue(1)  # sps_max_dec_pic_buffering_minus1
    bits.ue(0)  # sps_max_num_reorder_pics
    bits.ue(0)  # sps_max_latency_increase_plus1
    bits.ue(header.log2_min_cb_size - 3)
    bits.ue(header.log2_diff_max_min_cb_size)
    bits.ue(header.log2_min_tb_size - 2)
    bits.ue(header.log2_diff_max_min_tb_size)
    bits.ue(header.max_transform_hierarchy_depth_intra)  # _inter: BPG assumes it equals _intra
    bits.ue(header.max_transform_hierarchy_depth_intra)
    bits.flag(False)  # scaling_list_enabled_flag
    bits.flag(True)  # amp_enabled_flag
    bits.flag(header.sao_enabled)
    header._write_pcm(bits)
    bits.ue(0)  # num_short_term_ref_pic_sets
    bits.flag(False)  # long_term_ref_pics_present_flag
    bits.flag(True)  # sps_temporal_mvp_enabled_flag
    bits.flag(header.strong_intra_smoothing)
    bits.flag(False)  # vui_parameters_present_flag: colour handling comes from the BPG header
    bits.flag(header.extension_present)
    if header.extension_present:
        bits.flag(header.range_extension_flags is not None)
        bits.u(7, 0)
        if header.range_extension_flags is not None:
            bits.u(9, header.range_extension_flags)
    return _nal(NAL_SPS, bits.rbsp())
