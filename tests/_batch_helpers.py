"""Predictors for batch tests that run in other processes (importable there by module name)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sursmr import fidelity
from sursmr.scoring import Prediction
from sursmr_core.imaging import RGBImage


class KillOncePredictor:
    """Scores by PSNR; the first process to find ``marker`` deletes it and dies by SIGKILL mid-image."""

    name = "fake-kill-once"
    weights_sha256 = None

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        try:
            Path(self.marker).unlink()
        except FileNotFoundError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        return [Prediction(float(np.clip((fidelity.psnr(reference, c) - 24) / 16, 0, 0.99)), 0.99) for c in candidates]
