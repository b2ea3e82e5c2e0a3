"""VVC (H.266) intra stills: libvvenc in imageio-ffmpeg's ffmpeg, PyAV's native ``vvc`` decoder.

Level = the picture's luma QP, 0..63, lower is better. The QP is pinned: no
perceptual QP adaptation (``-qpa 0``), no block-importance mapping (``BIM=0``,
which otherwise switches on CU-level QP deltas), no intra QP offset, one intra
frame. The bitstream then carries ``pps_cu_qp_delta_enabled_flag = 0`` and a
slice QP equal to the level (``tests/test_vvc.py`` reads both back).

Colour: sRGB → Y'CbCr with the BT.709 matrix in limited ("TV") range, 10-bit
4:2:0 with centre-sited chroma (:mod:`codec_adapters._yuv`). BT.709 limited is
the convention of HD video and of VVC test material; it is written to the VUI (matrix 1, full-range flag 0, primaries 1,
transfer 13 = sRGB, chroma sample location 1 = centre). Our decoder always
uses this convention, whatever the VUI says, and upsamples chroma with
libbpg's 7-tap filter (``VvcAdapter.chroma_filter``). The bundled libvvenc
takes 10-bit 4:2:0 only, so there is no 4:4:4 VVC here.

Picture size: libvvenc codes multiples of 8 and VVC crops with a conformance
window in 2-sample steps, so we pad (edge replication) and signal the crop to
the even size with an explicit conformance window: any VVC decoder shows that
size. 4:2:0 cannot signal an odd width or height, so for odd sizes the stream
also carries a standard ``user_data_unregistered`` SEI (our UUID, the exact
size); decoders that do not know it ignore it and show one extra edge column
or row, ours crops to the exact size.

ffmpeg's libvvenc wrapper sizes its output buffer at width × height bytes, so
a picture that codes to more (tiny images, near-lossless QPs on noisy content)
fails; we then encode once more on a taller padded canvas, which costs a few
bytes of padding but always fits.
"""

from __future__ import annotations

import functools
import math
import struct
import uuid
from typing import Any, ClassVar

import numpy as np

from codec_adapters import register
from codec_adapters._ffmpeg import (
    check_encoder_options,
    decode_frames,
    ffmpeg_exe,
    probe,
    raw_picture_encode_args,
    yuv_planes,
)
from codec_adapters._nal import escape_rbsp, split_annexb, unescape_rbsp
from codec_adapters._yuv import ChromaFilter, Matrix, Planes420, planes_420_to_rgb, rgb_to_420
from codec_adapters.base import CodecAdapter
from sursmr_core.errors import CodecError, CorruptBitstreamError, ToolError, ToolTimeout
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability, LevelAxis

PRESETS = ("faster", "fast", "medium", "slow", "slower")
BIT_DEPTH = 10
MATRIX: Matrix = "bt709"
FULL_RANGE = False
# libvvenc codes picture sizes in multiples of the minimum CU size, 8 luma samples
_ALIGN = 8
# worst case measured: white noise at QP 0 codes to ~2.5 bytes per pixel
_ROOMY_BYTES_PER_PIXEL = 3
_ROOMY_SLACK_BYTES = 2048

# VVC NAL unit types (H.266 Table 5)
_NAL_MAX_VCL = 11
_NAL_PH = 19
_NAL_PREFIX_SEI = 23
_SEI_USER_DATA_UNREGISTERED = 5
SIZE_SEI_UUID = uuid.UUID("dfda07a1-7f33-42ee-8524-9f62d89b08ad").bytes
_SIZE_SEI_VERSION = 1
_SIZE_PAYLOAD = struct.Struct(">BII")  # version, width, height
# decoder output formats we convert (other encoders' 8-bit streams included), with their bit depth
_DECODED_FORMATS = {"yuv420p": 8, "yuv420p10le": 10}


# --- Annex-B / NAL helpers (pure) ------------------------------------------------


def nal_type(nal: bytes) -> int:
    """``nal_unit_type`` from a VVC NAL unit's two-byte header (-1 when too short)."""
    return (nal[1] >> 3) & 0x1F if len(nal) >= 2 else -1


def size_sei_nal(width: int, height: int) -> bytes:
    """A prefix SEI NAL unit (no start code) carrying the exact picture size."""
    payload = SIZE_SEI_UUID + _SIZE_PAYLOAD.pack(_SIZE_SEI_VERSION, width, height)
    rbsp = bytes([_SEI_USER_DATA_UNREGISTERED, len(payload)]) + payload + b"\x80"
    # forbidden_zero_bit, nuh_reserved_zero_bit, nuh_layer_id = 0; nuh_temporal_id_plus1 = 1
    header = bytes([0, (_NAL_PREFIX_SEI << 3) | 1])
    return header + escape_rbsp(rbsp)


def insert_before_picture(stream: bytes, nal: bytes) -> bytes:
    """Insert ``nal`` (with a 4-byte start code) before the picture header or first slice."""
    for prefix, begin, end in split_annexb(stream):
        kind = nal_type(stream[begin:end])
        if 0 <= kind <= _NAL_MAX_VCL or kind == _NAL_PH:
            return stream[:prefix] + b"\x00\x00\x00\x01" + nal + stream[prefix:]
    raise CodecError("vvc: the encoder produced no picture")


def _sei_messages(rbsp: bytes) -> list[tuple[int, bytes]]:
    """``(payload_type, payload)`` of each SEI message in an SEI RBSP (no NAL header)."""
    messages = []
    pos = 0

    def read_varlen() -> int:
        nonlocal pos
        value = 0
        while pos < len(rbsp) and rbsp[pos] == 0xFF:
            value += 255
            pos += 1
        if pos >= len(rbsp):
            raise CorruptBitstreamError("vvc: truncated SEI message header")
        value += rbsp[pos]
        pos += 1
        return value

    # more_rbsp_data(): stop at the rbsp_trailing_bits byte
    while pos < len(rbsp) and rbsp[pos:] != b"\x80":
        kind = read_varlen()
        size = read_varlen()
        if pos + size > len(rbsp):
            raise CorruptBitstreamError("vvc: SEI payload runs past its NAL unit")
        messages.append((kind, rbsp[pos : pos + size]))
        pos += size
    return messages


def read_size_sei(stream: bytes) -> tuple[int, int] | None:
    """The exact ``(width, height)`` from our size SEI, or ``None`` when the stream has none."""
    for _, begin, end in split_annexb(stream):
        nal = stream[begin:end]
        if nal_type(nal) != _NAL_PREFIX_SEI:
            continue
        for kind, payload in _sei_messages(unescape_rbsp(nal[2:])):
            if kind != _SEI_USER_DATA_UNREGISTERED or payload[:16] != SIZE_SEI_UUID:
                continue
            if len(payload) != 16 + _SIZE_PAYLOAD.size:
                raise CorruptBitstreamError("vvc: malformed picture-size SEI")
            version, width, height = _SIZE_PAYLOAD.unpack(payload[16:])
            if version != _SIZE_SEI_VERSION or width < 1 or height < 1:
                raise CorruptBitstreamError(f"vvc: unsupported picture-size SEI (version {version})")
            return width, height
    return None


# --- canvas geometry (pure) --------------------------------------------------------


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def tight_canvas(width: int, height: int) -> tuple[int, int]:
    """The smallest codable canvas (multiple of 8 each side) holding a ``width`` × ``height`` picture."""
    return _ceil_to(width, _ALIGN), _ceil_to(height, _ALIGN)


def roomy_canvas(width: int, height: int) -> tuple[int, int]:
    """A taller canvas whose area (= ffmpeg's output buffer in bytes) fits any coded picture."""
    canvas_w, canvas_h = tight_canvas(width, height)
    needed = _ROOMY_BYTES_PER_PIXEL * canvas_w * canvas_h + _ROOMY_SLACK_BYTES
    return canvas_w, _ceil_to(math.ceil(needed / canvas_w), _ALIGN)


def _pad_planes(planes: Planes420, canvas_w: int, canvas_h: int) -> bytes:
    """Planar little-endian ``yuv420p10le`` bytes of ``planes`` edge-padded to the canvas."""
    out = []
    for plane, (h, w) in (
        (planes.y, (canvas_h, canvas_w)),
        (planes.cb, (canvas_h // 2, canvas_w // 2)),
        (planes.cr, (canvas_h // 2, canvas_w // 2)),
    ):
        padded = np.pad(plane, ((0, h - plane.shape[0]), (0, w - plane.shape[1])), mode="edge")
        out.append(np.ascontiguousarray(padded, dtype="<u2").tobytes())
    return b"".join(out)


# --- availability -------------------------------------------------------------------


_ffmpeg_exe = ffmpeg_exe


@functools.cache
def _probe() -> Availability:
    return probe(
        _ffmpeg_exe,
        encoder="libvvenc",
        decoder="vvc",
        encoder_hint=" (needs imageio-ffmpeg >= 0.6)",
        decoder_hint=" (needs av >= 14)",
    )


# --- the adapter ----------------------------------------------------------------------


@register
class VvcAdapter(CodecAdapter):
    name = "vvc"
    extension = "266"
    levels = LevelAxis(0, 63, "lower")
    # vvenc's and ffmpeg's default QP and the middle of the JVET all-intra test QPs (22/27/32/37);
    # VVC-JND's levels are QP 13..51
    default_level = 32
    choice_rank = 1  # second to BPG on the validation split (benchmarks/results/codec_auto_val/codec_auto.md)
    description = "VVC/H.266 intra (libvvenc via imageio-ffmpeg), QP pinned, 10-bit 4:2:0 BT.709 limited range"
    # preset: vvenc speed/efficiency trade-off; threads: vvenc worker threads per encode
    # (1 because encode_levels already runs one encode per core; 0 = vvenc's default)
    options: ClassVar[dict[str, Any]] = {"preset": "faster", "threads": 1}
    threads_option = "threads"  # same bitstream for any thread count (tests/test_codecs.py checks it)
    # how decode upsamples the 4:2:0 chroma (VVC leaves it to the player): libbpg's 7-tap filter, as our BPG
    # decode and bpgdec do; bilinear upsampling capped saturated-colour crops at SUR proxy 0.63-0.82 even at
    # QP 0, the 7-tap filter lifts the same bitstreams to 0.89-0.996 (benchmarks/chroma_ceiling.py, first
    # run at b1354d7)
    chroma_filter: ClassVar[ChromaFilter] = "libbpg"

    @classmethod
    def settings(cls) -> dict[str, Any]:
        return {**super().settings(), "chroma_filter": cls.chroma_filter}

    @classmethod
    def availability(cls) -> Availability:
        return _probe()

    def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes:
        preset, threads = check_encoder_options("vvc", "vvenc", options, tuple(PRESETS))
        height, width = rgb.shape[:2]
        planes = rgb_to_420(rgb, bit_depth=BIT_DEPTH, full_range=FULL_RANGE, matrix=MATRIX, pad_to=_ALIGN)
        try:
            stream = self._run_vvenc(planes, tight_canvas(width, height), level, preset, threads)
        except ToolTimeout:
            raise
        except ToolError:
            # most likely ffmpeg's width×height-byte output buffer overflowed: retry on a bigger canvas
            stream = self._run_vvenc(planes, roomy_canvas(width, height), level, preset, threads)
        if width % 2 or height % 2:
            stream = insert_before_picture(stream, size_sei_nal(width, height))
        return stream

    def _run_vvenc(self, planes: Planes420, canvas: tuple[int, int], level: int, preset: str, threads: int) -> bytes:
        canvas_w, canvas_h = canvas
        even_w, even_h = _ceil_to(planes.width, 2), _ceil_to(planes.height, 2)
        vvenc_params = ":".join(
            [
                "IntraQPOffset=0",  # the I picture gets exactly the asked QP
                "BIM=0",  # block-importance mapping would enable CU-level QP deltas
                "MCTF=0",  # temporal filter: nothing to filter in one picture, saves ~0.1 s
                "ConformanceWindowMode=3",
                f"ConfWinRight={canvas_w - even_w}",
                f"ConfWinBottom={canvas_h - even_h}",
                # VUI colour description; ffmpeg's own -colorspace/-color_range flags would make
                # it insert a scaler that alters the samples (measured: QP 0 fell from 62 to 51 dB)
                "ColourPrimaries=1",  # BT.709 / sRGB primaries
                "TransferCharacteristics=13",  # sRGB
                "MatrixCoefficients=1",  # BT.709
                "VideoFullRange=0",
                "ChromaLocInfoPresent=1",
                "ChromaSampleLocType=1",  # centre-sited chroma, as _yuv subsamples
            ]
        )
        args = [
            *raw_picture_encode_args(
                _ffmpeg_exe(), pix_fmt="yuv420p10le", width=canvas_w, height=canvas_h, encoder="libvvenc"
            ),
            "-preset", preset,
            "-qp", str(level),
            "-qpa", "0",
            "-g", "1",
            "-threads", str(threads),
            "-vvenc-params", vvenc_params,
            "-f", "vvc",
            "-",
        ]  # fmt: skip
        stream = self.run(args, stdin=_pad_planes(planes, canvas_w, canvas_h)).stdout
        if not stream:
            raise ToolError("ffmpeg/libvvenc wrote no bitstream")
        return stream

    def _decode(self, data: bytes) -> RGBImage:
        exact = read_size_sei(data)
        frames = decode_frames("vvc", data, failure="vvc: not a decodable VVC bitstream")
        if len(frames) != 1:
            found = "no picture" if not frames else f"{len(frames)} pictures"
            raise CorruptBitstreamError(f"vvc: expected one still picture, found {found}")
        frame = frames[0]
        bit_depth = _DECODED_FORMATS.get(frame.format.name)
        if bit_depth is None:
            raise CodecError(f"vvc: pictures in {frame.format.name} are not supported; only 8/10-bit 4:2:0")
        y, cb, cr = yuv_planes(frame, bit_depth)
        width, height = frame.width, frame.height
        if exact is not None:
            if not (0 <= width - exact[0] <= 1 and 0 <= height - exact[1] <= 1):
                raise CorruptBitstreamError(
                    f"vvc: picture-size SEI says {exact[0]}x{exact[1]} but the picture is {width}x{height}"
                )
            width, height = exact
        return planes_420_to_rgb(
            y,
            cb,
            cr,
            width=width,
            height=height,
            bit_depth=bit_depth,
            full_range=FULL_RANGE,
            matrix=MATRIX,
            chroma_filter=self.chroma_filter,
        )
