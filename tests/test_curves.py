"""Priors from model card label statistics (sursmr.curves) and Predictor.curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from sursmr.compress import EncodeCache, compress_to_target
from sursmr.curves import LEVEL_STATISTICS_KEY, card_prior, level_statistics
from sursmr.models import create_model
from sursmr.models.weights import ModelCard
from sursmr.predictor import Predictor
from sursmr.rate_control import Probe, Targets, search
from sursmr.scoring import Prediction
from sursmr_core.errors import ModelError
from sursmr_core.levels import LevelAxis


def card_with(section: object | None) -> ModelCard:
    extra = {} if section is None else {LEVEL_STATISTICS_KEY: section}
    return ModelCard(name="t", config=create_model("sursmr_tiny").config, extra=extra)


def test_no_section_or_codec_gives_no_prior() -> None:
    assert card_prior(card_with(None), "jpeg") is None
    assert card_prior(card_with({"bpg": {"levels": {"30": {"sur": 0.5, "smr": 0.9}}}}), "jpeg") is None


def test_level_statistics_round_trip_through_a_card() -> None:
    rows = [("jpeg", 90, 0.9, 0.8), ("jpeg", 90, 0.7, None), ("jpeg", 50, 0.2, 0.6), ("bpg", 30, 0.5, None)]
    section = level_statistics(rows)
    assert section["jpeg"]["levels"]["90"] == {"sur": 0.8, "smr": 0.8, "count": 2}
    assert section["bpg"]["levels"]["30"]["smr"] is None
    card = ModelCard.from_dict(card_with(section).to_dict())
    assert card_prior(card, "jpeg") == {50: (0.2, 0.6), 90: (0.8, 0.8)}
    assert card_prior(card, "bpg") == {30: (0.5, 1.0)}  # no SMR labels: the prior guesses SUR only


@pytest.mark.parametrize(
    "section",
    [
        ["jpeg"],
        {"jpeg": {"nolevels": {}}},
        {"jpeg": {"levels": {"x": {"sur": 0.5}}}},
        {"jpeg": {"levels": {"50": {"smr": 0.5}}}},
        {"jpeg": {"levels": {"50": {"sur": 1.5}}}},
        {"jpeg": {"levels": {"50": {"sur": float("nan")}}}},
    ],
)
def test_malformed_sections_are_model_errors(section: object) -> None:
    with pytest.raises(ModelError):
        card_prior(card_with(section), "jpeg")


def test_a_card_prior_drives_the_predicted_search() -> None:
    axis = LevelAxis(1, 100, "higher")
    asked: list[int] = []

    def evaluate(levels: Sequence[int]) -> list[Probe]:
        asked.extend(levels)
        return [Probe(level=lv, nbytes=lv * 100, sur=lv / 100, smr=1.0) for lv in levels]

    means = {str(lv): {"sur": lv / 100, "smr": 1.0} for lv in range(1, 101)}
    prior = card_prior(card_with({"jpeg": {"levels": means}}), "jpeg")
    result = search(axis, evaluate, Targets(sur=0.75, smr=None), strategy="predicted", prior=prior)
    assert result.best.level == 75
    assert len(asked) <= 3  # a right prior: the guess and the level below it


def test_predictor_curve_reads_its_card() -> None:
    torch.manual_seed(0)
    card = card_with({"jpeg": {"levels": {"80": {"sur": 0.8, "smr": 0.9}}}})
    predictor = Predictor.from_model(create_model("sursmr_tiny"), card)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    assert predictor.curve(image, "jpeg") == {80: (0.8, 0.9)}
    assert predictor.curve(image, "vvc") is None


class ErrorScorer:
    """A fake predictor: SUR falls with the mean absolute error (monotone in JPEG quality); it can carry a prior."""

    name = "error-scorer"

    def __init__(self, prior: dict[int, tuple[float, float]] | None = None) -> None:
        self.prior = prior

    def predict(self, reference: np.ndarray, candidates: Sequence[np.ndarray]) -> list[Prediction]:
        return [
            Prediction(sur=max(0.0, 1.0 - float(np.abs(reference.astype(float) - c).mean()) / 32.0), smr=1.0)
            for c in candidates
        ]

    def curve(self, reference: np.ndarray, codec: str) -> dict[int, tuple[float, float]] | None:
        return self.prior


def noisy_ramp(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.linspace(0, 255, 64)[None, :, None] + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)


def exact_curve(image: np.ndarray, kwargs: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """The fake scorer's own SUR/SMR at every level (an exhaustive search's probes): a prior that is right."""
    every = compress_to_target(image, predictor=ErrorScorer(), strategy="exhaustive", cache=EncodeCache(), **kwargs)
    return {p.level: (p.sur, p.smr) for p in every.probes}


def test_compress_predicted_uses_the_scorers_prior_and_keeps_the_bisect_answer() -> None:
    image = noisy_ramp(0)
    kwargs = {"codec": "jpeg", "target_sur": 0.5, "target_smr": None, "jobs": 1}
    bisect = compress_to_target(image, predictor=ErrorScorer(), strategy="bisect", cache=EncodeCache(), **kwargs)
    right = exact_curve(image, kwargs)
    guided = compress_to_target(
        image, predictor=ErrorScorer(right), strategy="predicted", cache=EncodeCache(), **kwargs
    )
    assert guided.level == bisect.level and guided.nbytes == bisect.nbytes
    assert len(guided.probes) <= 3 < len(bisect.probes)
    unguided = compress_to_target(image, predictor=ErrorScorer(), strategy="predicted", cache=EncodeCache(), **kwargs)
    assert unguided.level == bisect.level and len(unguided.probes) == len(bisect.probes)  # no prior: bisection


@pytest.mark.parametrize("codec", ["jpeg", "bpg"])
@pytest.mark.parametrize("shift", [10, -10])
def test_compress_with_a_curve_off_by_ten_levels_falls_back_to_bisection(codec: str, shift: int) -> None:
    """A fake predictor whose curve is 10 levels off: the real search still returns bisection's passing answer."""
    import codec_adapters

    if not codec_adapters.get(codec).availability().available:
        pytest.skip(f"{codec}: {codec_adapters.get(codec).availability().reason}")
    image = noisy_ramp(0)
    # a target that puts the true boundary mid-axis for this fake scorer, so a curve 10 levels off misleads
    kwargs = {"codec": codec, "target_sur": {"jpeg": 0.72, "bpg": 0.75}[codec], "target_smr": None, "jobs": 1}
    bisect = compress_to_target(image, predictor=ErrorScorer(), strategy="bisect", cache=EncodeCache(), **kwargs)
    order = codec_adapters.get(codec).levels.worst_to_best()
    assert 10 <= order.index(bisect.level) < len(order) - 10, bisect.level
    wrong_boundary = order.index(bisect.level) + shift  # the curve crosses the target 10 levels away from the truth
    wrong = {level: (0.9 if i >= wrong_boundary else 0.1, 1.0) for i, level in enumerate(order)}
    guided = compress_to_target(
        image, predictor=ErrorScorer(wrong), strategy="predicted", cache=EncodeCache(), **kwargs
    )
    assert guided.level == bisect.level and guided.nbytes == bisect.nbytes
    assert guided.sur >= kwargs["target_sur"]  # never a failing probe
    levels = [p.level for p in guided.probes]
    assert len(levels) == len(set(levels)) == guided.encodes  # every probe kept, each encoded once
    assert len(levels) > 3  # the guess failed to settle it: it galloped away, then bisected


def test_thorough_closes_the_bracket_the_default_search_may_settle() -> None:
    image = noisy_ramp(1)
    kwargs = {"codec": "jpeg", "target_sur": 0.5, "target_smr": None, "jobs": 1}
    bisect = compress_to_target(image, predictor=ErrorScorer(), strategy="bisect", cache=EncodeCache(), **kwargs)
    exhaustive = compress_to_target(
        image, predictor=ErrorScorer(), strategy="exhaustive", cache=EncodeCache(), **kwargs
    )
    truth = {p.level: (p.sur, p.smr) for p in exhaustive.probes}
    for shift in (-6, 0, 6):  # the image's own curve, moved: a prior a few levels off
        prior = {level: truth[min(100, max(1, level - shift))] for level in truth}
        settled = compress_to_target(image, predictor=ErrorScorer(prior), cache=EncodeCache(), **kwargs)
        thorough = compress_to_target(image, predictor=ErrorScorer(prior), cache=EncodeCache(), thorough=True, **kwargs)
        assert thorough.level == bisect.level  # the exact search
        assert settled.sur >= 0.5 and len(settled.probes) <= len(thorough.probes)
        assert settled.nbytes >= thorough.nbytes
