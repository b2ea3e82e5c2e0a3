"""--codec auto / lists: the smallest passing bitstream across codecs (sursmr.codec_choice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _batch_helpers import PsnrPredictor, use_psnr_predictor

import codec_adapters
from sursmr.codec_choice import compress_any_codec, resolve_codecs
from sursmr.compress import EncodeCache
from sursmr.manifest import MANIFEST_NAME, read_manifest
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


# --- sursmr compress --codec auto / a list --------------------------------------------------------------------------


def jpeg_and_bpg() -> list[str]:
    names = [
        n for n in ("jpeg", "bpg") if n in codec_adapters.list() and codec_adapters.get(n).availability().available
    ]
    if len(names) < 2:
        pytest.skip(f"needs JPEG and BPG (libbpg), have {names}")
    return names


@pytest.fixture
def psnr_model(monkeypatch: pytest.MonkeyPatch) -> PsnrPredictor:
    return use_psnr_predictor(monkeypatch)


def photo_tree(root: Path) -> Path:
    from conftest import photo_crop
    from PIL import Image

    (root / "sub").mkdir(parents=True)
    Image.fromarray(photo_crop(48, 64)).save(root / "a.png")
    Image.fromarray(photo_crop(48, 64, top=90, left=60)).save(root / "sub" / "b.png")
    return root


def cli(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    from click.testing import CliRunner
    from conftest import json_lines

    from sursmr.cli import main

    result = CliRunner().invoke(main, ["compress", "-j", "1", *args])
    return result.exit_code, json_lines(result.stdout), result.stderr  # type: ignore[return-value]


@pytest.mark.slow
def test_cli_codec_list_picks_the_smallest_and_names_the_output_after_it(
    tmp_path: Path, psnr_model: PsnrPredictor
) -> None:
    names = jpeg_and_bpg()
    src, out = photo_tree(tmp_path / "in"), tmp_path / "out"
    code, rows, stderr = cli(str(src), "-r", "--codec", ",".join(names), "-o", str(out), "--json")
    assert code == 0, stderr
    assert len(rows) == 2
    for row in rows:
        per_codec = row["per_codec"]
        assert set(per_codec) == set(names)
        passing = {name: entry["bytes"] for name, entry in per_codec.items() if "bytes" in entry}
        assert row["bytes"] == min(passing.values()) and per_codec[row["codec"]]["level"] == row["level"]
        output = Path(row["output"])
        assert output.suffix == "." + codec_adapters.get(row["codec"]).extension
        assert output.stat().st_size == row["bytes"]
        assert codec_adapters.create(row["codec"]).decode(output.read_bytes()).shape == (48, 64, 3)
    records = read_manifest(out / MANIFEST_NAME)
    assert len(records) == 2
    for record in records:
        assert record["codecs"] == names and record["codec"] in names
        assert set(record) >= {"level", "bytes", "output_sha256"}
        assert set(record["options"]) == set(names)
    # resume finds each image under its winner's name; other codec lists do not match
    code, rows, _ = cli(str(src), "-r", "--codec", ",".join(names), "-o", str(out), "--json", "--resume")
    assert code == 0 and all(r.get("skipped") is True for r in rows)
    code, rows, _ = cli(str(src), "-r", "--codec", names[0], "-o", str(out), "--json", "--resume")
    assert code == 0 and not any(r.get("skipped") for r in rows)


def test_cli_codec_auto_uses_every_available_codec(tmp_path: Path, psnr_model: PsnrPredictor) -> None:
    from conftest import photo_crop
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray(photo_crop(48, 64)).save(path)
    code, rows, stderr = cli(str(path), "--codec", "auto", "--target-smr", "none", "-o", str(tmp_path / "o"), "--json")
    assert code == 0, stderr
    (row,) = rows
    assert list(row["per_codec"]) == resolve_codecs("auto")


def test_cli_codec_list_errors(tmp_path: Path, psnr_model: PsnrPredictor, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import photo_crop
    from PIL import Image

    from sursmr_core.errors import ExitCode

    path = tmp_path / "a.png"
    Image.fromarray(photo_crop(48, 64)).save(path)
    code, _, stderr = cli(str(path), "--codec", "jpeg,webp2000")
    assert code == ExitCode.USAGE and "webp2000" in stderr
    code, _, stderr = cli(str(path), "--codec", "auto,jpeg")
    assert code == ExitCode.USAGE and "auto" in stderr
    code, rows, _ = cli(str(path), "--codec", "jpeg,jpeg", "--target-sur", "0.999", "--json")
    assert code == ExitCode.TARGET_UNREACHABLE and "no codec of jpeg" in str(rows[0]["error"])
    for name in codec_adapters.list():
        unavailable = type("Off", (), {"available": False, "reason": "switched off by the test"})()
        monkeypatch.setattr(codec_adapters.get(name), "availability", classmethod(lambda cls, u=unavailable: u))
    code, _, stderr = cli(str(path), "--codec", "auto")
    assert code == ExitCode.USAGE and "no codec is available" in stderr
    assert not list(tmp_path.glob("a.sursmr.*"))


@pytest.mark.slow
def test_cli_codec_list_with_a_model_file(tmp_path: Path) -> None:
    """Real JPEG and BPG, real (tiny, random) network loaded from a weights file."""
    import torch

    from sursmr.models import create_model
    from sursmr.predictor import Predictor

    names = jpeg_and_bpg()
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    Predictor.from_model(create_model("sursmr_tiny")).save(weights)
    src = photo_tree(tmp_path / "in")
    code, rows, stderr = cli(
        *(str(src), "-r", "--codec", ",".join(names), "--model", str(weights), "--device", "cpu"),
        *("--target-sur", "0.1", "--target-smr", "0.1", "-o", str(tmp_path / "out"), "--json"),
    )
    assert code == 0, stderr
    assert len(rows) == 2 and all(set(r["per_codec"]) == set(names) and Path(r["output"]).is_file() for r in rows)
