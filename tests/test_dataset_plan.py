"""What a dataset build will contain, without building: recipes (grids, formats, cost estimates), crops, splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sursmr_core.errors import InputError
from training.datasets.builder import assign_splits
from training.datasets.recipe import DEFAULT_RECIPE, CodecPlan, Recipe, estimate_cost, load_recipe, save_recipe
from training.datasets.sources import directory_photos, plan_crops, render_crop

# --- recipe ---------------------------------------------------------------------------


def test_recipe_json_round_trip(tmp_path: Path) -> None:
    path = save_recipe(DEFAULT_RECIPE, tmp_path / "r.json")
    again = load_recipe(path)
    assert again == DEFAULT_RECIPE
    assert load_recipe("default") is DEFAULT_RECIPE
    assert {p.codec for p in DEFAULT_RECIPE.codecs} == {"jpeg", "bpg", "vvc"}


def test_recipe_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown recipe field"):
        Recipe.from_dict({**DEFAULT_RECIPE.to_dict(), "colour": 1})
    with pytest.raises(InputError, match="at least 2 levels"):
        CodecPlan("jpeg", (50,))
    with pytest.raises(InputError, match="split"):
        DEFAULT_RECIPE.with_changes(split=(0.5, 0.5, 0.5))
    with pytest.raises(InputError, match="does not exist"):
        load_recipe(tmp_path / "missing.json")


def test_named_recipes_and_v2_grids() -> None:
    from training.datasets.recipe import QUICK_RECIPE, RECIPES, V1_RECIPE

    assert load_recipe("v2") is DEFAULT_RECIPE and load_recipe("quick") is QUICK_RECIPE
    assert load_recipe("v1") is V1_RECIPE and len(V1_RECIPE.plan("jpeg").levels) == 8
    assert set(RECIPES) >= {"default", "v1", "v2", "quick"}
    jpeg = DEFAULT_RECIPE.plan("jpeg").levels
    steps = np.diff(jpeg)
    assert jpeg[0] == 20 and jpeg[-1] == 100 and steps.max() <= 3 and set(range(85, 101)) <= set(jpeg)
    assert DEFAULT_RECIPE.plan("bpg").levels == tuple(range(0, 47, 2))
    assert DEFAULT_RECIPE.plan("vvc").levels == tuple(range(0, 51, 2))
    assert not any(c.startswith("lomiri") for c in DEFAULT_RECIPE.collections)
    # v1's collections keep the 40 photos it was built from (v2's additions are collections of their own)
    from training.datasets import sources

    assert V1_RECIPE.collections == ("skimage", "opencv-doc", "matplotlib")
    assert len(sources._SKIMAGE_PHOTOS) == 7 and len(sources._OPENCV_PHOTOS) == 32
    assert {"skimage-grey", "opencv-doc-more"} <= set(DEFAULT_RECIPE.collections)


def test_recipe_format_2_and_old_formats() -> None:
    data = DEFAULT_RECIPE.to_dict()
    assert data["format"] == 2 and data["codecs"][0]["train_levels"] == 10
    old = {**data, "format": 1, "codecs": [{"codec": "jpeg", "levels": [30, 60, 90]}]}
    old.pop("max_sources")
    plan = Recipe.from_dict(old).plan("jpeg")
    assert plan.train_levels is None and plan.levels == (30, 60, 90)
    with pytest.raises(InputError, match="format 3 is not supported"):
        Recipe.from_dict({**data, "format": 3})
    with pytest.raises(InputError, match="train_levels"):
        CodecPlan("jpeg", (10, 20, 30), train_levels=4)


def test_training_crops_get_a_seeded_subset_holding_both_grid_ends() -> None:
    plan = CodecPlan("jpeg", tuple(range(20, 101, 2)), train_levels=6)
    assert plan.levels_for("test", "c1", 0) == plan.levels == plan.levels_for("val", "c1", 0)
    first = plan.levels_for("train", "c1", 0)
    assert first == plan.levels_for("train", "c1", 0)
    assert len(first) == 6 and first[0] == 20 and first[-1] == 100 and list(first) == sorted(first)
    others = {plan.levels_for("train", f"c{i}", 0) for i in range(20)}
    assert len(others) > 10  # the subset varies with the crop
    assert CodecPlan("jpeg", (1, 2, 3)).levels_for("train", "c1", 0) == (1, 2, 3)


def test_estimates_fit_their_budgets() -> None:
    from training.datasets.recipe import QUICK_RECIPE, CostModel

    quick = estimate_cost(QUICK_RECIPE, n_sources=125)
    assert quick["crops"] == 10 and quick["wall_hours"] <= 0.5
    full = estimate_cost(DEFAULT_RECIPE, n_sources=125)
    assert full["crops"] == 375 and full["wall_hours"] <= 6.0  # the budget on 2 cores
    # more levels per training crop cost more; machines that apply less often cost less
    dense = DEFAULT_RECIPE.with_changes(
        codecs=tuple(dataclasses.replace(p, train_levels=None) for p in DEFAULT_RECIPE.codecs)
    )
    assert estimate_cost(dense, 125)["wall_hours"] > full["wall_hours"]
    cheap = CostModel(applicable_share={}, default_applicable_share=0.0)
    assert estimate_cost(DEFAULT_RECIPE, 125, cheap)["wall_hours"] < full["wall_hours"]


# --- sources and splits -----------------------------------------------------------------


def test_crops_are_deterministic_and_remember_their_source(photo_dir: Path) -> None:
    photos = directory_photos(photo_dir)
    first = plan_crops(photos, [(48, 64)], [1.0, 0.5], 3, seed=1)
    again = plan_crops(photos, [(48, 64)], [1.0, 0.5], 3, seed=1)
    other = plan_crops(photos, [(48, 64)], [1.0, 0.5], 3, seed=2)
    assert first == again and first != other
    assert {c.source_id for c in first} == {p.source_id for p in photos}
    assert len({c.crop_id for c in first}) == len(first) == 6
    # a photo's crops do not move when another photo is dropped
    alone = plan_crops(photos[:1], [(48, 64)], [1.0, 0.5], 3, seed=1)
    assert alone == [c for c in first if c.source_id == photos[0].source_id]
    crop = render_crop(first[1])  # scale 0.5 of 96x128 -> 48x64 fits exactly
    assert crop.shape == (48, 64, 3) and crop.dtype == np.uint8


def test_scale_reference_makes_scales_relative_to_a_shorter_side(photo_dir: Path) -> None:
    photos = directory_photos(photo_dir)  # 96x128 photos
    half = plan_crops(photos, [(32, 32)], [1.0, 0.5], 2, seed=1, scale_reference=48)
    assert [c.scale for c in half[:2]] == [0.5, 0.25]  # 96 -> 48, then half of that
    assert render_crop(half[1]).shape == (24, 32, 3)  # the 32x32 size shrinks to fit the 24x32 scaled photo
    never_enlarged = plan_crops(photos, [(32, 32)], [1.0], 1, seed=1, scale_reference=1000)
    assert never_enlarged[0].scale == 1.0
    assert plan_crops(photos, [(32, 32)], [1.0], 1, seed=1) == never_enlarged
    with pytest.raises(InputError, match="scale_reference"):
        DEFAULT_RECIPE.with_changes(scale_reference=4)


def test_split_is_by_source_and_follows_shares() -> None:
    ids = [f"src{i}" for i in range(40)]
    splits = assign_splits(ids, (0.7, 0.1, 0.2), seed=5)
    assert set(splits) == set(ids)
    counts = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "val", "test")}
    assert counts == {"train": 28, "val": 4, "test": 8}
    assert assign_splits(ids, (0.7, 0.1, 0.2), seed=5) == splits
    small = assign_splits(["a", "b", "c"], (0.8, 0.1, 0.1), seed=0)
    assert sorted(small.values()) == ["test", "train", "val"]


def test_offline_collections_are_found() -> None:
    from training.datasets.sources import COLLECTIONS, gather_sources

    names = [n for n, c in COLLECTIONS.items() if c.availability().available]
    if not names:
        pytest.skip("no offline photo collection installed here")
    photos = gather_sources(names)
    assert all(p.path.is_file() and p.licence for p in photos)
