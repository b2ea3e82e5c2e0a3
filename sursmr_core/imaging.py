"""Image input policy shared by every sursmr entry point.

What we accept and what we do with it (documented in the README too):

* EXIF orientation is applied, so pixels are what a viewer shows.
* Greyscale, palette, CMYK, other colour modes and 16-bit images are
  converted to 8-bit RGB with an :class:`ImageConversionWarning`; alpha is
  flattened onto white with a warning. With ``strict=True`` each of these is
  refused with :class:`UnsupportedImageError` instead.
* Floating-point images, images smaller than ``MIN_SIDE`` on a side and
  images over ``max_pixels`` are refused with :class:`UnsupportedImageError`.
* Missing, corrupt, truncated and non-image files, and decompression bombs,
  raise :class:`ImageLoadError` before any output is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

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


def _max_pixels(override: int | None) -> int:
    if override is not None:
        return override
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{MAX_PIXELS_ENV}={raw!r} is not an integer number of pixels") from None


def _convert(im: Image.Image, source_bits: int, name: str, strict: bool) -> Image.Image:
    """Turn any Pillow mode into 8-bit RGB, warning (or refusing) on each change."""

    def note(what: str) -> None:
        if strict:
            raise UnsupportedImageError(f"{name}: {what}; convert it to 8-bit RGB first or drop --strict")
        warnings.warn(f"{name}: {what}; converted to 8-bit RGB", ImageConversionWarning, stacklevel=4)

    mode = im.mode
    if mode == "F":
        raise UnsupportedImageError(f"{name}: floating-point images are not supported; save it as 8-bit RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        note("16-bit greyscale image")
        arr = np.asarray(im).astype(np.float64)
        scale = 257.0 if arr.max(initial=0) <= 65535 else arr.max() / 255.0
        grey = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), "RGB")
    if source_bits > 8:
        note(f"{source_bits}-bit image reduced to 8 bits")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        alpha_low = int(np.asarray(rgba)[:, :, 3].min(initial=255))
        if alpha_low < 255:
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
    """Bits per sample of the file, where Pillow silently reduces 16 to 8 bits."""
    for tile in getattr(im, "tile", None) or []:
        rawmode = tile[3] if len(tile) > 3 else None
        if isinstance(rawmode, tuple):
            rawmode = rawmode[0] if rawmode else None
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
    return 8


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    strict: bool = False,
    max_pixels: int | None = None,
) -> RGBImage:
    """Load a file (or encoded bytes) as an 8-bit RGB array following the policy above."""
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    limit = _max_pixels(max_pixels)
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise ImageLoadError(f"{name}: no such file")
        if path.is_dir():
            raise ImageLoadError(f"{name}: is a directory, not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else name) as opened:
                width, height = opened.size
                if width * height > limit:
                    raise UnsupportedImageError(
                        f"{name}: {width}x{height} is {width * height / 1e6:.1f} MP, over the "
                        f"{limit / 1e6:.1f} MP limit (raise it with {MAX_PIXELS_ENV} if you trust the file)"
                    )
                bits = _source_bits(opened)
                frames = int(getattr(opened, "n_frames", 1))
                if frames > 1:
                    warnings.warn(f"{name}: has {frames} frames; using the first", ImageConversionWarning, stacklevel=2)
                opened.load()
                oriented = ImageOps.exif_transpose(opened)
                rgb = _convert(oriented, bits, name, strict)
                array = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{name}: refused as a possible decompression bomb ({exc})") from None
        except UnidentifiedImageError:
            raise ImageLoadError(f"{name}: not an image file Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise ImageLoadError(f"{name}: corrupt or truncated image ({exc})") from None
    check_rgb(array, name=name, min_side=MIN_SIDE)
    return array


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
