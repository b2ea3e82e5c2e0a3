"""BPG: an HEVC intra picture (x265) in our own BPG container, decoded by FFmpeg's HEVC decoder.

Level = bpgenc's ``-q``: 0..51, lower is better. As in bpgenc, ``q`` is
handed to x265 as its constant QP (CQP rate control); x265 codes an I slice
at ``q`` minus its default I/P offset (``ipratio`` 1.4, 6·log2(1.4) ≈ 2.9,
rounded to 3), so the slice QP is ``max(0, q - 3)``. Adaptive quantisation is
off in CQP mode, so every CU keeps that QP (``tests/test_bpg.py`` reads both
back from the bitstream). The default level 28 is bpgenc's default up to
version 0.9.5; bpgenc 0.9.6 and later default to 29.

Everything else follows bpgenc (facts read from libbpg 0.9.8's ``bpgenc.c``
and ``x265_glue.c``): 8-bit 4:2:0 with JPEG (centre) chroma siting, BT.601
full-range Y'CbCr (BPG ``color_space`` 0, ``limited_range_flag`` 0), one
intra frame (``keyint=1``), x265's ``tune=ssim``, ``amp``/``rect`` on, no
info or picture-hash SEI. bpgenc's ``-m`` compression level indexes x265's
preset list directly: ``-m 1..9`` = superfast, veryfast, faster, fast, medium,
slow, slower, veryslow, placebo; its default ``-m 8`` is ``veryslow``, our
default ``preset``. x265's version differs from the one libbpg bundled, so
bytes differ from bpgenc's at the same settings.

Colour conversion is ours (:mod:`codec_adapters._yuv`); ffmpeg gets raw
``yuv420p`` and must not convert, so no ffmpeg colour flags are passed (they
would insert a scaler). The range and matrix are signalled where BPG
signals them: in the BPG header, which replaces the HEVC SPS and its VUI.

Picture size: the picture is edge-padded to a multiple of 8 (x265's minimum
CU), which is the coded size a BPG decoder derives from the real
width/height in the BPG header; decoders crop to the real size, so odd
sizes round-trip exactly.

Decoding: :mod:`codec_adapters._bpg_format` parses the container and
rebuilds a standard Annex-B stream (VPS, SPS, then the stored PPS and
slices), which PyAV's ``hevc`` decoder decodes in-process. We decode 4:2:0
Y'CbCr with JPEG chroma siting (BT.601 or BT.709, full or limited range,
8..12 bit, as FFmpeg's decoder allows) without alpha, upsampling chroma with
libbpg's 7-tap filter (:func:`codec_adapters._yuv.upsample_chroma_libbpg`) as
``bpgdec`` does; of an animation only
the first frame (what the spec asks of decoders without animation support).
Other BPG files raise :class:`~sursmr_core.errors.CodecError`; malformed ones
:class:`~sursmr_core.errors.CorruptBitstreamError`. Our files carry a real
``picture_data_length`` (bpgenc writes 0, "to the end of the file"), so a
truncated file of ours is always detected; a truncated bpgenc file is only
detected when FFmpeg's decoder notices the damage.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from codec_adapters import _bpg_format as fmt
from codec_adapters import register
from codec_adapters._ffmpeg import (
    check_encoder_options,
    decode_frames,
    ffmpeg_exe,
    probe,
    raw_picture_encode_args,
    yuv_planes,
)
from codec_adapters._yuv import Matrix, planes_420_to_rgb, rgb_to_420
from codec_adapters.base import CodecAdapter
from sursmr_core.errors import CodecError, CorruptBitstreamError, ToolError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability, LevelAxis

# x265's presets, fastest first; bpgenc's -m N is PRESETS[N] (N = 1..9)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
DEFAULT_PRESET = PRESETS[8]  # bpgenc's default compression level -m 8
BIT_DEPTH = 8
MATRIX: Matrix = "bt601"
FULL_RANGE = True
# x265's minimum CU size: pictures are padded to it, and a BPG decoder derives the coded size from it
_ALIGN = 8
_MATRICES: dict[int, Matrix] = {fmt.CS_YCBCR_BT601: "bt601", fmt.CS_YCBCR_BT709: "bt709"}


_ffmpeg_exe = ffmpeg_exe


@functools.cache
def _probe() -> Availability:
    return probe(_ffmpeg_exe, encoder="libx265", decoder="hevc", encoder_hint="", decoder_hint="")


def x265_params(level: int, threads: int) -> str:
    """The ``-x265-params`` string of one bpgenc-like encode at ``-q level``."""
    params = [
        f"qp={level}",  # CQP, as bpgenc: the I slice gets max(0, level - 3) through x265's ipratio
        "keyint=1",  # one intra picture
        "amp=1",  # bpgenc forces both; a BPG decoder's rebuilt SPS assumes amp_enabled_flag = 1
        "rect=1",
        "repeat-headers=1",  # VPS/SPS/PPS in the stream, as bpgenc asks
        "info=0",  # no x265 version SEI (bpgenc: bEmitInfoSEI = 0)
        "hash=0",  # no decoded-picture-hash SEI (bpgenc's default)
        "log-level=error",
    ]
    if threads:
        # pools=N keeps wavefront parallel processing (as bpgenc's default); the bitstream does not depend on N
        params += [f"pools={threads}", "frame-threads=1"]
    return ":".join(params)


@register
class BpgAdapter(CodecAdapter):
    name = "bpg"
    extension = "bpg"
    levels = LevelAxis(0, 51, "lower")
    default_level = 28
    # searched first by --codec auto: fewest bytes as the codec searched in full on the validation split at the
    # default targets and at SUR >= 0.9, and verify from it the closest to the oracle there
    # (benchmarks/results/codec_auto_val/codec_auto.md)
    choice_rank = 0
    description = "BPG (HEVC intra by x265 via imageio-ffmpeg, our BPG container), bpgenc -q, 4:2:0 BT.601 full range"
    # preset: x265 preset (bpgenc -m 8 = veryslow); threads: x265 pool threads per encode
    # (1 because encode_levels already runs one encode per core; 0 = x265's default)
    options: ClassVar[dict[str, Any]] = {"preset": DEFAULT_PRESET, "threads": 1}
    threads_option = "threads"  # same bitstream for any thread count (tests/test_codecs.py checks it)

    @classmethod
    def availability(cls) -> Availability:
        return _probe()

    def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes:
        preset, threads = check_encoder_options("bpg", "x265", options, tuple(PRESETS))
        height, width = rgb.shape[:2]
        planes = rgb_to_420(rgb, bit_depth=BIT_DEPTH, full_range=FULL_RANGE, matrix=MATRIX, pad_to=_ALIGN)
        coded_h, coded_w = planes.y.shape
        head = raw_picture_encode_args(
            _ffmpeg_exe(), pix_fmt="yuv420p", width=coded_w, height=coded_h, encoder="libx265"
        )
        args = [
            *head,
            "-preset", preset,
            "-tune", "ssim",  # bpgenc's x265 tune
            "-x265-params", x265_params(level, threads),
            "-f", "hevc",
            "-",
        ]  # fmt: skip
        stream = self.run(args, stdin=planes.tobytes()).stdout
        if not stream:
            raise ToolError("ffmpeg/libx265 wrote no bitstream")
        return fmt.write_bpg(
            stream,
            width,
            height,
            pixel_format=fmt.FORMAT_420,
            color_space=fmt.CS_YCBCR_BT601,
            limited_range=not FULL_RANGE,
            bit_depth=BIT_DEPTH,
        )

    def _decode(self, data: bytes) -> RGBImage:
        bpg = fmt.read_bpg(data)
        matrix = _check_decodable(bpg)
        # err_detect makes damaged slices an error instead of a concealed picture
        frames = decode_frames(
            "hevc",
            fmt.to_annexb(bpg),
            failure="bpg: the HEVC data does not decode",
            options={"err_detect": "crccheck+bitstream+buffer+explode"},
        )
        if not frames:
            raise CorruptBitstreamError("bpg: the HEVC data holds no picture")
        frame = frames[0]  # an animation's first frame is its still picture (spec 3.2)
        coded_w, coded_h = bpg.header.coded_size(bpg.width, bpg.height)
        if (frame.width, frame.height) != (coded_w, coded_h):
            raise CorruptBitstreamError(f"bpg: decoded {frame.width}x{frame.height}, expected {coded_w}x{coded_h}")
        if not frame.format.name.startswith("yuv420p"):
            raise CodecError(f"bpg: the HEVC decoder returned {frame.format.name}, not 4:2:0 planes")
        y, cb, cr = yuv_planes(frame, bpg.bit_depth)
        return planes_420_to_rgb(
            y,
            cb,
            cr,
            width=bpg.width,
            height=bpg.height,
            bit_depth=bpg.bit_depth,
            full_range=not bpg.limited_range,
            matrix=matrix,
            chroma_filter="libbpg",  # bpgdec's 7-tap chroma filter, so our decode is libbpg's
        )


def _check_decodable(bpg: fmt.BpgFile) -> Matrix:
    """The colour matrix to decode ``bpg`` with; :class:`CodecError` for valid BPG features we do not decode."""
    if bpg.pixel_format not in (fmt.FORMAT_420, fmt.FORMAT_420_VIDEO):
        raise CodecError(f"bpg: only 4:2:0 pictures are decoded, this file has pixel_format {bpg.pixel_format}")
    if bpg.pixel_format == fmt.FORMAT_420_VIDEO:
        # MPEG-2 siting would need another upsampling filter than _yuv's centre-sited one
        raise CodecError("bpg: 4:2:0 with MPEG-2 chroma siting is not decoded; only JPEG siting")
    if bpg.has_alpha:
        raise CodecError("bpg: pictures with alpha (or CMYK) are not decoded")
    matrix = _MATRICES.get(bpg.color_space)
    if matrix is None:
        raise CodecError(f"bpg: colour space {bpg.color_space} is not decoded; only Y'CbCr BT.601/BT.709")
    return matrix
