"""compress_to_target and `sursmr compress` with real codecs and a fake (fidelity-based) predictor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import codec_adapters
import sursmr.compress as compress_module
from sursmr import fidelity
from sursmr.cli import main
from sursmr.compress import EncodeCache, compress_to_target
from sursmr.errors import ExitCode, TargetUnreachable
from sursmr.imaging import RGBImage
from sursmr.scoring import Prediction


class PsnrPredictor:
    """SUR rises with PSNR (25 → 0, 40 dB → 1), SMR with SSIM; counts what it scores."""

    name = "fake-psnr"

    def __init__(self) -> None:
        self.scored = 0

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        self.scored += len(candidates)
        out = []
        for cand in candidates:
            sur = float(np.clip((fidelity.psnr(reference, cand) - 25) / 15, 0, 1))
            smr = float(np.clip((fidelity.ssim(reference, cand) - 0.7) / 0.3, 0, 1))
            out.append(Prediction(sur, smr))
        return out


@pytest.fixture
def photo(small_photo: np.ndarray) -> np.ndarray:
    return small_photo


def test_result_passes_decodes_and_is_smallest_passing(photo: np.ndarray) -> None:
    predictor = PsnrPredictor()
    result = compress_to_target(
        photo, codec="jpeg", target_sur=0.5, target_smr=0.5, predictor=predictor, cache=EncodeCache()
    )
    assert result.sur >= 0.5 and result.smr >= 0.5
    passing = [p for p in result.probes if p.sur >= 0.5 and p.smr >= 0.5]
    assert result.nbytes == min(p.nbytes for p in passing)
    decoded = codec_adapters.create("jpeg").decode(result.data)
    assert decoded.shape == photo.shape
    assert len(result.probes) < 15  # bisection, not a sweep of 100 levels
    exhaustive = compress_to_target(
        photo,
        codec="jpeg",
        target_sur=0.5,
        target_smr=0.5,
        predictor=PsnrPredictor(),
        strategy="exhaustive",
        cache=EncodeCache(),
    )
    assert len(exhaustive.probes) == 100
    assert exhaustive.nbytes <= result.nbytes


def test_cache_avoids_re_encoding(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = EncodeCache()
    first = compress_to_target(
        photo, codec="jpeg", target_sur=0.6, target_smr=None, predictor=PsnrPredictor(), cache=cache
    )
    encoded: list[int] = []
    real = compress_module.encode_levels

    def spy(*args: object, **kwargs: object) -> object:
        encoded.extend(args[2])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compress_module, "encode_levels", spy)
    again = compress_to_target(
        photo, codec="jpeg", target_sur=0.6, target_smr=None, predictor=PsnrPredictor(), cache=cache
    )
    assert encoded == [] and cache.hits >= len(again.probes)
    assert again.level == first.level and again.data == first.data


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["bpg", "vvc"])
def test_slow_codecs_in_worker_processes(codec: str, photo: np.ndarray) -> None:
    cls = codec_adapters.get(codec)
    if not cls.availability().available:
        pytest.skip(f"{codec} unavailable: {cls.availability().reason}")
    result = compress_to_target(
        photo, codec=codec, target_sur=0.4, target_smr=None, predictor=PsnrPredictor(), jobs=2, cache=EncodeCache()
    )
    assert result.sur >= 0.4 and cls.levels.lo <= result.level <= cls.levels.hi
    assert codec_adapters.create(codec).decode(result.data).shape == photo.shape


def test_unreachable_target_raises_with_best_attempt(photo: np.ndarray) -> None:
    with pytest.raises(TargetUnreachable) as info:
        compress_to_target(
            photo, codec="jpeg", target_sur=1.0, target_smr=1.0, predictor=PsnrPredictor(), cache=EncodeCache()
        )
    assert info.value.best is not None and info.value.probes


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compress_module, "load_predictor", lambda name=None, device="auto": PsnrPredictor())


def rows(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cli_writes_outputs_and_reports_json(fake_model: None, photo: np.ndarray, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "compress",
            str(source),
            "--codec",
            "jpeg",
            "--target-sur",
            "0.5",
            "--target-smr",
            "0.4",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = rows(result.stdout)
    assert set(row) >= {"input", "output", "codec", "level", "bytes", "bpp", "sur", "smr", "probes", "seconds"}
    written = Path(str(row["output"]))
    assert written.parent == out and written.stat().st_size == row["bytes"]


def test_cli_unreachable_exits_5_and_writes_nothing(fake_model: None, photo: np.ndarray, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "compress",
            str(source),
            "--codec",
            "jpeg",
            "--target-sur",
            "1",
            "--target-smr",
            "1",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == ExitCode.TARGET_UNREACHABLE
    (row,) = rows(result.stdout)
    assert row["exit_code"] == ExitCode.TARGET_UNREACHABLE and "closest" in row
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    "args", [["--target-sur", "1.5"], ["--target-sur", "none", "--target-smr", "none"], ["--codec", "webp2000"]]
)
def test_cli_bad_usage_exits_2(fake_model: None, photo: np.ndarray, tmp_path: Path, args: list[str]) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    codec = [] if "--codec" in args else ["--codec", "jpeg"]
    result = CliRunner().invoke(main, ["compress", str(source), *codec, *args])
    assert result.exit_code == ExitCode.USAGE, result.output


def test_cli_missing_weights_exit_6(photo: np.ndarray, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    result = CliRunner().invoke(
        main, ["compress", str(source), "--codec", "jpeg", "--model", str(tmp_path / "nothing.safetensors")]
    )
    assert result.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert "sursmr-train" in result.stderr
