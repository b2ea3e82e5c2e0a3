"""The BPG still-picture container: writing, parsing and turning it back into a standard HEVC stream.

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

The bit I/O lives in :mod:`codec_adapters._bits`, the HEVC parameter sets
(the ``hevc_header`` and the VPS/SPS rebuilt from it) in
:mod:`codec_adapters._hevc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codec_adapters._bits import read_ue7, write_ue7
from codec_adapters._hevc import (
    NAL_MAX_VCL,
    NAL_PPS,
    NAL_SPS,
    NAL_VPS,
    HevcHeader,
    build_sps,
    build_vps,
    nal_header,
    parse_sps,
)
from codec_adapters._nal import split_annexb, unescape_rbsp
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
