"""``compress_to_target`` with the real JPEG codec and a PSNR-based fake predictor, and ``sursmr compress``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import json_lines
from PIL import Image

import codec_adapters
import sursmr.compress
from codec_adapters.jpeg import JpegAdapter
from sursmr import fidelity
from sursmr.cli import main
from sursmr.compress import EncodeCache, compress_to_target
from sursmr.rate_control import Targets, opening_level
from sursmr.scoring import Prediction
from sursmr_core.errors import ExitCode, InputError, TargetUnreachable, UnknownNameError
from sursmr_core.imaging import RGBImage


class PsnrPredictor:
    """A stand-in for the model: SUR and SMR rise linearly with PSNR (capped at 0.99), monotone in the level."""

    name = "fake-psnr"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        self.calls.append(len(candidates))
        scores = []
        for candidate in candidates:
            psnr = fidelity.psnr(reference, candidate)
            sur = float(np.clip((psnr - 24.0) / 16.0, 0.0, 0.99))
            smr = float(np.clip((psnr - 20.0) / 16.0, 0.0, 0.99))
            scores.append(Prediction(sur, smr))
        return scores


@pytest.fixture
def fake() -> PsnrPredictor:
    return PsnrPredictor()


def check_choice(result: sursmr.compress.CompressResult, targets: Targets) -> None:
    chosen = next(p for p in result.probes if p.level == result.level)
    assert targets.passes(chosen) and chosen.nbytes == result.nbytes
    assert result.nbytes == min(p.nbytes for p in result.probes if targets.passes(p))


def test_chosen_jpeg_passes_decodes_and_is_cached(small_photo: np.ndarray, fake: PsnrPredictor) -> None:
    cache = EncodeCache()
    result = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, target_smr=0.7, predictor=fake, cache=cache)
    targets = Targets(0.6, 0.7)
    check_choice(result, targets)
    assert result.sur >= 0.6 and result.smr >= 0.7
    assert result.encodes == len(result.probes) == len(cache) == sum(fake.calls)
    assert 1 < len(result.probes) <= 9  # bisect over 100 levels, not a sweep
    decoded = codec_adapters.create("jpeg").decode(result.data)
    assert decoded.shape == small_photo.shape
    assert result.bpp == pytest.approx(8 * result.nbytes / (64 * 96))
    assert (result.width, result.height, result.model, result.extension) == (96, 64, "fake-psnr", "jpg")

    again = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, target_smr=0.7, predictor=fake, cache=cache)
    assert again.encodes == 0 and cache.hits == len(result.probes)
    assert (again.level, again.data) == (result.level, result.data)


def test_bisect_answer_is_no_bigger_than_exhaustive_would_allow(small_photo: np.ndarray) -> None:
    kwargs = dict(codec="jpeg", target_sur=0.7, target_smr=None, cache=EncodeCache())
    walked = compress_to_target(small_photo, predictor=PsnrPredictor(), **kwargs)  # type: ignore[arg-type]
    swept = compress_to_target(small_photo, predictor=PsnrPredictor(), strategy="exhaustive", **kwargs)  # type: ignore[arg-type]
    assert len(swept.probes) == 100 and swept.encodes == 100 - len(walked.probes)
    check_choice(swept, Targets(0.7, None))
    assert walked.nbytes >= swept.nbytes
    assert walked.level == swept.level  # PSNR-based SUR and JPEG bytes are monotone here


def test_path_input_and_a_named_predictor(
    tmp_path: Path, small_photo: np.ndarray, fake: PsnrPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[object, str]] = []

    def load(name: object, device: str) -> PsnrPredictor:
        seen.append((name, device))
        return fake

    monkeypatch.setattr(sursmr.compress, "cached_predictor", load)
    path = tmp_path / "photo.png"
    Image.fromarray(small_photo).save(path)
    result = compress_to_target(
        path, codec="jpeg", target_sur=0.5, predictor="some-model", device="cpu", cache=EncodeCache()
    )
    assert seen == [("some-model", "cpu")]
    check_choice(result, Targets(0.5, 0.9))


def test_unreachable_target_carries_closest_probe(small_photo: np.ndarray, fake: PsnrPredictor) -> None:
    with pytest.raises(TargetUnreachable) as info:
        compress_to_target(small_photo, codec="jpeg", target_sur=0.995, predictor=fake, cache=EncodeCache())
    assert info.value.best.level == 100 and info.value.probes == [info.value.best]
    assert info.value.exit_code == ExitCode.TARGET_UNREACHABLE


def test_budget_and_margin(small_photo: np.ndarray, fake: PsnrPredictor) -> None:
    cache = EncodeCache()
    plain = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, target_smr=None, predictor=fake, cache=cache)
    safer = compress_to_target(
        small_photo, codec="jpeg", target_sur=0.6, target_smr=None, margin=0.1, predictor=fake, cache=cache
    )
    assert safer.sur >= 0.7 and safer.nbytes >= plain.nbytes
    capped = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, predictor=fake, max_probes=2, cache=cache)
    assert len(capped.probes) == 2 and capped.sur >= 0.6


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"target_sur": 1.5}, InputError),
        ({"target_sur": None, "target_smr": None}, InputError),
        ({"strategy": "golden"}, InputError),
        ({"max_probes": 0}, InputError),
        ({"jobs": 0}, InputError),
        ({"options": {"colour": "blue"}}, InputError),
        ({"codec": "webp"}, UnknownNameError),
    ],
)
def test_bad_arguments_fail_before_any_work(
    small_photo: np.ndarray, fake: PsnrPredictor, kwargs: dict[str, object], error: type[Exception]
) -> None:
    arguments: dict[str, object] = {"codec": "jpeg", "predictor": fake, **kwargs}
    with pytest.raises(error):
        compress_to_target(small_photo, **arguments)  # type: ignore[arg-type]
    assert fake.calls == []


def test_cache_is_an_lru_bounded_in_bytes() -> None:
    cache = EncodeCache(max_bytes=10)
    keys = [EncodeCache.key("d", "jpeg", level, {"optimize": True}) for level in range(3)]
    cache.put(keys[0], b"aaaa")
    cache.put(keys[1], b"bbbb")
    assert cache.get(keys[0]) == b"aaaa"  # now the most recent
    cache.put(keys[2], b"cccc")
    assert keys[1] not in cache and keys[0] in cache and keys[2] in cache and cache.nbytes == 8
    cache.put(EncodeCache.key("d", "jpeg", 9, {}), b"x" * 11)  # larger than the whole cache: not kept
    assert len(cache) == 2
    assert EncodeCache.key("d", "jpeg", 1, {"a": 1, "b": 2}) == EncodeCache.key("d", "jpeg", 1, {"b": 2, "a": 1})


def test_rounds_match_the_encoders_that_really_run(
    small_photo: np.ndarray, fake: PsnrPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a codec not declared fast but measured fast encodes here: one level per round even with 8 jobs
    monkeypatch.setattr(JpegAdapter, "fast", False, raising=False)
    alone = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, predictor=fake, jobs=1, cache=EncodeCache())
    calls_alone = list(fake.calls)
    fake.calls.clear()
    eight = compress_to_target(small_photo, codec="jpeg", target_sur=0.6, predictor=fake, jobs=8, cache=EncodeCache())
    assert fake.calls == calls_alone and set(fake.calls) == {1}
    assert [p.level for p in eight.probes] == [p.level for p in alone.probes] and eight.encodes == len(eight.probes)


@pytest.mark.slow
def test_slow_codecs_encode_a_batch_per_round_in_workers(
    small_photo: np.ndarray, fake: PsnrPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make JPEG look slow so probes go to two worker processes, two levels per round
    monkeypatch.setattr(JpegAdapter, "fast", False, raising=False)
    monkeypatch.setattr(sursmr.compress, "FAST_ENCODE_S", 0.0)
    result = compress_to_target(
        small_photo, codec="jpeg", target_sur=0.6, target_smr=None, predictor=fake, jobs=2, cache=EncodeCache()
    )
    assert max(fake.calls) == 2
    check_choice(result, Targets(0.6, None))


def test_a_codec_with_a_threads_option_encodes_one_level_at_a_time_on_every_core(
    small_photo: np.ndarray, fake: PsnrPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # JPEG made to look slow and thread-invariant: no worker processes, one level per round, jobs threads each
    monkeypatch.setattr(JpegAdapter, "fast", False, raising=False)
    monkeypatch.setattr(JpegAdapter, "threads_option", "threads", raising=False)
    monkeypatch.setattr(sursmr.compress, "FAST_ENCODE_S", 0.0)
    seen: list[dict[str, object]] = []
    real = sursmr.compress.encode_candidate

    def spy(adapter: object, rgb: np.ndarray, level: int, options: dict[str, object]) -> object:
        seen.append(dict(options))
        return real(adapter, rgb, level, {k: v for k, v in options.items() if k != "threads"})  # type: ignore[arg-type]

    monkeypatch.setattr(sursmr.compress, "encode_candidate", spy)
    monkeypatch.setattr(sursmr.compress, "encoder_pool", None)  # a pool would fail loudly
    result = compress_to_target(
        small_photo, codec="jpeg", target_sur=0.6, target_smr=None, predictor=fake, jobs=3, cache=EncodeCache()
    )
    assert set(fake.calls) == {1} and result.encodes == len(result.probes) == len(seen)
    assert all(options.get("threads") == 3 for options in seen)
    check_choice(result, Targets(0.6, None))
    seen.clear()
    compress_to_target(small_photo, codec="jpeg", target_sur=0.6, predictor=fake, jobs=1, cache=EncodeCache())
    assert seen and all("threads" not in options for options in seen)  # one job: the codec's own setting


class _CurvedPsnr(PsnrPredictor):
    """:class:`PsnrPredictor` with a prior: its own scores at every level, so the first guess is the answer."""

    def __init__(self, prior: dict[int, tuple[float, float]]) -> None:
        super().__init__()
        self.prior = prior

    def curve(self, reference: np.ndarray, codec: str) -> dict[int, tuple[float, float]]:
        return self.prior


def test_the_encoder_is_timed_on_the_searchs_first_probe_not_on_the_best_level(
    small_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(JpegAdapter, "fast", False, raising=False)
    kwargs: dict[str, Any] = {"codec": "jpeg", "target_sur": 0.6, "target_smr": None, "jobs": 1}
    swept = compress_to_target(small_photo, predictor=PsnrPredictor(), strategy="exhaustive", **kwargs)
    prior = {p.level: (p.sur, p.smr) for p in swept.probes}
    guided = _CurvedPsnr(prior)
    # two jobs and a slow-looking codec: plan() times one encode before the search
    kwargs["jobs"] = 2
    result = compress_to_target(small_photo, predictor=guided, strategy="predicted", cache=EncodeCache(), **kwargs)
    levels = [p.level for p in result.probes]
    assert result.level == swept.level and 100 not in levels
    assert result.encodes == len(result.probes)  # the timing encode was the first probe, not an extra one
    axis = JpegAdapter.levels
    targets = Targets(0.6, None)
    assert opening_level(axis, targets, "predicted", prior) == levels[0] == swept.level
    assert opening_level(axis, targets, "bisect", prior) == opening_level(axis, targets, "predicted", None) == 100


# --- CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_fake(monkeypatch: pytest.MonkeyPatch) -> PsnrPredictor:
    predictor = PsnrPredictor()
    monkeypatch.setattr(sursmr.compress, "cached_predictor", lambda name=None, device="auto": predictor)
    return predictor


def test_cli_writes_the_output_and_reports_json(photo_png: Path, tmp_path: Path, cli_fake: PsnrPredictor) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["compress", str(photo_png), "--codec", "jpeg", "--target-smr", "0.7", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    (row,) = json_lines(result.stdout)
    assert set(row) >= {"input", "output", "codec", "level", "bytes", "bpp", "sur", "smr", "probes", "seconds"}
    written = out / "photo.jpg"
    assert row["output"] == str(written) and written.stat().st_size == row["bytes"]
    assert float(row["sur"]) >= 0.75 and float(row["smr"]) >= 0.7  # type: ignore[arg-type]
    assert codec_adapters.create("jpeg").decode(written.read_bytes()).shape == (64, 96, 3)
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg", "sursmr-manifest.jsonl"]


def test_cli_thorough_is_recorded_in_the_manifest(photo_png: Path, tmp_path: Path, cli_fake: PsnrPredictor) -> None:
    out = tmp_path / "out"
    base = ["compress", str(photo_png), "--codec", "jpeg", "--target-smr", "0.7", "-o", str(out), "--json", "--force"]
    assert CliRunner().invoke(main, [*base, "--thorough"]).exit_code == 0
    assert CliRunner().invoke(main, base).exit_code == 0
    lines = [json.loads(line) for line in (out / "sursmr-manifest.jsonl").read_text().splitlines()]
    assert [line["thorough"] for line in lines] == [True, False]


def test_cli_default_output_sits_beside_the_input_and_table_output(photo_png: Path, cli_fake: PsnrPredictor) -> None:
    result = CliRunner().invoke(main, ["compress", str(photo_png), "--codec", "jpeg", "--target-smr", "none"])
    assert result.exit_code == 0, result.output
    assert (photo_png.parent / "photo.sursmr.jpg").is_file()
    assert result.stdout.split()[:3] == ["input", "output", "codec"]


def test_cli_unreachable_target_exits_5_and_leaves_no_file(
    photo_png: Path, tmp_path: Path, cli_fake: PsnrPredictor
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["compress", str(photo_png), "--codec", "jpeg", "--target-sur", "0.995", "-o", str(out), "--json"]
    )
    assert result.exit_code == ExitCode.TARGET_UNREACHABLE
    (row,) = json_lines(result.stdout)
    assert "error" in row and row["output"] is None and row["closest"]["level"] == 100  # type: ignore[index]
    assert [p.name for p in out.iterdir()] == ["sursmr-manifest.jsonl"]  # the failure is recorded, no image


def test_cli_processes_every_image_and_exits_with_the_worst_code(
    photo_png: Path, tmp_path: Path, cli_fake: PsnrPredictor
) -> None:
    missing = tmp_path / "missing.png"
    jpeg_input = tmp_path / "photo2.jpg"
    jpeg_input.write_bytes(codec_adapters.create("jpeg").encode(np.asarray(Image.open(photo_png)), 95))
    result = CliRunner().invoke(
        main, ["compress", str(missing), str(photo_png), str(jpeg_input), "--codec", "jpeg", "-o", str(tmp_path)]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "no such file" in result.stderr and "overwrite the input" in result.stderr
    assert (tmp_path / "photo.jpg").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["--target-sur", "1.5"],
        ["--target-sur", "lots"],
        ["--margin", "-0.1"],
        ["--strategy", "golden"],
        ["--codec", "x"],
    ],
)
def test_cli_bad_arguments_exit_2(photo_png: Path, cli_fake: PsnrPredictor, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["compress", str(photo_png), "--codec", "jpeg", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert cli_fake.calls == []
    assert not (photo_png.parent / "photo.sursmr.jpg").exists()


def test_cli_reads_the_image_before_loading_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    monkeypatch.setattr(sursmr.compress, "cached_predictor", lambda *args, **kwargs: loads.append(args))
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "missing.png"), "--codec", "jpeg"])
    assert result.exit_code == ExitCode.USAGE and "no such file" in result.stderr
    assert loads == []


def test_cli_help_has_examples() -> None:
    result = CliRunner().invoke(main, ["compress", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--target-smr" in result.output


@pytest.mark.slow
def test_cli_end_to_end_with_a_model_file(photo_png: Path, tmp_path: Path) -> None:
    """Real codec, real network loaded from a weights file (tiny and random: only for tests)."""
    import torch

    from sursmr.models import create_model
    from sursmr.predictor import Predictor

    torch.manual_seed(0)
    weights = tmp_path / "tiny-random.safetensors"
    Predictor.from_model(create_model("sursmr_tiny")).save(weights)
    result = CliRunner().invoke(
        main,
        [
            "compress",
            str(photo_png),
            "--codec",
            "jpeg",
            "--model",
            str(weights),
            "--target-sur",
            "0",
            "--target-smr",
            "0",
            "--device",
            "cpu",
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = json_lines(result.stdout)
    assert row["model"] == "sursmr_tiny" and Path(str(row["output"])).stat().st_size == row["bytes"]
