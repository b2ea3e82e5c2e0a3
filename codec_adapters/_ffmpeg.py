"""The static ffmpeg of imageio-ffmpeg and PyAV's decoders: locating them and checking what they can do."""

from __future__ import annotations

from collections.abc import Callable

from sursmr_core.errors import InputError, ToolError
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
