"""Image input policy shared by every sursmr entry point.

What we accept and what we do with it (documented in the README too):

* EXIF orientation is applied, so pixels are what a viewer shows.
* Greyscale, palette, CMYK, other colour modes, 16-bit and 32-bit integer
  images are converted to 8-bit RGB with an :class:`ImageConversionWarning`;
  alpha (and a PNG's tRNS colour key) is flattened onto white with a
  warning. With ``strict=True`` each of these is refused with
  :class:`UnsupportedImageError` instead.
* Floating-point images, images smaller than ``MIN_SIDE`` on a side and
  images over the pixel limit (``max_pixels``, else ``$SURSMR_MAX_PIXELS``,
  else 64 MP; Pillow's own bomb limit is raised to it) are refused with
  :class:`UnsupportedImageError` before their pixels are decoded.
* Missing, corrupt and truncated files (PNG chunks and checksums and JPEG
  data sizes are checked, which Pillow does not do), non-image files and
  special files (FIFOs, devices, sockets: refused before a byte is read)
  raise :class:`ImageLoadError` before any output is written.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import re
import stat
import struct
import warnings
import zlib
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from sursmr_core.errors import ImageLoadError, InputError, UnsupportedImageError

RGBImage = npt.NDArray[np.uint8]
"""An 8-bit RGB image as a C-contiguous ``uint8`` array of shape (H, W, 3)."""

MIN_SIDE = 16
DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "SURSMR_MAX_PIXELS"


class ImageConversionWarning(UserWarning):
    """An input image was converted to 8-bit RGB (mode, depth or alpha changed)."""


def parse_max_pixels(raw: str, *, source: str = MAX_PIXELS_ENV) -> int:
    """A pixel limit written by a person: ``64000000``, ``64_000_000`` or ``6.4e7``; must be a positive whole number."""
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or not number.is_integer():
            raise InputError(
                f"{source}={raw!r} is not a whole number of pixels; give e.g. {DEFAULT_MAX_PIXELS} (the default)"
            ) from None
        value = int(number)
    if value <= 0:
        raise InputError(f"{source}={raw!r} must be a positive number of pixels, e.g. {DEFAULT_MAX_PIXELS}")
    return value


def max_pixels_limit(override: int | None = None) -> int:
    """The pixel limit in force: ``override``, else ``$SURSMR_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override <= 0:
            raise InputError(f"max_pixels must be a positive number of pixels, got {override!r}")
        return override
    raw = os.environ.get(MAX_PIXELS_ENV)
    return DEFAULT_MAX_PIXELS if raw is None or not raw.strip() else parse_max_pixels(raw)


def describe_pixels(count: int) -> str:
    """A pixel count for people: ``12.0 MP`` from one megapixel up, ``4,096 pixels`` below."""
    return f"{count / 1e6:.1f} MP" if count >= 1_000_000 else f"{count:,} pixels"


def _over_limit(name: str, width: int, height: int, limit: int) -> UnsupportedImageError:
    return UnsupportedImageError(
        f"{name}: {width}x{height} is {describe_pixels(width * height)}, over the limit of {describe_pixels(limit)} "
        f"(set {MAX_PIXELS_ENV}=PIXELS to raise it if you trust the file)"
    )


def _bomb_refusal(name: str, exc: Exception, limit: int) -> UnsupportedImageError:
    """Pillow's own bomb check fired (images over twice its limit): say it in terms of ours."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" the image is {describe_pixels(int(found.group(1)))}," if found else ""
    return UnsupportedImageError(
        f"{name}:{size} over the limit of {describe_pixels(limit)} "
        f"(set {MAX_PIXELS_ENV}=PIXELS to raise it if you trust the file)"
    )


def _convert(im: Image.Image, source_bits: int, name: str, strict: bool) -> Image.Image:
    """Turn any Pillow mode into 8-bit RGB, warning (or refusing) on each change."""

    def note(what: str) -> None:
        if strict:
            raise UnsupportedImageError(f"{name}: {what}; convert it to 8-bit RGB first or drop --strict")
        warnings.warn(f"{name}: {what}; converted to 8-bit RGB", ImageConversionWarning, stacklevel=5)

    mode = im.mode
    if mode == "F":
        raise UnsupportedImageError(f"{name}: floating-point images are not supported; save it as 8-bit RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        note("32-bit integer greyscale image" if mode == "I" and source_bits != 16 else "16-bit greyscale image")
        arr = np.asarray(im).astype(np.float64)
        scale = 257.0 if arr.max(initial=0) <= 65535 else arr.max() / 255.0
        grey = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        del arr
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), "RGB")
    if source_bits > 8:
        note(f"{source_bits}-bit image reduced to 8 bits")
    # a colour key (tRNS in an RGB or greyscale PNG) is transparency too: flattened like an alpha channel
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "RGB", "L") and "transparency" in im.info)
    if has_alpha:
        keyed = mode in ("RGB", "L")
        rgba = im.convert("RGBA")
        alpha_low = int(np.asarray(rgba.getchannel("A")).min(initial=255))
        if keyed:
            note(
                "image has a transparent colour key (tRNS); its pixels flattened onto white"
                if alpha_low < 255
                else "image has a transparent colour key (tRNS) that no pixel uses; dropped"
            )
        elif alpha_low < 255:
            note("image has transparency; flattened onto white")
        else:
            note("image has an (opaque) alpha channel; dropped")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode != "RGB":
        kind = {"L": "greyscale", "1": "1-bit", "P": "palette", "CMYK": "CMYK"}.get(mode, f"{mode}-mode")
        note(f"{kind} image")
        return im.convert("RGB")
    return im


def _source_bits(im: Image.Image) -> int:
    """Bits per sample of the file, where Pillow silently reduces 16 to 8 bits (or keeps 32-bit integers)."""
    for tile in getattr(im, "tile", None) or []:
        rawmode = tile[3] if len(tile) > 3 else None
        if isinstance(rawmode, tuple):
            rawmode = rawmode[0] if rawmode else None
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
        if isinstance(rawmode, str) and ";32" in rawmode:
            return 32
    return 8


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _open_regular_file(name: str) -> BinaryIO:
    """Open ``name`` for reading only if it is a regular file (or a link to one); never blocks.

    FIFOs, devices (``/dev/zero``, ``/dev/urandom``), sockets and directories
    are refused before a byte is read: reading them could hang or never end.
    """
    try:
        # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageLoadError(f"{name}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageLoadError(f"{name}: symbolic link loop; it points back at itself") from None
        if exc.errno == errno.EISDIR:
            raise ImageLoadError(f"{name}: is a directory, not an image") from None
        raise ImageLoadError(f"{name}: cannot open ({exc.strerror or exc})") from None
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            what = _FILE_KINDS.get(kind, "not a regular file")
            if kind == stat.S_IFDIR:
                raise ImageLoadError(f"{name}: is a directory, not an image")
            raise ImageLoadError(f"{name}: is {what}, not an image file; only regular files are read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PALETTE = 3
_READ_PIECE = 1 << 20


def _check_png(handle: BinaryIO, name: str) -> None:
    """Walk every chunk: CRCs must match, IHDR first, PLTE before a palette image's data, IEND present.

    Pillow checks none of these when it decodes, so a PNG cut anywhere in its
    last chunks, or with damaged image data, would otherwise load.
    """

    def corrupt(why: str) -> ImageLoadError:
        return ImageLoadError(f"{name}: corrupt or truncated PNG ({why})")

    handle.seek(len(_PNG_SIGNATURE))
    colour_type: int | None = None
    has_palette = has_data = False
    while True:
        header = handle.read(8)
        if len(header) < 8:
            raise corrupt("the file ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", header)
        if length > 0x7FFFFFFF:
            raise corrupt(f"chunk length {length} is out of range")
        crc = zlib.crc32(kind)
        remaining = length
        first = b""
        while remaining:
            piece = handle.read(min(remaining, _READ_PIECE))
            if not piece:
                raise corrupt(f"the file ends inside its {kind.decode('ascii', 'replace')} chunk")
            if not first:
                first = piece
            crc = zlib.crc32(piece, crc)
            remaining -= len(piece)
        stored = handle.read(4)
        if len(stored) < 4:
            raise corrupt(f"the file ends inside its {kind.decode('ascii', 'replace')} chunk")
        if struct.unpack(">I", stored)[0] != crc:
            raise corrupt(f"checksum mismatch in its {kind.decode('ascii', 'replace')} chunk")
        if colour_type is None:
            if kind != b"IHDR" or length < 13:
                raise corrupt("it does not start with an IHDR chunk")
            colour_type = first[9]
        elif kind == b"PLTE":
            has_palette = True
        elif kind == b"IDAT":
            if colour_type == _PNG_PALETTE and not has_palette:
                raise corrupt("a palette image without its PLTE chunk")
            has_data = True
        elif kind == b"IEND":
            break
    if not has_data:
        raise corrupt("no image data (IDAT)")


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


def _check_jpeg(data: bytes, name: str) -> None:
    """The header's size must be backed by image data, and the end-of-image marker present.

    libjpeg only warns on a premature end and Pillow then fills the rest
    with grey: a 96x64 picture whose frame header claims 4000x4000 would
    become a 16 MP grey image. Huffman coding spends at least one bit per
    8x8 block, which bounds the size of a complete image's data from below.
    """

    def truncated(why: str) -> ImageLoadError:
        return ImageLoadError(f"{name}: corrupt or truncated JPEG ({why})")

    pos, end = 2, len(data)
    frame: tuple[int, int, list[tuple[int, int]], bool] | None = None
    coded = 0
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < end - 1 and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos < 0 or pos >= end - 1:
            raise truncated("no end-of-image marker; the file was cut short")
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE or marker == 0x00:
            pos += 2
            continue
        if pos + 4 > end:
            raise truncated("the file ends inside a marker")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) < length - 2:
            raise truncated("the file ends inside a marker segment")
        if marker in _JPEG_SOF and frame is None and len(body) >= 6:
            height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
            sampling = [(body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(count) if 8 + 3 * i < len(body)]
            frame = (width, height, sampling, marker in _JPEG_ARITHMETIC)
        pos += 2 + length
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not a stuffed byte or a restart
            start = scan = pos
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan >= end - 1:
                    scan = end
                    break
                follower = data[scan + 1]
                if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
                    scan += 2 if follower != 0xFF else 1
                    continue
                break
            coded += scan - start
            pos = scan
    if frame is None:
        return
    width, height, sampling, arithmetic = frame
    if arithmetic or not sampling or width == 0 or height == 0:
        return  # arithmetic coding can spend less than a bit per block; height 0 is defined later (DNL)
    h_max = max(1, max(h for h, _ in sampling))
    v_max = max(1, max(v for _, v in sampling))
    blocks = sum(
        math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8) for h, v in sampling
    )
    if coded * 8 < blocks:
        raise truncated(f"its header says {width}x{height}, but it holds only {coded} bytes of image data")


def _check_container(handle: BinaryIO, name: str) -> BinaryIO:
    """Structure checks Pillow skips, for PNG and JPEG; returns the stream to decode, at its start."""
    handle.seek(0)
    head = handle.read(len(_PNG_SIGNATURE))
    handle.seek(0)
    if head == _PNG_SIGNATURE:
        _check_png(handle, name)
        handle.seek(0)
    elif head[:3] == b"\xff\xd8\xff":
        data = handle.read()
        _check_jpeg(data, name)
        return io.BytesIO(data)
    return handle


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    strict: bool = False,
    max_pixels: int | None = None,
) -> RGBImage:
    """Load a file (or encoded bytes) as an 8-bit RGB array following the policy above."""
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    limit = max_pixels_limit(max_pixels)
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else _open_regular_file(name)
    # Pillow warns above its limit and refuses above twice it. Ours decides (checked below, from the header);
    # Pillow's is raised to ours when lower, for the whole process, so that neither this image nor a decoded
    # candidate of it ever trips Pillow's own check (it is never lowered: other callers keep theirs)
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as opened:
                width, height = opened.size
                if width * height > limit:
                    raise _over_limit(name, width, height, limit)
                checked = _check_container(stream, name)
                if checked is not stream:
                    opened.close()
                    opened_again = Image.open(checked)
                    array = _decode(opened_again, name, strict)
                else:
                    array = _decode(opened, name, strict)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_refusal(name, exc, limit) from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        if isinstance(exc, InputError):
            raise
        raise ImageLoadError(f"{name}: corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise ImageLoadError(f"{name}: not enough memory to decode it") from None
    finally:
        stream.close()
    check_rgb(array, name=name, min_side=MIN_SIDE)
    return array


def _decode(opened: Image.Image, name: str, strict: bool) -> RGBImage:
    """Pixels of an opened image as 8-bit RGB, oriented, with as few full-size copies alive as possible."""
    bits = _source_bits(opened)
    frames = int(getattr(opened, "n_frames", 1))
    if frames > 1:
        warnings.warn(f"{name}: has {frames} frames; using the first", ImageConversionWarning, stacklevel=3)
    opened.load()
    ImageOps.exif_transpose(opened, in_place=True)
    rgb = _convert(opened, bits, name, strict)
    array = pil_to_rgb(rgb)
    if rgb is not opened:
        rgb.close()
    return array


_ROWS_PER_COPY = 256


def pil_to_rgb(image: Image.Image) -> RGBImage:
    """An RGB Pillow image as a new C-contiguous uint8 (H, W, 3) array, copied a band of rows at a time.

    ``np.asarray(image)`` goes through ``tobytes()``, which holds the encoded
    pieces and their joined copy at once: three times the image at its peak
    (576 MB more for 64 MP) instead of the one copy made here.
    """
    if image.mode != "RGB":
        raise UnsupportedImageError(f"expected an RGB image, got mode {image.mode}")
    width, height = image.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, _ROWS_PER_COPY):
        bottom = min(height, top + _ROWS_PER_COPY)
        out[top:bottom] = np.asarray(image.crop((0, top, width, bottom)), dtype=np.uint8)
    return out


def check_rgb(image: object, *, name: str = "image", min_side: int = 1) -> RGBImage:
    """Validate an in-memory image: ``uint8`` (H, W, 3), both sides ≥ ``min_side``."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: expected a numpy uint8 array of shape (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise UnsupportedImageError(f"{name}: expected dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise UnsupportedImageError(f"{name}: expected shape (H, W, 3) RGB, got {image.shape}")
    height, width = image.shape[:2]
    if height < min_side or width < min_side:
        raise UnsupportedImageError(f"{name}: {width}x{height} is too small; each side must be at least {min_side} px")
    return image


def image_digest(image: RGBImage) -> str:
    """Content key of an image: BLAKE2b of its shape and pixels (hex)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def save_png(image: RGBImage, path: str | os.PathLike[str]) -> None:
    """Write an RGB array as PNG (used for decoded previews and tool inputs)."""
    Image.fromarray(check_rgb(image)).save(path, format="PNG")
