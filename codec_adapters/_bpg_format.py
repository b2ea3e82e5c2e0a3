"""The BPG still-picture container and the bits of HEVC syntax it needs.

Written from the public BPG specification (version 0.9.5, ``doc/bpg_spec.txt``
of libbpg) and ITU-T H.265; no libbpg code. Pure functions on bytes, no I/O.

A BPG file is::

    magic "BPG\\xfb" | 2 flag bytes | width, height, picture_data_length (ue7)
    | [extension_data_length (ue7) + (tag, length, bytes)*]
    | hevc_header  (the SPS fields a BPG decoder cannot assume)
    | hevc_data    (the HEVC NAL units after the SPS, first start code dropped)

:func:`write_bpg` turns an encoder's Annex-B stream (VPS, SPS, PPS, slices)
into a BPG file; :func:`read_bpg` parses one back and :func:`to_annexb`
rebuilds a standard Annex-B stream (our own VPS and SPS from the BPG header)
that any HEVC decoder accepts. Malformed input raises
:class:`~sursmr_core.errors.CorruptBitstreamError`; valid BPG features we do not
decode (alpha, animation) are reported by the adapter, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codec_adapters._nal import escape_rbsp, split_annexb, unescape_rbsp
from sursmr_core.errors import CodecError, CorruptBitstreamError

MAGIC = b"BPG\xfb"

# pixel_format values (spec 3.2)
FORMAT_GRAY = 0
FORMAT_420 = 1  # chroma at (0.5, 0.5): JPEG siting
FORMAT_422 = 2
FORMAT_444 = 3
FORMAT_420_VIDEO = 4  # chroma at (0, 0.5): MPEG-2 siting
FORMAT_422_VIDEO = 5
_CHROMA_FORMAT_IDC = {
    FORMAT_GRAY: 0,
    FORMAT_420: 1,
    FORMAT_422: 2,
    FORMAT_444: 3,
    FORMAT_420_VIDEO: 1,
    FORMAT_422_VIDEO: 2,
}

# color_space values (spec 3.2)
CS_YCBCR_BT601 = 0
CS_RGB = 1
CS_YCGCO = 2
CS_YCBCR_BT709 = 3
CS_YCBCR_BT2020 = 4

EXT_ANIMATION = 5  # the only extension tag with a defined inner syntax

# HEVC NAL unit types (H.265 Table 7-1)
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_MAX_IRAP = 23
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


# --- byte-level varints ---------------------------------------------------------------


def write_ue7(value: int) -> bytes:
    """BPG's ue7: big-endian 7-bit groups, all but the last byte with the top bit set."""
    if not 0 <= value < 1 << 32:
        raise ValueError(f"ue7 value {value} is outside 0..2^32-1")
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def read_ue7(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a ue7(32) at ``pos``; returns ``(value, next_pos)``. Non-shortest forms are refused (spec 2)."""
    value = 0
    for count in range(5):
        if pos >= len(data):
            raise CorruptBitstreamError(f"bpg: file ends inside {what}")
        byte = data[pos]
        pos += 1
        if count == 0 and byte == 0x80:
            raise CorruptBitstreamError(f"bpg: {what} is not in its shortest ue7 form")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value >= 1 << 32:
                break
            return value, pos
    raise CorruptBitstreamError(f"bpg: {what} does not fit in 32 bits")


# --- bit-level reading and writing -------------------------------------------------------


class BitReader:
    """MSB-first reader over an RBSP (emulation prevention already removed)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0  # in bits
        self.what = what

    @property
    def bits_left(self) -> int:
        return 8 * len(self.data) - self.pos

    def u(self, n: int) -> int:
        if n > self.bits_left:
            raise CorruptBitstreamError(f"bpg: {self.what} is truncated")
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        """Exp-Golomb ue(v), at most 32 bits of value."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptBitstreamError(f"bpg: bad Exp-Golomb code in {self.what}")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


class BitWriter:
    """MSB-first writer; :meth:`rbsp` / :meth:`aligned` close the bit string."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        if value < 0 or value >= 1 << n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def flag(self, value: bool) -> None:
        self.u(1, int(value))

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def _pack(self, bits: list[int]) -> bytes:
        out = bytearray()
        for i in range(0, len(bits), 8):
            chunk = bits[i : i + 8]
            chunk += [0] * (8 - len(chunk))
            out.append(int("".join(map(str, chunk)), 2))
        return bytes(out)

    def aligned(self) -> bytes:
        """The bits padded with zeros to a byte boundary (BPG's ``trailing_bits``)."""
        return self._pack(self.bits)

    def rbsp(self) -> bytes:
        """The bits closed with ``rbsp_trailing_bits`` (a one, then zeros to a byte boundary)."""
        return self._pack([*self.bits, 1])


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


# --- the container -------------------------------------------------------------------------


@dataclass(frozen=True)
class BpgFile:
    """A parsed BPG file (spec 3.1). ``hevc_data`` is as stored: its first NAL unit has no start code."""

    pixel_format: int
    alpha1: bool
    bit_depth: int
    color_space: int
    alpha2: bool
    limited_range: bool
    animation: bool
    width: int
    height: int
    picture_data_length: int  # as written; 0 means "to the end of the file"
    extensions: tuple[tuple[int, bytes], ...]
    alpha_header: HevcHeader | None
    header: HevcHeader
    hevc_data: bytes

    @property
    def chroma_format_idc(self) -> int:
        return _CHROMA_FORMAT_IDC[self.pixel_format]

    @property
    def has_alpha(self) -> bool:
        return self.alpha1 or self.alpha2


def write_bpg(
    annexb: bytes,
    width: int,
    height: int,
    *,
    pixel_format: int = FORMAT_420,
    color_space: int = CS_YCBCR_BT601,
    limited_range: bool = False,
    bit_depth: int = 8,
    extensions: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """Wrap an encoder's Annex-B stream (VPS, SPS, then PPS and slices) of one picture as a BPG file.

    ``width`` × ``height`` is the real picture size; the stream must code it
    padded to the SPS's minimum CB size, as BPG decoders assume. The VPS and
    SPS are replaced by the BPG ``hevc_header``; everything after the SPS is
    kept byte for byte. ``picture_data_length`` is written (not left 0) so
    truncated files are detected.
    """
    if pixel_format not in _CHROMA_FORMAT_IDC:
        raise ValueError(f"unknown BPG pixel_format {pixel_format}")
    spans = split_annexb(annexb)
    if len(spans) < 3:
        raise CodecError("bpg: the encoder's stream lacks a VPS, an SPS or picture data")
    first, second = spans[0].nal(annexb), spans[1].nal(annexb)
    if nal_header(first)[0] != NAL_VPS or nal_header(second)[0] != NAL_SPS:
        raise CodecError("bpg: the encoder's stream does not start with a VPS and an SPS")
    sps = parse_sps(unescape_rbsp(second))
    expected_size = sps.header.coded_size(width, height)
    if (sps.coded_width, sps.coded_height) != expected_size:
        raise CodecError(
            f"bpg: the encoder coded {sps.coded_width}x{sps.coded_height}, but BPG decoders expect"
            f" {expected_size[0]}x{expected_size[1]} for a {width}x{height} picture"
        )
    if sps.chroma_format_idc != _CHROMA_FORMAT_IDC[pixel_format]:
        raise CodecError(f"bpg: the encoder coded chroma_format_idc {sps.chroma_format_idc}, not {pixel_format}")
    if sps.bit_depth_luma != bit_depth or sps.bit_depth_chroma != bit_depth:
        raise CodecError(f"bpg: the encoder coded {sps.bit_depth_luma}-bit samples, not {bit_depth}-bit")
    hevc_data = annexb[spans[2].begin :]  # BPG drops the first start code
    extension_data = b"".join(write_ue7(tag) + write_ue7(len(payload)) + payload for tag, payload in extensions)
    picture_data = sps.header.to_bytes() + hevc_data
    out = bytearray(MAGIC)
    out.append((pixel_format << 5) | (bit_depth - 8))  # alpha1_flag = 0
    # color_space, extension_present_flag, alpha2_flag = 0, limited_range_flag, animation_flag = 0
    out.append((color_space << 4) | (int(bool(extension_data)) << 3) | (int(limited_range) << 1))
    out += write_ue7(width) + write_ue7(height) + write_ue7(len(picture_data))
    if extension_data:
        out += write_ue7(len(extension_data)) + extension_data
    out += picture_data
    return bytes(out)


def _parse_extensions(data: bytes) -> tuple[tuple[int, bytes], ...]:
    pos = 0
    tags = []
    while pos < len(data):
        tag, pos = read_ue7(data, pos, "an extension tag")
        length, pos = read_ue7(data, pos, "an extension length")
        if pos + length > len(data):
            raise CorruptBitstreamError(f"bpg: extension tag {tag} runs past the extension data")
        tags.append((tag, data[pos : pos + length]))
        pos += length
    return tuple(tags)


def read_bpg(data: bytes) -> BpgFile:
    """Parse a BPG file; raises :class:`CorruptBitstreamError` on anything malformed or truncated."""
    if len(data) < len(MAGIC) or data[:4] != MAGIC:
        raise CorruptBitstreamError("bpg: not a BPG file (wrong magic number)")
    if len(data) < 6:
        raise CorruptBitstreamError("bpg: file ends inside the header")
    pixel_format, alpha1, bit_depth = data[4] >> 5, bool(data[4] & 0x10), (data[4] & 0x0F) + 8
    color_space, extension_present = data[5] >> 4, bool(data[5] & 0x08)
    alpha2, limited_range, animation = bool(data[5] & 0x04), bool(data[5] & 0x02), bool(data[5] & 0x01)
    if pixel_format not in _CHROMA_FORMAT_IDC:
        raise CorruptBitstreamError(f"bpg: reserved pixel_format {pixel_format}")
    if bit_depth > 14:
        raise CorruptBitstreamError(f"bpg: bit depth {bit_depth} is over BPG's 14")
    if color_space > CS_YCBCR_BT2020 or (pixel_format == FORMAT_GRAY and color_space != 0):
        raise CorruptBitstreamError(f"bpg: color_space {color_space} is reserved or invalid for this pixel format")
    pos = 6
    width, pos = read_ue7(data, pos, "picture_width")
    height, pos = read_ue7(data, pos, "picture_height")
    if width == 0 or height == 0:
        raise CorruptBitstreamError(f"bpg: picture size {width}x{height} is empty")
    data_length, pos = read_ue7(data, pos, "picture_data_length")
    extensions: tuple[tuple[int, bytes], ...] = ()
    if extension_present:
        ext_length, pos = read_ue7(data, pos, "extension_data_length")
        if pos + ext_length > len(data):
            raise CorruptBitstreamError("bpg: file ends inside the extension data")
        extensions = _parse_extensions(data[pos : pos + ext_length])
        pos += ext_length
    if animation and not any(tag == EXT_ANIMATION for tag, _ in extensions):
        raise CorruptBitstreamError("bpg: animation flag set without an animation control extension")
    if data_length:
        if pos + data_length > len(data):
            raise CorruptBitstreamError(
                f"bpg: truncated file: {len(data) - pos} bytes of picture data, header says {data_length}"
            )
        picture = data[: pos + data_length]
    else:
        picture = data
    alpha_header = None
    if alpha1 or alpha2:
        alpha_header, pos = HevcHeader.parse(picture, pos)
    header, pos = HevcHeader.parse(picture, pos)
    hevc_data = picture[pos:]
    _check_hevc_data(hevc_data)
    return BpgFile(
        pixel_format=pixel_format,
        alpha1=alpha1,
        bit_depth=bit_depth,
        color_space=color_space,
        alpha2=alpha2,
        limited_range=limited_range,
        animation=animation,
        width=width,
        height=height,
        picture_data_length=data_length,
        extensions=extensions,
        alpha_header=alpha_header,
        header=header,
        hevc_data=hevc_data,
    )


def _check_hevc_data(hevc_data: bytes) -> None:
    """The picture data must be NAL units with a colour PPS and at least one colour slice, no VPS/SPS."""
    stream = b"\x00\x00\x00\x01" + hevc_data
    kinds = set()
    for span in split_annexb(stream):
        nal = span.nal(stream)
        if len(nal) < 2 or nal[0] & 0x80:
            raise CorruptBitstreamError("bpg: the HEVC data holds a malformed NAL unit")
        kind, layer = nal_header(nal)
        if kind in (NAL_VPS, NAL_SPS):
            raise CorruptBitstreamError("bpg: the HEVC data holds a VPS or SPS, which BPG leaves out")
        if layer == 0:
            kinds.add(kind)
    if NAL_PPS not in kinds or not any(kind <= NAL_MAX_VCL for kind in kinds):
        raise CorruptBitstreamError("bpg: the HEVC data lacks a picture parameter set or a slice")


def to_annexb(bpg: BpgFile) -> bytes:
    """A standard Annex-B HEVC stream of the colour picture(s): rebuilt VPS and SPS, then the stored NAL units.

    The SPS codes the padded size (:meth:`HevcHeader.coded_size`) with no
    conformance window: crop the decoded picture to ``bpg.width`` × ``bpg.height``.
    Alpha NAL units (``nuh_layer_id`` 1) are dropped.
    """
    coded_width, coded_height = bpg.header.coded_size(bpg.width, bpg.height)
    start = b"\x00\x00\x00\x01"
    parts = [
        start + build_vps(bpg.chroma_format_idc, bpg.bit_depth),
        start + build_sps(bpg.header, bpg.chroma_format_idc, bpg.bit_depth, coded_width, coded_height),
    ]
    stream = start + bpg.hevc_data
    for span in split_annexb(stream):
        nal = span.nal(stream)
        if nal_header(nal)[1] == 0:
            parts.append(start + nal)
    return b"".join(parts)


# --- reading the QP back ---------------------------------------------------------------------


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
