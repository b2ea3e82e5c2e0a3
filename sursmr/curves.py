"""Priors for the ``predicted`` search: SUR/SMR per level guessed before any encode.

A *curve source* maps an original image and a codec to a
:data:`~sursmr.rate_control.Prior` (``{level: (sur, smr)}``) or ``None`` when
it has nothing to say; the controller then falls back to bisection. The
predictor is one (:meth:`sursmr.predictor.Predictor.curve`).

The first implementation is deliberately simple and honest: the model card's
per-codec, per-level **label statistics** (mean proxy SUR and SMR of the
training data at each level, under the card key ``level_statistics``). It
ignores the image, so it is a population prior, not a per-image curve model;
the search verifies every guess, so a poor prior costs probes, never a wrong
answer. Cards without the section (the shipped one, today) give no prior.

Card format::

    "level_statistics": {
      "jpeg": {"levels": {"90": {"sur": 0.93, "smr": 0.95, "count": 410}, ...}},
      ...
    }
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sursmr.models.weights import ModelCard
from sursmr.rate_control import Prior
from sursmr_core.errors import ModelError
from sursmr_core.imaging import RGBImage

LEVEL_STATISTICS_KEY = "level_statistics"
"""Model card key holding the per-codec, per-level label means."""


class CurveSource(Protocol):
    """Anything that guesses a codec's SUR/SMR curve for an original before encoding it."""

    def curve(self, reference: RGBImage, codec: str) -> Prior | None:
        """``{level: (sur, smr)}`` for ``codec`` on ``reference``; ``None``: no guess (bisect instead)."""
        ...


def _ratio(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ModelError(f"{where}: expected a ratio in [0, 1], got {value!r}; export the model card again")
    return float(value)


def card_prior(card: ModelCard, codec: str) -> Prior | None:
    """The card's mean SUR/SMR per level of ``codec`` as a prior; ``None`` when the card has none for it.

    A missing SMR mean (labels without SMR) reads as 1.0, i.e. the prior
    guesses only the SUR boundary. Raises :class:`ModelError` on a malformed section.
    """
    section = card.extra.get(LEVEL_STATISTICS_KEY)
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ModelError(f"model card {card.name!r}: {LEVEL_STATISTICS_KEY} must be an object of codecs")
    entry = section.get(codec)
    if entry is None:
        return None
    levels = entry.get("levels") if isinstance(entry, Mapping) else None
    if not isinstance(levels, Mapping):
        raise ModelError(f"model card {card.name!r}: {LEVEL_STATISTICS_KEY}.{codec} has no 'levels' object")
    prior: dict[int, tuple[float, float]] = {}
    for key, stats in levels.items():
        where = f"model card {card.name!r}: {LEVEL_STATISTICS_KEY}.{codec}.levels.{key}"
        try:
            level = int(key)
        except (TypeError, ValueError):
            raise ModelError(f"{where}: level is not an integer") from None
        if not isinstance(stats, Mapping) or "sur" not in stats:
            raise ModelError(f"{where}: expected an object with 'sur' (and 'smr')")
        smr = stats.get("smr")
        prior[level] = (_ratio(stats["sur"], where), 1.0 if smr is None else _ratio(smr, where))
    return prior or None


def level_statistics(rows: Iterable[tuple[str, int, float, float | None]]) -> dict[str, Any]:
    """The card section from labelled rows ``(codec, level, sur, smr or None)``: means and counts per level."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0]))
    for codec, level, sur, smr in rows:
        acc = sums[codec][int(level)]
        acc[0] += sur
        acc[1] += 1
        if smr is not None:
            acc[2] += smr
            acc[3] += 1
    return {
        codec: {
            "levels": {
                str(level): {
                    "sur": round(acc[0] / acc[1], 4),
                    "smr": round(acc[2] / acc[3], 4) if acc[3] else None,
                    "count": int(acc[1]),
                }
                for level, acc in sorted(per_level.items())
            }
        }
        for codec, per_level in sorted(sums.items())
    }
