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
    curve_from_crossings,
    curve_model,
    image_features,
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


def test_curve_from_crossings_is_monotone_through_the_points() -> None:
    curve = curve_from_crossings([(2.0, 0.5), (4.0, 0.9), (3.5, 0.75)], 8)
    assert curve[2] == pytest.approx(0.5) and curve[4] == pytest.approx(0.9)
    assert all(b >= a for a, b in itertools.pairwise(curve))
    assert curve[0] == pytest.approx(0.5 - 2 * 0.25 / 1.5)  # the first segment's slope extended
    assert curve[-1] == 1.0  # the last one's, clamped
    # crossings out of order (0.9 before 0.75) are made monotone rather than folded back
    bent = curve_from_crossings([(5.0, 0.75), (3.0, 0.9)], 8)
    assert all(b >= a for a, b in itertools.pairwise(bent))


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
    prior_busy, prior_calm = model.prior(busy, "jpeg"), model.prior(calm, "jpeg")
    assert prior_busy is not None and prior_calm is not None
    assert set(prior_busy) == set(order)
    crossing = {
        name: crossings([prior[lv][0] for lv in order], list(range(len(order))), [0.5])[0]
        for name, prior in (("busy", prior_busy), ("calm", prior_calm))
    }
    truth = {
        name: crossing_targets(grids[c]["jpeg"], order)["sur"][THRESHOLDS["sur"].index(0.5)]
        for name, c in (("busy", "c39"), ("calm", "c0"))
    }
    assert crossing["busy"] == pytest.approx(truth["busy"], abs=1.0)
    assert crossing["calm"] == pytest.approx(truth["calm"], abs=1.0)
    assert model.prior(busy, "bpg") is None


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
    population = {"jpeg": {"levels": {"50": {"sur": 0.4, "smr": 0.9}, "90": {"sur": 0.9, "smr": 0.95}}}}
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
    assert predictor.curve(busy, "jpeg", per_image=False) == {50: (0.4, 0.9), 90: (0.9, 0.95)}
    assert predictor.curve(None, "jpeg") == {50: (0.4, 0.9), 90: (0.9, 0.95)}


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
    predictor = Predictor(
        create_model("sursmr_tiny"), ModelCard(name="tiny", config=create_model("sursmr_tiny").config)
    )
    predictor.save(tmp_path / "tiny.safetensors")
    grids = tmp_path / "grids.json"
    args = [
        "curve-model",
        "--model",
        str(tmp_path / "tiny.safetensors"),
        "--recipe",
        str(recipe_file),
        "--crops",
        "8",
        "--step",
        "jpeg=2",
        "--grids",
        str(grids),
        "--write-card",
        "--quiet",
        "--json",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {(r["codec"], r["output"]) for r in rows} == {("jpeg", "sur"), ("jpeg", "smr")}
    cached = json.loads(grids.read_text())
    assert len(cached) == 8 and all([row[0] for row in e["jpeg"]] == [30, 70, 95] for e in cached.values())
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card[CURVE_MODEL_KEY]["codecs"]["jpeg"]["levels"] == [30, 50, 70, 85, 95]
    assert card[CURVE_MODEL_KEY]["crops"] == 8
    bad = CliRunner().invoke(main, [*args[:7], "--step", "bpg=2", "--grids", str(grids)])
    assert bad.exit_code != 0 and "bpg" in bad.output
