"""Full-reference IQA metrics for pseudo-SUR labels: the protocol and the registry.

A metric compares a distorted image with its reference and returns one number.
It declares which direction is better (``lower_is_better``) so label maths
never branch on names, and whether it can run here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from sursmr_core.registry import Registry


class Metric(ABC):
    """One full-reference metric. Subclasses register with ``@METRICS.register``.

    ``score`` takes two uint8 RGB arrays of the same (H, W, 3) shape.
    """

    name: ClassVar[str]
    lower_is_better: ClassVar[bool]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    # a metric whose scale is tied to just-noticeable differences (butteraugli...)
    jnd_unit: ClassVar[str | None] = None
    # deep metrics whose weights must come from a user-given file
    needs_weights_file: ClassVar[bool] = False
    # a no-reference score: the reference is checked for size but not looked at (re_iqa)
    reference_free: ClassVar[bool] = False

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @classmethod
    def encoder_name(cls) -> str | None:
        """The network a deep metric runs on here (listed by ``sursmr-train labellers``); None for signal metrics."""
        return None

    @abstractmethod
    def score(self, reference: RGBImage, distorted: RGBImage) -> float: ...


METRICS: Registry[type[Metric]] = Registry("metric", package="training.metrics")
