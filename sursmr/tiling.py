"""How many 256² tiles the predictor scores per image: the setting, its text form and its environment variable.

Torch-free, so the CLI can check ``--max-tiles`` before it loads a model.
"""

from __future__ import annotations

import os

from sursmr_core.errors import InputError

DEFAULT_MAX_TILES = 16
"""Most tiles scored per image (``native`` mode): a larger image is scored on a sample of this many
(:func:`sursmr.predictor.sample_tiles`); a 768×512 photo has 6 tiles of 256², a 4000×3000 one 192."""
MAX_TILES_ENV = "SURSMR_MAX_TILES"
"""Environment variable :func:`max_tiles_from_env` reads (the CLI's ``--max-tiles`` sets it for its workers)."""


def parse_max_tiles(text: str | None) -> int | None:
    """``max_tiles`` from text: a count ≥ 1 in digits, or ``all`` (None: every tile); None or blank: the default."""
    if text is None or not text.strip():
        return DEFAULT_MAX_TILES
    word = text.strip().lower()
    if word == "all":
        return None
    if not word.isascii() or not word.isdigit() or int(word) < 1:
        raise InputError(f"max tiles must be a count of at least 1 or 'all', got {text!r}")
    return int(word)


def max_tiles_from_env() -> int | None:
    """:func:`parse_max_tiles` of ``$SURSMR_MAX_TILES`` (:data:`DEFAULT_MAX_TILES` when unset)."""
    return parse_max_tiles(os.environ.get(MAX_TILES_ENV))
