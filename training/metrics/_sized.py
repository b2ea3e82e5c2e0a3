"""Input checks shared by every metric of this package (private: not a registry entry).

A metric declares the smallest image side it can score (``min_side``); the
check runs once here so each metric only implements ``_score`` and never sees
malformed input.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

from sursmr_core.errors import InputError, LabellerUnavailableError
from sursmr_core.imaging import RGBImage, check_rgb
from training.metrics.base import Metric


class SizedMetric(Metric):
    """A :class:`Metric` with a declared minimum image side and checked inputs.

    ``score`` validates both images (uint8, (H, W, 3), equal shapes, each side
    ≥ ``min_side`` px), refuses to run when ``availability()`` is false, and
    rejects a NaN result instead of passing it on to labels.
    """

    min_side: ClassVar[int] = 16

    def score(self, reference: RGBImage, distorted: RGBImage) -> float:
        avail = self.availability()
        if not avail.available:
            raise LabellerUnavailableError(f"metric {self.name!r} cannot run here: {avail.reason}")
        check_rgb(reference, name=f"{self.name}: reference", min_side=self.min_side)
        check_rgb(distorted, name=f"{self.name}: distorted", min_side=self.min_side)
        if reference.shape != distorted.shape:
            raise InputError(
                f"{self.name}: reference {reference.shape[1]}x{reference.shape[0]} and distorted "
                f"{distorted.shape[1]}x{distorted.shape[0]} differ in size; decode at the original size"
            )
        value = float(self._score(reference, distorted))
        if math.isnan(value):
            raise InputError(
                f"{self.name}: the metric returned NaN for this {reference.shape[1]}x{reference.shape[0]} pair"
            )
        return value

    @abstractmethod
    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        """The metric itself, on inputs already checked by :meth:`score`."""
