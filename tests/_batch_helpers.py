"""Predictors for batch tests that run in other processes (importable there by module name)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

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


class PsnrPredictor:
    """SUR/SMR rising with PSNR (monotone in the level), remembering which images it scored."""

    name = "fake-psnr"
    weights_sha256 = "0" * 64

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        self.seen.add(reference.tobytes())
        out = []
        for candidate in candidates:
            psnr = fidelity.psnr(reference, candidate)
            out.append(Prediction(float(np.clip((psnr - 24) / 16, 0, 0.99)), float(np.clip((psnr - 20) / 16, 0, 0.99))))
        return out


def use_psnr_predictor(monkeypatch: pytest.MonkeyPatch) -> PsnrPredictor:
    """Make compress and --resume see a :class:`PsnrPredictor` instead of the shipped model."""
    import sursmr.compress
    import sursmr.predictor

    predictor = PsnrPredictor()
    monkeypatch.setattr(sursmr.compress, "cached_predictor", lambda name=None, device="auto": predictor)
    # what --resume compares manifest lines with, read from the weights without building the network
    monkeypatch.setattr(sursmr.predictor, "identify", lambda spec=None, **_: (predictor.name, predictor.weights_sha256))
    return predictor
