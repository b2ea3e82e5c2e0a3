"""The per-image curve model: features, crossings, curves from crossings, fitting, the card and Predictor.curve."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from sursmr.curve_model import (
    CURVE_MODEL_KEY,
    FEATURES,
    THRESHOLDS,
    CurveModel,
    crossings,
    curve_model,
    image_features,
    shift_prior,
)
from sursmr.curves import LEVEL_STATISTICS_KEY
from sursmr.models import create_model
from sursmr.models.weights import ModelCard
from sursmr.predictor import Predictor
from sursmr_core.errors import InputError, ModelError
from training.curve_model import crossing_targets, fit_curve_model, write_card_curve_model


def textured(seed: int, amplitude: float, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.full((*size, 3), 128.0)
    return np.clip(base + rng.normal(0.0, amplitude, (*size, 3)), 0, 255).astype(np.uint8)


def test_features_are_named_finite_and_see_texture() -> None:
    flat = image_features(textured(0, 0.0))
    busy = image_features(textured(0, 40.0))
    assert list(flat) == list(FEATURES)
    assert all(math.isfinite(v) for v in (*flat.values(), *busy.values()))
    assert busy["grad_log_mean"] > flat["grad_log_mean"] + 3
    assert flat["flat_share_1"] == 1.0 and busy["flat_share_1"] == 0.0


def test_features_of_a_huge_image_use_a_bounded_sample_of_tiles() -> None:
    small = image_features(textured(1, 20.0, (512, 512)))
    large = image_features(textured(1, 20.0, (2048, 2048)))  # 64 tiles, 16 measured
    assert large["grad_log_mean"] == pytest.approx(small["grad_log_mean"], abs=0.05)


def test_crossings_interpolate_and_censor() -> None:
    values = [0.0, 0.2, 0.6, 0.5, 1.0]  # a dip at index 3: the running maximum holds 0.6
    assert crossings(values, [0, 1, 2, 3, 4], [0.1, 0.6, 0.8]) == pytest.approx([0.5, 2.0, 3.0 + 0.2 / 0.4])
    assert crossings([0.95, 0.99], [0, 2], [0.9, 0.999]) == [0.0, 4.0]  # met at once; never: one step past


def test_shift_prior_moves_each_output_by_the_median_crossing_gap() -> None:
    order = [10, 20, 30, 40, 50, 60]
    population = {level: (min(1.0, 0.2 * i), 0.5 + 0.1 * i) for i, level in enumerate(order)}
    # SUR: the image crosses every threshold two indices later than the population; SMR: one earlier
    sur_pop = crossings([population[lv][0] for lv in order], range(6), [0.3, 0.5, 0.9])
    smr_pop = crossings([population[lv][1] for lv in order], range(6), [0.7, 0.9])
    predicted = {
        "sur": [(c + 2.0, t) for c, t in zip(sur_pop, [0.3, 0.5, 0.9], strict=True)],
        "smr": [(c - 1.0, t) for c, t in zip(smr_pop, [0.7, 0.9], strict=True)],
    }
    moved = shift_prior(population, order, predicted)
    assert list(moved) == order
    assert [moved[lv][0] for lv in order] == pytest.approx([0.0, 0.0, 0.0, 0.2, 0.4, 0.6])  # held at the ends
    assert [moved[lv][1] for lv in order] == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0, 1.0])
    assert all(b >= a for a, b in itertools.pairwise(moved[lv][0] for lv in order))
    # thresholds the population never reaches inside the grid say nothing; none left: no move
    unmoved = shift_prior(population, order, {"sur": [(0.0, 2.0)], "smr": []})
    assert unmoved == {lv: pytest.approx(population[lv]) for lv in order}


def synthetic_set(n: int = 40) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list]], list[int]]:
    """Crops whose predicted JPEG curves rise later the busier they are: the model must learn that."""
    order = list(range(20, 101, 5))  # 17 levels, worst to best
    features, grids = {}, {}
    for i in range(n):
        rgb = textured(i, 4.0 + 2.0 * i)
        features[f"c{i}"] = image_features(rgb)
        centre = 4.0 + 8.0 * i / n  # grid index where SUR crosses 0.5
        grid = []
        for k, level in enumerate(order):
            sur = 1.0 / (1.0 + math.exp(-(k - centre) * 1.5))
            smr = 1.0 / (1.0 + math.exp(-(k - centre + 2.0) * 1.5))
            grid.append((level, 1000 + 100 * k, sur, smr))
        grids[f"c{i}"] = {"jpeg": grid}
    return features, grids, order


def test_fit_learns_a_feature_driven_shift_and_round_trips_through_a_card(tmp_path) -> None:
    features, grids, order = synthetic_set()
    section, report = fit_curve_model(features, grids, {"jpeg": order})
    sur = report["codecs"]["jpeg"]["sur"]
    assert sur["loo_mae_mean"] < 0.5 * sur["constant_mae_mean"]  # the image explains where its curve rises
    card_file = tmp_path / "m.json"
    card_file.write_text(json.dumps({"name": "m"}))
    write_card_curve_model(card_file, section)
    model = curve_model(json.loads(card_file.read_text()), "card")
    assert isinstance(model, CurveModel)
    busy, calm = features["c39"], features["c0"]
    population = {level: (1.0 / (1.0 + math.exp(-(k - 8.0) * 1.5)), 0.95) for k, level in enumerate(order)}
    prior_busy, prior_calm = model.prior(busy, "jpeg", population), model.prior(calm, "jpeg", population)
    assert prior_busy is not None and prior_calm is not None
    assert set(prior_busy) == set(order)
    index = THRESHOLDS["sur"].index(0.5)
    for prior, crop in ((prior_busy, "c39"), (prior_calm, "c0")):
        crossing = crossings([prior[lv][0] for lv in order], list(range(len(order))), [0.5])[0]
        assert crossing == pytest.approx(crossing_targets(grids[crop]["jpeg"], order)["sur"][index], abs=1.0)
    assert model.prior(busy, "bpg", population) is None
    assert model.prior(busy, "jpeg", None) is None


def test_fit_refuses_too_few_crops() -> None:
    features, grids, order = synthetic_set(5)
    with pytest.raises(InputError, match="at least 8 crops"):
        fit_curve_model(features, grids, {"jpeg": order})


def test_a_malformed_section_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="malformed"):
        curve_model({CURVE_MODEL_KEY: {"features": list(FEATURES)}}, "card")
    with pytest.raises(ModelError, match="unknown features"):
        curve_model({CURVE_MODEL_KEY: {"features": ["nope"], "mean": [0], "scale": [1], "codecs": {}}}, "card")
    assert curve_model({}, "card") is None


def test_predictor_curve_uses_the_curve_model_per_image_and_the_population_otherwise() -> None:
    features, grids, order = synthetic_set()
    section, _ = fit_curve_model(features, grids, {"jpeg": order})
    curve = {level: round(1.0 / (1.0 + math.exp(-(k - 8.0) * 1.5)), 4) for k, level in enumerate(order)}
    population = {"jpeg": {"levels": {str(lv): {"sur": v, "smr": 0.95} for lv, v in curve.items()}}}
    card = ModelCard(
        name="t",
        config=create_model("sursmr_tiny").config,
        extra={CURVE_MODEL_KEY: section, LEVEL_STATISTICS_KEY: population},
    )
    predictor = Predictor(create_model("sursmr_tiny"), card, device="cpu")
    busy, calm = textured(39, 4.0 + 2.0 * 39), textured(0, 4.0)
    prior_busy, prior_calm = predictor.curve(busy, "jpeg"), predictor.curve(calm, "jpeg")
    assert prior_busy is not None and prior_calm is not None
    assert prior_busy[60][0] < prior_calm[60][0]  # the busy image's curve rises later
    assert set(prior_busy) == set(order)  # the population's levels, moved
    unmoved = {lv: (v, 0.95) for lv, v in curve.items()}
    assert predictor.curve(busy, "jpeg", per_image=False) == unmoved
    assert predictor.curve(None, "jpeg") == unmoved


@pytest.mark.slow
def test_curve_model_command_fits_from_real_encodes_and_writes_the_card(tmp_path) -> None:
    from click.testing import CliRunner

    from training.cli import main
    from training.datasets.recipe import DEFAULT_RECIPE, CodecPlan, save_recipe

    recipe = DEFAULT_RECIPE.with_changes(
        name="tiny-curves",
        collections=("skimage", "skimage-grey", "matplotlib"),
        split=(0.98, 0.01, 0.01),
        codecs=(CodecPlan("jpeg", (30, 50, 70, 85, 95)),),
    )
    recipe_file = save_recipe(recipe, tmp_path / "recipe.json")
    config = create_model("sursmr_tiny").config
    Predictor(create_model("sursmr_tiny"), ModelCard(name="tiny", config=config)).save(tmp_path / "tiny.safetensors")
    grids = tmp_path / "grids.json"
    common = ["curve-model", "--model", str(tmp_path / "tiny.safetensors"), "--recipe", str(recipe_file)]
    args = [*common, "--photos", "4", "--crops-per-photo", "2", "--step", "jpeg=2", "--grids", str(grids)]
    result = CliRunner().invoke(main, [*args, "--write-card", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {(r["codec"], r["output"]) for r in rows} == {("jpeg", "sur"), ("jpeg", "smr")}
    cached = json.loads(grids.read_text())
    assert len(cached) == 8 and all([row[0] for row in e["jpeg"]] == [30, 70, 95] for e in cached.values())
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card[CURVE_MODEL_KEY]["codecs"]["jpeg"]["levels"] == [30, 50, 70, 85, 95]
    assert (card[CURVE_MODEL_KEY]["photos"], card[CURVE_MODEL_KEY]["crops"]) == (4, 8)
    bad = CliRunner().invoke(main, [*common, "--step", "bpg=2", "--grids", str(grids)])
    assert bad.exit_code != 0 and "bpg" in bad.output


def test_dataset_grids_score_the_stored_levels_of_training_items(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No encodes: every stored level of each train item is scored once, resumed from the cache, and fitted."""
    from pathlib import Path

    from conftest import photo_crop
    from PIL import Image
    from test_datasets import FakeLabellers

    from sursmr.predictor import Prediction
    from training.curve_model import dataset_grids
    from training.datasets.builder import build_dataset
    from training.datasets.recipe import CodecPlan, Recipe

    photos = Path(tmp_path) / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(photo_crop(64, 64, top=40 * i, left=30 * i)).save(photos / f"p{i}.png")
    recipe = Recipe(
        name="tiny-curve",
        collections=(),
        source_dirs=(str(photos),),
        crop_sizes=((48, 48),),
        crop_scales=(1.0,),
        crops_per_source=1,
        codecs=(CodecPlan("jpeg", (10, 30, 50, 70, 90), train_levels=3),),
        split=(1.0, 0.0, 0.0),
        seed=3,
    )
    data = Path(tmp_path) / "data"
    assert not build_dataset(recipe, data, factory=FakeLabellers()).failed

    class Counting:
        calls = 0

        def predict(self, reference, candidates):  # type: ignore[no-untyped-def]
            self.calls += len(candidates)
            # a curve that rises with the damage the candidate lacks: mean absolute difference, squashed
            return [
                Prediction(sur=float(np.exp(-np.abs(c.astype(float) - reference).mean() / 4)), smr=1.0)
                for c in candidates
            ]

    scorer = Counting()
    cache = Path(tmp_path) / "grids.json"
    grids, originals = dataset_grids(scorer, data, cache)
    assert sorted(grids) == sorted(originals) and len(grids) == 6
    for entry in grids.values():
        levels = [row[0] for row in entry["jpeg"]]
        assert len(levels) == 3 and {10, 90} <= set(levels)  # the seeded subset keeps both ends
        by_level = sorted(entry["jpeg"])
        assert by_level[0][2] <= by_level[-1][2]  # the best level scores at least the worst
    assert scorer.calls == 18
    again, _ = dataset_grids(scorer, data, cache)
    assert again == grids and scorer.calls == 18  # resumed from the cache: nothing scored twice
    with pytest.raises(InputError, match="no val item"):
        dataset_grids(scorer, data, cache, split="val")
