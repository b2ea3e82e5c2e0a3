"""What the controller needs from a predictor, independent of torch.

The rate controller and ``compress_to_target`` depend on this protocol only;
:class:`sursmr.predictor.Predictor` implements it, tests use fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sursmr_core.imaging import RGBImage


@dataclass(frozen=True)
class Prediction:
    """Predicted Satisfied User Ratio and Satisfied Machine Ratio, each in [0, 1]."""

    sur: float
    smr: float


@runtime_checkable
class QualityPredictor(Protocol):
    """Scores compressed versions of one reference image."""

    name: str

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        """One :class:`Prediction` per candidate, in order; candidates have the reference's size."""
        ...
