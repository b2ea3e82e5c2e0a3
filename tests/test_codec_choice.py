"""--codec auto / lists: the smallest passing bitstream across codecs (sursmr.codec_choice)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import codec_adapters
from sursmr.codec_choice import compress_any_codec, resolve_codecs
from sursmr.compress import EncodeCache
from sursmr.scoring import Prediction
from sursmr_core.errors import InputError, TargetUnreachable


class ErrorScorer:
    """A fake predictor: SUR falls with the mean absolute error."""

    name = "error-scorer"

    def predict(self, reference: np.ndarray, candidates: Sequence[np.ndarray]) -> list[Prediction]:
        return [
            Prediction(sur=max(0.0, 1.0 - float(np.abs(reference.astype(float) - c).mean()) / 32.0), smr=1.0)
            for c in candidates
        ]


def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(np.linspace(0, 255, 64)[None, :, None] + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)


def test_resolve_codecs() -> None:
    assert resolve_codecs("jpeg, jpeg") == ["jpeg"]
    auto = resolve_codecs("auto")
    assert auto and all(codec_adapters.get(n).availability().available for n in auto)
    for bad in ("", "auto,jpeg"):
        with pytest.raises(InputError):
            resolve_codecs(bad)


def test_the_smallest_passing_codec_wins() -> None:
    names = [
        n for n in ("jpeg", "bpg") if n in codec_adapters.list() and codec_adapters.get(n).availability().available
    ]
    if len(names) < 2:
        pytest.skip(f"needs JPEG and BPG (libbpg), have {names}")
    choice = compress_any_codec(
        image(), codecs=names, predictor=ErrorScorer(), target_sur=0.5, target_smr=None, jobs=1, cache=EncodeCache()
    )
    assert set(choice.results) | set(choice.unreachable) == set(names)
    assert choice.best.nbytes == min(r.nbytes for r in choice.results.values())
    assert choice.best.sur >= 0.5


def test_no_codec_meets_the_targets() -> None:
    with pytest.raises(TargetUnreachable, match="no codec"):
        compress_any_codec(
            image(),
            codecs="jpeg",
            predictor=ErrorScorer(),
            target_sur=0.999,
            target_smr=None,
            jobs=1,
            cache=EncodeCache(),
        )
