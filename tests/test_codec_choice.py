"""--codec auto / lists: the smallest passing bitstream across codecs (sursmr.codec_choice)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from _batch_helpers import PsnrPredictor, use_psnr_predictor

import codec_adapters
from codec_adapters.base import CodecAdapter
from sursmr.codec_choice import ChoiceSettings, compress_any_codec, resolve_codecs, search_order
from sursmr.compress import EncodeCache, compress_to_target
from sursmr.manifest import MANIFEST_NAME, read_manifest
from sursmr.scoring import Prediction
from sursmr_core.errors import InputError, TargetUnreachable
from sursmr_core.levels import LevelAxis


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


# --- codec_search verify / full, with fake codecs whose every level's score is known ----------------------------


class _LevelCodec(CodecAdapter):
    """Decodes to an image holding the level (red) and the codec's id (green); bytes grow with the level."""

    levels = LevelAxis(0, 30, "higher")
    default_level = 15
    fast = True
    code: ClassVar[int]
    bytes_per_level: ClassVar[int]

    def _encode(self, rgb: np.ndarray, level: int, options: dict[str, Any]) -> bytes:
        header = np.array([rgb.shape[0], rgb.shape[1], level, self.code], dtype="<u4").tobytes()
        return header + bytes(self.bytes_per_level * (level + 1))

    def _decode(self, data: bytes) -> np.ndarray:
        height, width, level, code = (int(v) for v in np.frombuffer(data[:16], dtype="<u4"))
        out = np.zeros((height, width, 3), dtype=np.uint8)
        out[..., 0], out[..., 1] = level, code
        return out


class LeadCodec(_LevelCodec):
    name, extension, code, bytes_per_level, choice_rank = "lead", "lead", 1, 100, 0


class SecondCodec(_LevelCodec):
    name, extension, code, bytes_per_level, choice_rank = "second", "sec", 2, 60, 1


class ThirdCodec(_LevelCodec):
    name, extension, code, bytes_per_level, choice_rank = "third", "thd", 3, 80, 2
    fast = False  # encoded in worker processes when jobs > 1, so a search times its encoder first


FAKE_CODECS = (LeadCodec, SecondCodec, ThirdCodec)


class TableScorer:
    """SUR 0.9 from each codec's boundary level up, 0.1 below; SMR 1. Its curve: the same step ``prior_at``."""

    name = "table-scorer"
    weights_sha256 = None

    def __init__(self, boundary: dict[str, int], prior_at: dict[str, int | None]) -> None:
        self.boundary, self.prior_at = boundary, prior_at
        self.scored: list[tuple[str, int]] = []

    def predict(self, reference: np.ndarray, candidates: Sequence[np.ndarray]) -> list[Prediction]:
        names = {c.code: c.name for c in FAKE_CODECS}
        out = []
        for candidate in candidates:
            name, level = names[int(candidate[0, 0, 1])], int(candidate[0, 0, 0])
            self.scored.append((name, level))
            out.append(Prediction(sur=0.9 if level >= self.boundary[name] else 0.1, smr=1.0))
        return out

    def curve(self, reference: np.ndarray, codec: str) -> dict[int, tuple[float, float]] | None:
        at = self.prior_at[codec]
        if at is None:
            return None
        return {level: (1.0 / (1.0 + math.exp(-(level - at + 0.5))), 1.0) for level in range(31)}


@pytest.fixture
def fake_codecs() -> Iterator[None]:
    with codec_adapters.CODECS.scope():
        for cls in FAKE_CODECS:
            codec_adapters.CODECS.register(cls, name=cls.name)
        yield


def choose(scorer: TableScorer, codecs: str, search: str = "verify", jobs: int = 2) -> Any:
    return compress_any_codec(
        image(),
        codecs=codecs,
        codec_search=search,
        predictor=scorer,
        target_sur=0.5,
        target_smr=None,
        margin=0.0,
        jobs=jobs,
        cache=EncodeCache(),
    )


def test_verify_searches_the_lowest_rank_and_checks_one_level_of_each_other_codec(fake_codecs: None) -> None:
    # every codec's prior guesses level 10; this image needs 3 levels more on every codec
    scorer = TableScorer({"lead": 13, "second": 13, "third": 13}, {"lead": 10, "second": 10, "third": 10})
    choice = choose(scorer, "third,second,lead")  # listed order is not the search order: ranks are
    summary = choice.summary()
    assert list(summary) == ["third", "second", "lead"]
    assert summary["lead"]["search"] == "full" and summary["lead"]["encodes"] >= 2
    for name in ("second", "third"):
        # third is not fast and jobs is 2: a search would also time its encoder, a check encodes one level only
        assert summary[name]["search"] == "verify"
        assert summary[name]["encodes"] == 1 and summary[name]["probes"] == 1
        assert summary[name]["level"] == 13  # the lead's shift carried over: exactly the boundary
    assert [n for n, _ in scorer.scored].count("second") == 1 and [n for n, _ in scorer.scored].count("third") == 1
    assert scorer.scored[0][0] == "lead"
    assert choice.best.codec == "second" and choice.best.nbytes == min(r.nbytes for r in choice.results.values())
    assert choice.encodes == sum(entry["encodes"] for entry in summary.values())


def test_a_failing_check_is_never_the_result(fake_codecs: None) -> None:
    # second's check lands on 13 (the lead's shift) but second needs 20 there: its smaller bitstream fails
    scorer = TableScorer({"lead": 13, "second": 20, "third": 13}, {"lead": 10, "second": 10, "third": 10})
    choice = choose(scorer, "lead,second,third")
    assert "second" not in choice.results and choice.searches["second"] == "verify"
    entry = choice.summary()["second"]
    assert entry["error"] == "predicted level misses the targets" and entry["encodes"] == 1
    assert entry["closest"]["level"] == 13 and entry["closest"]["bytes"] < choice.best.nbytes
    assert choice.best.codec == "third" and choice.best.sur >= 0.5


def test_full_search_is_one_search_per_codec_as_before(fake_codecs: None) -> None:
    scorer = TableScorer({"lead": 13, "second": 25, "third": 17}, {"lead": 10, "second": 10, "third": 10})
    choice = choose(scorer, "lead,second,third", search="full")
    assert set(choice.searches.values()) == {"full"}
    for name in ("lead", "second", "third"):
        alone = compress_to_target(
            image(),
            codec=name,
            predictor=scorer,
            target_sur=0.5,
            target_smr=None,
            margin=0.0,
            jobs=2,
            cache=EncodeCache(),
        )
        result = choice.results[name]
        assert (result.level, result.nbytes, result.encodes) == (alone.level, alone.nbytes, alone.encodes)
        assert result.level == scorer.boundary[name]
    assert choice.best.codec == "lead"  # 14 levels x 100 bytes beat 26 x 60 and 18 x 80


def test_when_the_first_codec_finds_nothing_the_next_is_searched_and_a_codec_without_a_curve_too(
    fake_codecs: None,
) -> None:
    # lead never passes; second (next by rank) is searched in full; third has no curve, so it is searched too
    scorer = TableScorer({"lead": 99, "second": 12, "third": 15}, {"lead": 10, "second": 10, "third": None})
    choice = choose(scorer, "lead,second,third")
    assert choice.searches == {"lead": "full", "second": "full", "third": "full"}
    assert "lead" in choice.unreachable and choice.summary()["lead"]["error"] == "target unreachable"
    assert choice.summary()["lead"]["encodes"] >= 2
    assert choice.results["second"].level == 12 and choice.results["third"].level == 15
    # with a curve, third is checked at one level instead
    scorer = TableScorer({"lead": 99, "second": 12, "third": 12}, {"lead": 10, "second": 10, "third": 10})
    choice = choose(scorer, "lead,second,third")
    assert choice.searches["third"] == "verify" and choice.summary()["third"]["encodes"] == 1


def test_no_codec_passing_raises_with_every_probe_and_the_encodes(fake_codecs: None) -> None:
    scorer = TableScorer({"lead": 99, "second": 99, "third": 99}, {"lead": 10, "second": 10, "third": 10})
    with pytest.raises(TargetUnreachable, match="no codec of lead, second, third") as caught:
        choose(scorer, "lead,second,third", jobs=1)
    assert caught.value.encodes == len(caught.value.probes) == len(scorer.scored)


def test_choice_settings_check_the_codec_search_and_name_it_in_their_identity(fake_codecs: None) -> None:
    with pytest.raises(InputError, match="codec search"):
        ChoiceSettings.create(codecs="lead,second", codec_search="fastest")
    settings = ChoiceSettings.create(codecs="second,lead")
    assert settings.search == "verify" and settings.identity()["codec_search"] == "verify"
    assert ChoiceSettings.create(codecs="second,lead", codec_search="full").identity()["codec_search"] == "full"
    assert search_order(["third", "second", "lead"]) == ["lead", "second", "third"]


def test_cli_codec_search_says_how_each_codec_was_searched(
    tmp_path: Path, fake_codecs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import photo_crop
    from PIL import Image

    import sursmr.compress
    import sursmr.predictor

    scorer = TableScorer({"lead": 13, "second": 13, "third": 13}, {"lead": 10, "second": 10, "third": 10})
    monkeypatch.setattr(sursmr.compress, "cached_predictor", lambda name=None, device="auto": scorer)
    monkeypatch.setattr(sursmr.predictor, "identify", lambda spec=None, **_: (scorer.name, scorer.weights_sha256))
    path = tmp_path / "a.png"
    Image.fromarray(photo_crop(48, 64)).save(path)
    for search, expected in (("verify", ["full", "verify", "verify"]), ("full", ["full", "full", "full"])):
        out = tmp_path / search
        code, rows, stderr = cli(
            *(str(path), "--codec", "lead,second,third", "--codec-search", search, "--target-sur", "0.5"),
            *("--target-smr", "none", "--margin", "0", "-o", str(out), "--json"),
        )
        assert code == 0, stderr
        per_codec = rows[0]["per_codec"]
        assert [per_codec[n]["search"] for n in ("lead", "second", "third")] == expected
        assert all(isinstance(entry["encodes"], int) for entry in per_codec.values())
        (record,) = read_manifest(out / MANIFEST_NAME)
        assert record["codec_search"] == search and record["per_codec"] == per_codec
    code, _, stderr = cli(str(path), "--codec", "lead,second", "--codec-search", "fastest")
    assert code == 2 and "fastest" in stderr


def test_the_help_names_the_declared_search_order() -> None:
    from click.testing import CliRunner

    from sursmr.cli import main
    from sursmr.cli.compress import CHOICE_ORDER

    assert ", ".join(search_order(codec_adapters.list())) == CHOICE_ORDER
    result = CliRunner().invoke(main, ["compress", "--help"])
    assert result.exit_code == 0 and CHOICE_ORDER in " ".join(result.output.split())
