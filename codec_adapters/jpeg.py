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
AUTO = "auto"


@register
class JpegAdapter(CodecAdapter):
    name = "jpeg"
    extension = "jpg"
    levels = LevelAxis(1, 100, "higher")
    default_level = 85
    choice_rank = 2  # the largest bitstreams of the three (benchmarks/results/codec_auto.md)
    fast = True
    # subsampling "auto": 4:2:0 (libjpeg's default, what MCL-JCI / KonJND-1k used) below this quality and
    # 4:4:4 from it on. At 4:2:0 even quality 100 leaves saturated-colour photos far from "nobody notices"
    # (SUR proxy 0.51-0.83 on five v2 crops) while 4:4:4 at 90 reaches 1.000 on all of them with 51-61 % of
    # those bytes (benchmarks/chroma_ceiling.py, first run at b1354d7), so the top of the axis keeps full chroma
    full_chroma_from: ClassVar[int] = 90
    description = (
        "JPEG (Pillow/libjpeg-turbo), baseline, Huffman-optimised, "
        f"4:2:0 below quality {full_chroma_from}, 4:4:4 from {full_chroma_from}"
    )
    options: ClassVar[dict[str, Any]] = {"subsampling": AUTO, "optimize": True, "progressive": False}

    @classmethod
    def settings(cls) -> dict[str, Any]:
        return {**super().settings(), "full_chroma_from": cls.full_chroma_from}

    @classmethod
    def subsampling_at(cls, level: int, subsampling: str = AUTO) -> str:
        """The chroma subsampling an encode at ``level`` uses under the ``subsampling`` option."""
        if subsampling == AUTO:
            return "4:4:4" if level >= cls.full_chroma_from else "4:2:0"
        if subsampling not in _SUBSAMPLING:
            choices = ", ".join([AUTO, *_SUBSAMPLING])
            raise InputError(f"jpeg: subsampling must be one of {choices}, got {subsampling!r}")
        return subsampling

    def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes:
        subsampling = self.subsampling_at(level, options["subsampling"])
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
