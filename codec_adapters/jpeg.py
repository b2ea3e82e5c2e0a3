"""JPEG through Pillow (libjpeg-turbo): quality 1..100, higher is better."""

from __future__ import annotations

import io
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

from codec_adapters import register
from codec_adapters.base import CodecAdapter
from sursmr_core.errors import CorruptBitstreamError, InputError
from sursmr_core.imaging import RGBImage, pil_to_rgb
from sursmr_core.levels import LevelAxis

# Pillow's subsampling codes
_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


@register
class JpegAdapter(CodecAdapter):
    name = "jpeg"
    extension = "jpg"
    levels = LevelAxis(1, 100, "higher")
    default_level = 85
    choice_rank = 2  # the largest bitstreams of the three (benchmarks/results/codec_auto.md)
    fast = True
    description = "JPEG (Pillow/libjpeg-turbo), baseline, Huffman-optimised"
    # 4:2:0 is libjpeg's default and what MCL-JCI / KonJND-1k used
    options: ClassVar[dict[str, Any]] = {"subsampling": "4:2:0", "optimize": True, "progressive": False}

    def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes:
        subsampling = options["subsampling"]
        if subsampling not in _SUBSAMPLING:
            raise InputError(f"jpeg: subsampling must be one of {', '.join(_SUBSAMPLING)}, got {subsampling!r}")
        buffer = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(
            buffer,
            format="JPEG",
            quality=level,
            subsampling=_SUBSAMPLING[subsampling],
            optimize=bool(options["optimize"]),
            progressive=bool(options["progressive"]),
        )
        return buffer.getvalue()

    def _decode(self, data: bytes) -> RGBImage:
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
                im.load()
                # no convert() copy when already RGB, and a row-banded copy out (see pil_to_rgb): large images
                return pil_to_rgb(im if im.mode == "RGB" else im.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise CorruptBitstreamError(f"jpeg: not a decodable JPEG bitstream ({exc})") from None
