"""Sanity of the shipped default weights (skipped, with the reason, when none are shipped)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import codec_adapters
import sursmr.predictor
from sursmr.models.weights import WEIGHTS_DIR
from sursmr.predictor import DEFAULT_MODEL, Predictor

WEIGHTS = WEIGHTS_DIR / f"{DEFAULT_MODEL}.safetensors"
# every test loads the shipped network
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"no shipped weights at {WEIGHTS}")]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return sursmr.predictor.load(DEFAULT_MODEL, "cpu")


@pytest.fixture(scope="module")
def held_out_photo() -> np.ndarray:
    # the bundled astronaut photo is a test-split source of the default recipe: never seen in training
    from conftest import photo_crop

    return np.ascontiguousarray(photo_crop(256, 256, top=200, left=200)[:, ::-1])


def test_card_names_its_proxy_labels_and_recipe(predictor: Predictor) -> None:
    card = predictor.card
    assert card.label_sources is not None and all("proxy" in str(v) for v in card.label_sources.values())
    assert card.training is not None and card.training.get("command")
    assert WEIGHTS.stat().st_size <= 30 * 1024 * 1024


def test_identity_predicts_satisfied(predictor: Predictor, held_out_photo: np.ndarray) -> None:
    (same,) = predictor.predict(held_out_photo, [held_out_photo])
    assert same.sur > 0.85 and same.smr > 0.8


def test_predicted_sur_falls_with_jpeg_quality(predictor: Predictor, held_out_photo: np.ndarray) -> None:
    jpeg = codec_adapters.create("jpeg")
    qualities = [5, 15, 25, 40, 55, 70, 85, 95]
    decoded = [jpeg.decode(jpeg.encode(held_out_photo, q)) for q in qualities]
    sur = [p.sur for p in predictor.predict(held_out_photo, decoded)]
    assert spearmanr(qualities, sur).statistic > 0.8, sur
