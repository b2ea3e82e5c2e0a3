"""The static ffmpeg of imageio-ffmpeg and PyAV's decoders: locating them, checking what they can do, decoding.

BPG (HEVC) and VVC both encode through ffmpeg and decode in-process with
PyAV; the probe, the option check and the decode loop live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import CorruptBitstreamError, InputError, ToolError
from sursmr_core.levels import Availability
from sursmr_core.toolrun import run_tool


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (ImportError/RuntimeError when absent)."""
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def probe(
    locate: Callable[[], str], *, encoder: str, decoder: str, encoder_hint: str, decoder_hint: str
) -> Availability:
    """Whether ``locate()``'s ffmpeg has ``encoder`` and PyAV has ``decoder``, and if not, why."""
    try:
        exe = locate()
    except ImportError:
        return Availability(False, "the Python package imageio-ffmpeg is not installed (pip install imageio-ffmpeg)")
    except RuntimeError as exc:
        return Availability(False, f"imageio-ffmpeg has no ffmpeg binary: {exc}")
    try:
        listing = run_tool([exe, "-hide_banner", "-encoders"], timeout=60.0).stdout.decode("utf-8", "replace")
    except ToolError as exc:
        return Availability(False, f"cannot run imageio-ffmpeg's ffmpeg: {exc}")
    if not any(line.split()[1:2] == [encoder] for line in listing.splitlines()):
        return Availability(False, f"{exe} was built without the {encoder} encoder{encoder_hint}")
    try:
        import av

        av.codec.Codec(decoder, "r")
    except ImportError:
        return Availability(False, "the Python package av (PyAV) is not installed (pip install av)")
    except ValueError:
        return Availability(False, f"this PyAV build has no {decoder} decoder{decoder_hint}")
    return Availability(True)


def check_encoder_options(
    codec: str, encoder: str, options: dict[str, object], presets: tuple[str, ...]
) -> tuple[str, int]:
    """Validate the ``preset`` and ``threads`` options every ffmpeg-driven adapter takes; returns them."""
    preset, threads = options["preset"], options["threads"]
    if preset not in presets:
        raise InputError(f"{codec}: preset must be one of {', '.join(presets)}, got {preset!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 64:
        raise InputError(f"{codec}: threads must be an integer 0..64 (0 = {encoder}'s default), got {threads!r}")
    return str(preset), threads


def raw_picture_encode_args(exe: str, *, pix_fmt: str, width: int, height: int, encoder: str) -> list[str]:
    """ffmpeg's arguments up to the encoder choice for one raw planar ``pix_fmt`` picture read from stdin.

    The adapter appends its encoder settings and the output format. No
    colour flags: they would make ffmpeg insert a scaler that alters samples.
    """
    return [
        exe,
        "-hide_banner",
        "-loglevel", "error",
        "-f", "rawvideo",
        "-pix_fmt", pix_fmt,
        "-s", f"{width}x{height}",
        "-i", "-",
        "-frames:v", "1",
        "-c:v", encoder,
    ]  # fmt: skip


def decode_frames(
    decoder: Literal["hevc", "vvc"], stream: bytes, *, failure: str, options: Mapping[str, str] | None = None
) -> list[Any]:
    """Every picture PyAV's ``decoder`` gets from an Annex-B ``stream``, the decoder flushed.

    ``options`` go to the decoder (e.g. ``err_detect``). A stream the decoder
    rejects raises :class:`CorruptBitstreamError` with ``failure`` and the
    decoder's reason.
    """
    import av

    try:
        context = av.CodecContext.create(decoder, "r")
        if options:
            context.options = dict(options)
        frames = []
        for packet in context.parse(stream) + context.parse(None):
            frames.extend(context.decode(packet))
        frames.extend(context.decode(None))
    except (av.error.FFmpegError, ValueError) as exc:
        raise CorruptBitstreamError(f"{failure} ({exc})") from None
    return frames


def yuv_planes(frame: Any, bit_depth: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """The Y, Cb and Cr planes of a decoded planar frame, each (height, width) samples, row padding dropped.

    Samples are uint8 for 8-bit pictures, little-endian uint16 above.
    """
    dtype = np.dtype("<u2") if bit_depth > 8 else np.dtype(np.uint8)

    def plane_array(plane: Any) -> npt.NDArray[Any]:
        rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        return rows[:, : plane.width]

    y, cb, cr = (plane_array(plane) for plane in frame.planes[:3])
    return y, cb, cr
