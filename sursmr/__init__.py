"""sursmr: rate control to predicted Satisfied User / Machine Ratio targets.

Heavy parts (torch, the predictor) load on first use, so ``import sursmr``
stays cheap for codec-only work.
"""

from __future__ import annotations

__version__ = "0.1.0"

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from PIL import Image

    from sursmr.batch import BatchOutcome
    from sursmr.compress import CompressResult


def save(image: Image.Image, path: str | os.PathLike[str], *, codec: str, **kwargs: Any) -> CompressResult:
    """Write a Pillow image to ``path`` with ``codec`` at the smallest size meeting the targets; returns the result.

    ``kwargs`` are those of :func:`sursmr.compress.compress_to_target`
    (``target_sur``, ``target_smr``, ``margin``, ``predictor``...). Modes other
    than RGB follow the input policy (converted with a warning; ``strict=True``
    refuses them). The file appears complete or not at all, and is replaced
    if it exists, as :meth:`PIL.Image.Image.save` would.

    >>> import sursmr
    >>> sursmr.save(Image.open("photo.png"), "photo.jpg", codec="jpeg", target_sur=0.8)
    """
    from sursmr.compress import compress_to_target, pillow_to_rgb
    from sursmr_core.outputs import atomic_write_bytes

    rgb = pillow_to_rgb(image, strict=bool(kwargs.get("strict", False)))
    result = compress_to_target(rgb, codec=codec, **kwargs)
    atomic_write_bytes(path, result.data)
    return result


def compress_many(inputs: Any, **kwargs: Any) -> Iterator[BatchOutcome]:
    """:func:`sursmr.batch.compress_many` (files, folders or arrays; outcomes in completion order)."""
    from sursmr.batch import compress_many as run

    return run(inputs, **kwargs)
