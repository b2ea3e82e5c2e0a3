"""Eq. 3 pseudo-SUR proxy: hand-computed numbers and declared edge cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo_crop
from PIL import Image

from sursmr_core.errors import InputError
from training.labels.pseudo_sur import eq3_pseudo_sur, normalise_over_set, pseudo_sur_labels


def test_eq3_hand_computed_with_a_lower_is_better_flip() -> None:
    scores = {"up": [1.0, 2.0, 3.0], "down": [10.0, 30.0, 20.0]}
    # up: [0, .5, 1]; down normalised [0, 1, .5] then flipped [1, 0, .5]
    labels = eq3_pseudo_sur(scores, {"up": False, "down": True})
    np.testing.assert_allclose(labels, [0.5, 0.25, 0.75])


def test_eq3_drops_a_constant_metric() -> None:
    scores = {"up": [1.0, 3.0], "flat": [7.0, 7.0]}
    np.testing.assert_allclose(eq3_pseudo_sur(scores, {"up": False, "flat": False}), [0.0, 1.0])


def test_eq3_all_constant_gives_ones() -> None:
    np.testing.assert_array_equal(eq3_pseudo_sur({"a": [2.0, 2.0, 2.0]}, {"a": False}), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(eq3_pseudo_sur({"a": [5.0]}, {"a": True}), [1.0])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([np.inf, 40.0, 30.0], [1.0, 1.0, 0.0]),  # clipped to the finite range
        ([np.inf, 30.0], [1.0, 0.0]),  # finite part flat: by rank
        ([np.inf, 30.0, -np.inf], [1.0, 0.5, 0.0]),
    ],
)
def test_infinities_clip_to_the_finite_range_or_fall_back_to_rank(values: list[float], expected: list[float]) -> None:
    normalised = normalise_over_set(values)
    assert normalised is not None
    np.testing.assert_allclose(normalised, expected)


def test_all_infinite_metric_is_constant() -> None:
    assert normalise_over_set([np.inf, np.inf]) is None


@pytest.mark.parametrize(
    ("scores", "directions", "message"),
    [
        ({"a": [1.0, float("nan")]}, {"a": False}, "NaN"),
        ({"a": [1.0, 2.0], "b": [1.0]}, {"a": False, "b": False}, "same versions"),
        ({"a": [1.0, 2.0]}, {}, "no direction"),
        ({}, {}, "at least one metric"),
    ],
)
def test_eq3_refuses_bad_input(scores: dict[str, list[float]], directions: dict[str, bool], message: str) -> None:
    with pytest.raises(InputError, match=message):
        eq3_pseudo_sur(scores, directions)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def test_labels_from_registered_metrics_rank_jpeg_levels() -> None:
    reference = photo_crop(64, 96)
    versions = [_jpeg(reference, q) for q in (5, 50, 95)]
    labels = pseudo_sur_labels(reference, versions, ["ssim", "gmsd", "psnr"])
    # every metric ranks q5 < q50 < q95 on this photo, so the set spans exactly [0, 1]
    np.testing.assert_allclose([labels[0], labels[-1]], [0.0, 1.0])
    assert labels[0] < labels[1] < labels[2]
