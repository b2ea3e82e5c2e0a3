"""Predictor: shared reference features, batching, weights files, CLI `predict` and `models`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import sursmr
from sursmr.cli import main
from sursmr.models import create_model, list_models
from sursmr.models.weights import ModelCard
from sursmr.predictor import DEFAULT_MODEL, Predictor, load, resolve_device
from sursmr.scoring import Prediction, QualityPredictor
from sursmr_core.errors import ExitCode, InputError, ModelError, WeightsNotFoundError


def photo_crop(height: int, width: int, top: int = 40, left: int = 120) -> np.ndarray:
    """A C-contiguous crop of the bundled sample photo (real content, no downloads)."""
    with Image.open(Path(sursmr.__file__).parent / "samples" / "astronaut.png") as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def degraded(image: np.ndarray, strength: int, seed: int = 0) -> np.ndarray:
    """The image plus uniform noise of ±``strength`` grey levels (a stand-in for coding error)."""
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.int16) + rng.integers(-strength, strength + 1, image.shape, dtype=np.int16)
    out: np.ndarray = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run faster on one thread, and far faster when the CI cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_predictor(batch_size: int = 8, **overrides: Any) -> Predictor:
    torch.manual_seed(0)
    # channels-last like load() builds it, so in-memory and loaded predictors give bit-equal scores
    return Predictor.from_model(create_model("sursmr_tiny", **overrides), batch_size=batch_size, channels_last=True)


def folded(predictor: Predictor) -> Predictor:
    """The same weights as :func:`load` builds them (BatchNorms folded); ``predictor`` itself is left as it is."""
    return Predictor.from_model(copy.deepcopy(predictor.model), channels_last=True, fuse=True)


class BackboneCalls:
    """Records the batch size of every backbone forward."""

    def __init__(self, predictor: Predictor) -> None:
        self.batches: list[int] = []
        predictor.model.backbone.register_forward_hook(lambda _m, args, _out: self.batches.append(args[0].shape[0]))


@pytest.fixture
def reference() -> np.ndarray:
    return photo_crop(100, 150)


@pytest.fixture
def candidates(reference: np.ndarray) -> list[np.ndarray]:
    return [degraded(reference, s, seed=s) for s in (2, 8, 20, 40, 80)]


def test_predictor_satisfies_the_protocol_and_returns_ratios(
    reference: np.ndarray, candidates: list[np.ndarray]
) -> None:
    predictor = tiny_predictor()
    assert isinstance(predictor, QualityPredictor)
    result = predictor.predict(reference, candidates)
    assert len(result) == len(candidates)
    assert all(isinstance(p, Prediction) and 0 <= p.sur <= 1 and 0 <= p.smr <= 1 for p in result)
    assert len({(p.sur, p.smr) for p in result}) > 1
    assert predictor.predict(reference, []) == []


def test_reference_features_are_computed_once_per_reference(
    reference: np.ndarray, candidates: list[np.ndarray]
) -> None:
    predictor = tiny_predictor(batch_size=2)
    calls = BackboneCalls(predictor)
    predictor.predict(reference, candidates)
    assert calls.batches == [1, 2, 2, 1]  # the reference once, then 5 candidates in batches of 2
    predictor.predict(reference.copy(), candidates[:2])  # same pixels, new array: cache hit
    assert calls.batches[4:] == [2]
    predictor.predict(candidates[0], [reference])  # a new reference is computed again
    assert calls.batches[5:] == [1, 1]


@pytest.mark.parametrize("batch_size", [5, 8])  # native: one candidate's 4 tiles a batch, or two candidates
@pytest.mark.parametrize("mode", ["resize224", "native"])
def test_batched_and_one_by_one_predictions_agree(mode: str, batch_size: int) -> None:
    reference = np.ascontiguousarray(np.tile(photo_crop(125, 150), (2, 2, 1)))  # 250x300: 4 native tiles
    candidates = [degraded(reference, s, seed=s) for s in (3, 30, 90)]
    predictor = tiny_predictor(batch_size=batch_size, input_mode=mode)
    batched = predictor.predict(reference, candidates)
    predictor.batch_size = 1
    single = [predictor.predict(reference, [c])[0] for c in candidates]
    got = np.array([(p.sur, p.smr) for p in batched])
    np.testing.assert_allclose(got, np.array([(p.sur, p.smr) for p in single]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["resize224", "native"])
def test_both_input_modes_score_non_square_images(mode: str) -> None:
    predictor = tiny_predictor(input_mode=mode)
    for height, width in ((100, 150), (300, 500)):
        reference = np.ascontiguousarray(np.tile(photo_crop(150, 250), (2, 2, 1))[:height, :width])
        (prediction,) = predictor.predict(reference, [degraded(reference, 10)])
        assert 0 <= prediction.sur <= 1 and 0 <= prediction.smr <= 1


def test_candidates_must_match_the_reference_size(reference: np.ndarray) -> None:
    with pytest.raises(InputError, match="must match"):
        tiny_predictor().predict(reference, [reference[:-1]])


def test_predict_tensors_matches_predict(reference: np.ndarray, candidates: list[np.ndarray]) -> None:
    from sursmr.models import image_to_input

    predictor = tiny_predictor(batch_size=3)
    config = predictor.config
    distorted = torch.cat([image_to_input(c, config) for c in candidates])
    scores = predictor.predict_tensors(image_to_input(reference, config), distorted)
    expected = np.array([(p.sur, p.smr) for p in predictor.predict(reference, candidates)])
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-5, rtol=0)
    paired = predictor.predict_tensors(image_to_input(reference, config).expand(len(candidates), -1, -1, -1), distorted)
    np.testing.assert_allclose(paired.numpy(), expected, atol=1e-5, rtol=0)


# --- weights files ---------------------------------------------------------------------


def test_save_and_load_round_trip_gives_identical_predictions(
    tmp_path: Path, reference: np.ndarray, candidates: list[np.ndarray]
) -> None:
    predictor = tiny_predictor()
    predictor.card = ModelCard(
        name="tiny-test",
        config=predictor.config,
        label_sources={"sur": "proxy: test", "smr": None},
        training={"epochs": 0},
        metrics={"mae_sur": None, "mae_smr": None},
    )
    written = predictor.save(tmp_path / "tiny-test.safetensors")
    assert written.weights_dtype == "float32" and written.weights_sha256
    card = json.loads((tmp_path / "tiny-test.json").read_text())
    assert card["backbone"] == "tiny_effnet" and card["input_mode"] == "resize224"
    assert card["label_sources"] == {"sur": "proxy: test", "smr": None}

    by_path = load(tmp_path / "tiny-test.safetensors", "cpu")
    by_name = load("tiny-test", "cpu", weights_dir=tmp_path)
    assert by_name.name == "tiny-test" and by_name.card.training == {"epochs": 0}
    before = predictor.predict(reference, candidates)
    # load() folds the BatchNorms: bit-equal to the same weights folded in memory, equal to float rounding unfolded
    in_memory = folded(predictor)
    assert in_memory.fused and not predictor.fused
    assert by_path.predict(reference, candidates) == in_memory.predict(reference, candidates)
    assert by_name.predict(reference, candidates) == in_memory.predict(reference, candidates)
    np.testing.assert_allclose(
        [(p.sur, p.smr) for p in by_path.predict(reference, candidates)], [(p.sur, p.smr) for p in before], atol=1e-6
    )
    with pytest.raises(ModelError, match="folded BatchNorms cannot be saved"):
        by_path.save(tmp_path / "again.safetensors")

    predictor.save(tmp_path / "half.safetensors", fp16=True)
    half = load(tmp_path / "half.safetensors", "cpu")
    assert half.card.weights_dtype == "float16"
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "half.safetensors"))
    buffers = {name for name, value in predictor.model.named_buffers() if value.is_floating_point()}
    assert buffers and all(stored[k].dtype == torch.float32 for k in buffers if k in stored)
    assert all(stored[k].dtype == torch.float16 for k, _ in predictor.model.named_parameters())
    np.testing.assert_allclose(
        [(p.sur, p.smr) for p in half.predict(reference, candidates)], [(p.sur, p.smr) for p in before], atol=5e-3
    )


def test_load_overrides_the_input_pipeline_before_building(
    tmp_path: Path, reference: np.ndarray, candidates: list[np.ndarray]
) -> None:
    written = tiny_predictor().save(tmp_path / "tiny.safetensors")
    plain = load(tmp_path / "tiny.safetensors", "cpu")
    tiled = load(tmp_path / "tiny.safetensors", "cpu", input_mode="native", input_size=32)
    assert plain.config.input_mode == "resize224" and plain.weights_sha256 == written.weights_sha256
    assert (tiled.config.input_mode, tiled.config.input_size) == ("native", 32)
    assert tiled.card.config == plain.card.config  # the card still says how the weights were trained
    assert tiled.predict(reference, candidates) != plain.predict(reference, candidates)
    with pytest.raises(InputError, match="cannot override"):
        load(tmp_path / "tiny.safetensors", "cpu", embed_dim=8)


def test_load_opens_a_training_checkpoint_once_training_is_imported(
    tmp_path: Path, reference: np.ndarray, candidates: list[np.ndarray]
) -> None:
    import training  # noqa: F401  (registers the checkpoint source)

    predictor = tiny_predictor()
    torch.save({"config": predictor.config.to_dict(), "model": predictor.model.state_dict()}, tmp_path / "best.pt")
    for spec in (tmp_path, tmp_path / "best.pt"):
        loaded = load(spec, "cpu", input_size=64)
        assert loaded.config.input_size == 64 and loaded.name == predictor.config.name
        same_pipeline = load(spec, "cpu")
        assert same_pipeline.predict(reference, candidates) == folded(predictor).predict(reference, candidates)


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="sursmr-train train") as caught:
        load("no-such-model", weights_dir=tmp_path)
    assert caught.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    with pytest.raises(WeightsNotFoundError, match="--model PATH"):
        load(tmp_path / "missing.safetensors")
    tiny_predictor().save(tmp_path / "orphan.safetensors")
    (tmp_path / "orphan.json").unlink()
    with pytest.raises(WeightsNotFoundError, match="model card"):
        load(tmp_path / "orphan.safetensors")


def test_weights_that_do_not_fit_their_card_are_refused(tmp_path: Path) -> None:
    tiny_predictor().save(tmp_path / "m.safetensors")
    card = json.loads((tmp_path / "m.json").read_text())
    card["config"]["embed_dim"] = 48
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not fit"):
        load(tmp_path / "m.safetensors")


def test_device_resolution() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def image_pair(tmp_path: Path, reference: np.ndarray) -> tuple[Path, Path]:
    ref, dist = tmp_path / "ref.png", tmp_path / "dist.png"
    Image.fromarray(reference).save(ref)
    Image.fromarray(degraded(reference, 12)).save(dist)
    return ref, dist


def test_cli_predict_with_a_weights_path(tmp_path: Path, image_pair: tuple[Path, Path]) -> None:
    tiny_predictor().save(tmp_path / "tiny.safetensors")
    ref, dist = image_pair
    result = CliRunner().invoke(
        main, ["predict", str(ref), str(dist), "--model", str(tmp_path / "tiny.safetensors"), "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["model"] == "sursmr_tiny" and 0 <= row["sur"] <= 1 and 0 <= row["smr"] <= 1


def test_cli_predict_errors(tmp_path: Path, image_pair: tuple[Path, Path], reference: np.ndarray) -> None:
    ref, dist = image_pair
    runner = CliRunner()
    missing = runner.invoke(main, ["predict", str(ref), str(dist), "--model", str(tmp_path / "none.safetensors")])
    assert missing.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert "sursmr-train train" in missing.stderr
    other = tmp_path / "other.png"
    Image.fromarray(reference[:-2]).save(other)
    mismatch = runner.invoke(main, ["predict", str(ref), str(other)])
    assert mismatch.exit_code == ExitCode.USAGE and "size" in mismatch.stderr


def test_default_model_is_a_weights_name() -> None:
    assert DEFAULT_MODEL and "/" not in DEFAULT_MODEL


@pytest.mark.slow
def test_cli_models_lists_every_registered_config() -> None:
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in rows] == list_models()
    paper = next(r for r in rows if r["name"] == "sursmr_caformer_s18")
    assert paper["backbone"] == "caformer_s18" and paper["params_m"] > 40
    assert all(isinstance(r["weights_present"], bool) for r in rows)


# --- large images: a bounded, content-aware sample of tiles ---------------------------------------------------------


def half_flat_half_busy(tiles_high: int, tiles_wide: int, side: int) -> np.ndarray:
    """Flat grey on the left half of the tile columns, strong noise on the right half."""
    rng = np.random.default_rng(3)
    image = np.full((tiles_high * side, tiles_wide * side, 3), 128, dtype=np.uint8)
    right = tiles_wide // 2 * side
    image[:, right:] = rng.integers(0, 256, image[:, right:].shape, dtype=np.uint8)
    return image


def test_sample_tiles_keeps_every_tile_up_to_the_bound_and_spans_flat_to_busy() -> None:
    from sursmr.predictor import sample_tiles

    side = 64
    image = half_flat_half_busy(2, 4, side)
    origins = [(top, left) for top in (0, 64) for left in (0, 64, 128, 192)]
    assert sample_tiles(image, origins, side, 8) == origins
    picked = sample_tiles(image, origins, side, 4)
    assert picked == sample_tiles(image.copy(), origins, side, 4)  # deterministic
    assert picked == sorted(picked) and len(set(picked)) == 4
    # one stratum per quarter of the activity ranking: two flat tiles and two busy ones, not the 4 busiest
    assert sum(left >= 128 for _, left in picked) == 2
    with pytest.raises(InputError):
        sample_tiles(image, origins, side, 0)


def test_a_large_image_is_scored_on_max_tiles_tiles_only() -> None:
    from sursmr.models.inputs import aggregate_tiles

    predictor = Predictor.from_model(create_model("sursmr_tiny", input_mode="native", input_size=64), max_tiles=4)
    reference = half_flat_half_busy(4, 4, 64)  # 16 tiles of 64²
    candidate = degraded(reference, 30)
    seen: list[int] = []
    predictor.model.backbone.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    (score,) = predictor.predict(reference, [candidate])
    assert sum(seen) == 8  # 4 reference tiles + 4 candidate tiles, not 32
    origins = predictor.scored_tiles(reference)
    assert len(origins) == 4 and sum(left >= 128 for _, left in origins) == 2

    def tiles(image: np.ndarray) -> torch.Tensor:
        cut = np.stack([image[t : t + 64, le : le + 64] for t, le in origins])
        return torch.from_numpy(cut).permute(0, 3, 1, 2).float() / 255

    with torch.inference_mode():
        expected = aggregate_tiles(predictor.model(tiles(reference), tiles(candidate)), "mean").clamp(0, 1)
    np.testing.assert_allclose([score.sur, score.smr], expected.numpy(), atol=1e-5)
    # every tile when asked for: more network inputs, and in general another score
    every = Predictor.from_model(predictor.model, max_tiles=None)
    seen.clear()
    every.predict(reference, [candidate])
    assert sum(seen) == 32


def test_stats_scores_equal_the_per_pair_network_whatever_the_batching() -> None:
    """Candidates scored in groups of the reference tiles, or a few tiles at a time, against views of the
    cached reference statistics: the per-pair network's scores, for every batch size."""
    from sursmr.models.inputs import aggregate_tiles

    torch.manual_seed(0)
    model = create_model("sursmr_tiny_stats", input_mode="native", input_size=64)
    predictor = Predictor.from_model(model, channels_last=True, max_tiles=None)
    reference = photo_crop(128, 192)  # 2 x 3 tiles of 64²
    candidates = [degraded(reference, s, seed=s) for s in (3, 12, 40)]
    origins = predictor.scored_tiles(reference)
    assert len(origins) == 6

    def tiles(image: np.ndarray) -> torch.Tensor:
        cut = np.stack([image[t : t + 64, le : le + 64] for t, le in origins])
        return torch.from_numpy(cut).permute(0, 3, 1, 2).float() / 255

    with torch.inference_mode():
        slow = torch.stack(
            [aggregate_tiles(predictor.model(tiles(reference), tiles(c)), "mean").clamp(0, 1) for c in candidates]
        ).numpy()
    for batch_size in (1, 4, 6, 13):  # tiles of one candidate in slices; one candidate; two per batch
        predictor.batch_size = batch_size
        got = np.array([(p.sur, p.smr) for p in predictor.predict(reference, candidates)])
        np.testing.assert_allclose(got, slow, atol=1e-6, rtol=0)
        single = np.array([(p.sur, p.smr) for c in candidates for p in predictor.predict(reference, [c])])
        np.testing.assert_allclose(single, got, atol=1e-6, rtol=0)
    assert len({tuple(row) for row in slow.round(4)}) == 3  # the candidates get different scores


def test_max_tiles_from_text_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from sursmr.tiling import DEFAULT_MAX_TILES, max_tiles_from_env, parse_max_tiles

    assert parse_max_tiles("4") == 4 and parse_max_tiles(" ALL ") is None and parse_max_tiles(" 12 ") == 12
    assert parse_max_tiles(None) == parse_max_tiles("") == DEFAULT_MAX_TILES
    for bad in ("0", "-2", "+3", "four", "1.5", "1_0", "\uff13"):
        with pytest.raises(InputError, match="at least 1 or 'all'"):
            parse_max_tiles(bad)
    monkeypatch.delenv("SURSMR_MAX_TILES", raising=False)
    assert max_tiles_from_env() == DEFAULT_MAX_TILES
    monkeypatch.setenv("SURSMR_MAX_TILES", "3")
    assert max_tiles_from_env() == 3


def test_cli_max_tiles_reaches_the_predictor_and_the_workers(
    image_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import sursmr.batch
    import sursmr.compress
    import sursmr.predictor

    monkeypatch.delenv("SURSMR_MAX_TILES", raising=False)
    ref, dist = image_pair
    asked: list[object] = []

    def fake_load(*args: object, max_tiles: int | None = 16, **kwargs: object) -> object:
        asked.append(max_tiles)
        raise ModelError("stop here")

    monkeypatch.setattr(sursmr.predictor, "load", fake_load)
    for text, expected in (("4", 4), ("all", None)):
        result = CliRunner().invoke(main, ["predict", str(ref), str(dist), "--max-tiles", text])
        assert result.exit_code == ModelError.exit_code and asked[-1] == expected
    bad = CliRunner().invoke(main, ["predict", str(ref), str(dist), "--max-tiles", "0"])
    assert bad.exit_code == 2 and "at least 1 or 'all'" in bad.output and len(asked) == 2

    # compress: its workers load through cached_predictor, which reads the variable and keys on it
    seen: list[str | None] = []

    def fake_many(*args: object, **kwargs: object) -> Iterator[object]:
        seen.append(os.environ.get("SURSMR_MAX_TILES"))
        return iter(())

    monkeypatch.setattr(sursmr.batch, "compress_many", fake_many)
    done = CliRunner().invoke(main, ["compress", str(ref), "--codec", "jpeg", "--max-tiles", "4"])
    assert done.exit_code == 0, done.output
    assert seen == ["4"] and "SURSMR_MAX_TILES" not in os.environ  # restored after the command
    monkeypatch.setattr(sursmr.predictor, "load", lambda *a, max_tiles=16, **k: ("predictor", max_tiles))
    monkeypatch.setattr(sursmr.compress, "_PREDICTORS", type(sursmr.compress._PREDICTORS)())
    monkeypatch.setenv("SURSMR_MAX_TILES", "2")
    assert sursmr.compress.cached_predictor("m", "cpu") == ("predictor", 2)
    monkeypatch.setenv("SURSMR_MAX_TILES", "all")
    assert sursmr.compress.cached_predictor("m", "cpu") == ("predictor", None)
