"""``sursmr-train`` labellers, recipe, build, curve (on isolated fake labellers) and the train options."""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import photo_crop
from PIL import Image

from sursmr_core.errors import ExitCode, InputError
from sursmr_core.levels import Availability
from training.cli import main as train_main
from training.datasets import labelling
from training.datasets.recipe import DEFAULT_RECIPE, CodecPlan, Recipe
from training.labels import pseudo_sur, smr
from training.machines.base import MACHINES, Machine
from training.metrics.base import METRICS, Metric


class FakeMae(Metric):
    name = "fake_mae"
    lower_is_better = True
    version = "7"

    def score(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        return float(np.abs(reference.astype(np.float64) - distorted).mean())


class FakeMissing(Metric):
    name = "fake_missing"
    lower_is_better = False

    @classmethod
    def availability(cls) -> Availability:
        return Availability(False, "needs weights file X")

    def score(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        raise AssertionError("never called")


class FakeBrightness(Machine):
    name = "fake_brightness"
    task = "classification"
    version = "2"
    rule = "mean brightness bucket (of 8) unchanged"

    def analyse(self, rgb: np.ndarray) -> Any:
        return int(rgb.mean() // 32)

    def satisfied(self, original: Any, compressed: Any) -> bool:
        return bool(original == compressed)


# the real label maths (Eq. 3, SMR); only the JND calibration, which needs calibrated metrics, is faked
FAKE_MODULES = {
    "pseudo_sur": pseudo_sur,
    "smr": smr,
    "jnd_proxy": types.SimpleNamespace(
        __name__="fake_jnd",
        jnd_proxy=lambda name: name,  # the named calibration is passed back as the config
        usable_scales=lambda h, w, config: [types.SimpleNamespace(metric="fake_mae")],
        jnd_sur=lambda values, config: np.clip(1 - np.asarray(values["fake_mae"]) / 8.0, 0, 1),
    ),
}


@pytest.fixture
def fake_registries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the fakes above are registered (and the JND calibration is faked) for one test."""
    monkeypatch.setattr(labelling, "_labels_module", lambda name: FAKE_MODULES[name])
    monkeypatch.setattr(labelling, "_PIPELINES", {})
    with (
        METRICS.only({"fake_mae": FakeMae, "fake_missing": FakeMissing}),
        MACHINES.only({"fake_brightness": FakeBrightness}),
    ):
        yield


def test_labellers_json_lists_availability(fake_registries: None) -> None:
    result = CliRunner().invoke(train_main, ["labellers", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"fake_mae", "fake_missing", "fake_brightness"}
    assert rows["fake_mae"]["available"] is True and rows["fake_mae"]["direction"] == "lower is better"
    assert rows["fake_mae"]["version"] == "7" and rows["fake_mae"]["kind"] == "metric"
    assert rows["fake_missing"]["available"] is False and rows["fake_missing"]["reason"] == "needs weights file X"
    machine = rows["fake_brightness"]
    assert machine["kind"] == "machine" and machine["task"] == "classification" and "bucket" in machine["rule"]
    assert machine["applicability"] == "always votes"  # Machine's default: applies to every original
    table = CliRunner().invoke(train_main, ["labellers"])
    assert table.exit_code == 0 and "fake_missing" in table.stdout


@pytest.mark.slow
def test_labellers_json_on_the_real_registries() -> None:
    """Every real registry entry declares availability and, when unavailable, a reason."""
    result = CliRunner().invoke(train_main, ["labellers", "--json"])
    assert result.exit_code == 0, result.output
    for row in map(json.loads, result.stdout.splitlines()):
        assert isinstance(row["available"], bool)
        assert row["available"] or row["reason"], row


def test_recipe_show_prints_the_default_recipe_json() -> None:
    result = CliRunner().invoke(train_main, ["recipe", "--show"])
    assert result.exit_code == 0, result.output
    assert Recipe.from_json(result.stdout) == DEFAULT_RECIPE


def test_build_cli_limit_and_resume(fake_registries: None, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo_crop(64, 96)).save(photos / "a.png")
    recipe = Recipe(
        name="cli",
        collections=(),
        source_dirs=(str(photos),),
        crop_sizes=((32, 48),),
        crops_per_source=3,
        codecs=(CodecPlan("jpeg", (20, 50, 80)),),
    )
    recipe_path = tmp_path / "r.json"
    recipe_path.write_text(recipe.to_json())
    out = tmp_path / "ds"
    args = ["build", "--recipe", str(recipe_path), "--out", str(out), "--jobs", "1", "--json", "-q"]
    first = CliRunner().invoke(train_main, [*args, "--limit", "2"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.splitlines()[-1])
    assert summary["built"] == 2 and summary["failed"] == 0
    header = json.loads((out / "dataset.json").read_text())
    assert header["labellers"]["skipped"] == {"metric:fake_missing": "needs weights file X"}
    assert header["labellers"]["jnd_proxy"] == "fake_jnd.jnd_sur[konjnd]"  # the recipe's calibration
    second = CliRunner().invoke(train_main, args)
    summary = json.loads(second.stdout.splitlines()[-1])
    assert summary["already_done"] == 2 and summary["built"] == 1
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 3
    assert all(r["labels"]["sur_jnd_proxy"] is not None for r in records)


def test_build_cli_bad_recipe_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"codecs": []}')
    result = CliRunner().invoke(train_main, ["build", "--recipe", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code == ExitCode.USAGE
    assert "lists no codecs" in result.output


@pytest.mark.slow
def test_train_curve_writes_plot_and_json(fake_registries: None, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from training.cli import main as train_main

    image = tmp_path / "photo.png"
    Image.fromarray(photo_crop(64, 96)).save(image)
    out = tmp_path / "plots"
    result = CliRunner().invoke(
        train_main,
        [
            "curve",
            str(image),
            "--codec",
            "jpeg",
            "--levels",
            "10,40,70,95",
            "--out",
            str(out),
            "--json",
            "--min-applicable",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    levels = [row for row in rows if "level" in row]
    assert [row["level"] for row in levels] == [95, 70, 40, 10]  # best quality first
    assert levels[0]["pseudo_sur_eq3"] == 1.0 and levels[-1]["pseudo_sur_eq3"] == 0.0
    assert all(0 <= row["sur_jnd_proxy"] <= 1 and row["smr"] in (0.0, 1.0) for row in levels)
    files = rows[-1]
    png = Path(files["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads(Path(files["json"]).read_text())
    assert document["labels_are_proxies"] is True and len(document["scores"]["fake_mae"]) == 4


# --- `sursmr-train train` options come from TrainConfig --------------------------------


def _train_options() -> dict[str, click.Option]:
    from training.cli.train import train as train_command

    return {p.name: p for p in train_command.params if isinstance(p, click.Option) and p.name}


def test_train_options_are_the_config_fields_with_their_defaults_and_help() -> None:
    from training.train.config import TrainConfig

    options = _train_options()
    for item in dataclasses.fields(TrainConfig):
        option = options[item.name]
        assert option.help == item.metadata["help"], item.name
        if item.metadata.get("negated"):  # --full turns freeze_backbone off
            assert option.is_flag and option.default is False and item.default is True
        elif item.default is not dataclasses.MISSING:
            assert option.default == item.default, item.name
        else:
            assert option.required == (item.default_factory is dataclasses.MISSING), item.name
    # the flags the command always had keep their spelling
    flags = {flag for option in options.values() for flag in option.opts + option.secondary_opts}
    assert flags >= {
        "--data", "--out", "--model", "--stage", "--labels", "--init", "--full", "--epochs", "--batch-size", "--lr",
        "--seed", "--device", "--limit", "--threads", "--ema", "--alpha", "--beta", "--weight-decay",
        "--identity-share", "--set", "--json", "-q",
    }  # fmt: skip


def _parsed(args: list[str]) -> Any:
    from training.cli.train import train as train_command
    from training.train.config import TrainConfig

    context = train_command.make_context("train", ["--data", "d", "--out", "o", *args])
    settings = {k: v for k, v in context.params.items() if k not in ("quiet", "as_json")}
    return TrainConfig(**settings)


def test_train_options_build_the_config() -> None:
    from training.train.config import TrainConfig

    assert _parsed([]) == TrainConfig(data="d", out="o")
    config = _parsed(
        ["--full", "--labels", "eq3", "--ema", "0.5", "--no-flip", "--set", "fuse_size=[14,14]", "--set", "head=mixer"]
    )
    assert not config.freeze_backbone and config.label_kind == "eq3" and config.ema_decay == 0.5 and not config.flip
    assert dict(config.model_overrides) == {"fuse_size": (14, 14), "head": "mixer"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "x>=1"),
        (["--lr", "0"], "x>0"),
        (["--ema", "1"], "0<=x<1"),
        (["--stage", "warmup"], "pretrain"),
        (["--set", "no-equals-sign"], "FIELD=JSON"),
    ],
)
def test_train_options_refuse_what_the_config_refuses(args: list[str], message: str) -> None:
    from training.train.config import TrainConfig

    result = CliRunner().invoke(train_main, ["train", "--data", "d", "--out", "o", *args])
    assert result.exit_code == ExitCode.USAGE and message in result.output
    field_name = {"--epochs": "epochs", "--lr": "lr", "--ema": "ema_decay"}.get(args[0])
    if field_name is not None:  # the library checks the same range
        with pytest.raises(InputError, match=field_name):
            TrainConfig(data="d", out="o", **{field_name: float(args[1])})


def test_config_options_follow_any_dataclass() -> None:
    from training.cli._options import config_options
    from training.train.config import setting

    @dataclasses.dataclass(frozen=True)
    class Toy:
        size: int = dataclasses.field(default=3, metadata=setting("How many.", low=1, high=9))
        mode: Literal["a", "b"] = dataclasses.field(default="a", metadata=setting("Which."))
        fast: bool = dataclasses.field(default=False, metadata=setting("Hurry."))

    @click.command()
    @config_options(Toy)
    def toy(**values: Any) -> None:
        click.echo(json.dumps(dataclasses.asdict(Toy(**values))))

    assert json.loads(CliRunner().invoke(toy, []).output) == {"size": 3, "mode": "a", "fast": False}
    chosen = CliRunner().invoke(toy, ["--size", "9", "--mode", "b", "--fast"])
    assert json.loads(chosen.output) == {"size": 9, "mode": "b", "fast": True}
    assert CliRunner().invoke(toy, ["--size", "10"]).exit_code == 2
    assert "How many." in CliRunner().invoke(toy, ["--help"]).output
