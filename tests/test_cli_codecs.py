"""`sursmr codecs` and `sursmr sweep` through click, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import json_lines

import codec_adapters
from sursmr.cli import main
from sursmr_core.errors import ExitCode


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_codecs_json_lists_every_registered_codec(runner: CliRunner) -> None:
    result = runner.invoke(main, ["codecs", "--json"])
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert [r["name"] for r in rows] == codec_adapters.list()
    for row in rows:
        assert set(row) >= {"name", "available", "levels", "better", "extension"}
        assert row["better"] in ("higher", "lower")
        if not row["available"]:
            assert row["reason"]


def test_sweep_json_and_written_bitstreams(runner: CliRunner, photo_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        main,
        [
            "sweep",
            str(photo_png),
            "--codec",
            "jpeg",
            "--levels",
            "20:80:20",
            "--jobs",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert [r["level"] for r in rows] == [80, 60, 40, 20]
    for row in rows:
        assert set(row) >= {"level", "bytes", "bpp", "psnr", "ssim"}
        written = Path(str(row["output"]))
        assert written.stat().st_size == row["bytes"]
    assert rows[0]["psnr"] > rows[-1]["psnr"]  # type: ignore[operator]
    assert rows[0]["bytes"] > rows[-1]["bytes"]  # type: ignore[operator]


@pytest.mark.slow
def test_sweep_in_worker_processes_matches_in_process(runner: CliRunner, photo_png: Path) -> None:
    args = ["sweep", str(photo_png), "--codec", "jpeg", "--levels", "30,60,90", "--json"]
    one = runner.invoke(main, [*args, "--jobs", "1"])
    two = runner.invoke(main, [*args, "--jobs", "2"])
    assert one.exit_code == two.exit_code == 0, two.output

    def strip(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["level"], r["bytes"], r["psnr"]) for r in rows]

    assert strip(json_lines(one.stdout)) == strip(json_lines(two.stdout))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codec", "webp2000"], "unknown codec"),
        (["--codec", "jpeg", "--levels", "0:50"], "outside"),
        (["--codec", "jpeg", "--levels", "a:b"], "cannot read levels"),
    ],
)
def test_sweep_usage_errors_exit_2(runner: CliRunner, photo_png: Path, args: list[str], message: str) -> None:
    result = runner.invoke(main, ["sweep", str(photo_png), *args])
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr


def test_bad_images_exit_2_and_write_nothing(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    for image in (bad, tmp_path / "missing.png"):
        result = runner.invoke(main, ["sweep", str(image), "--codec", "jpeg", "--out", str(out)])
        assert result.exit_code == ExitCode.USAGE, result.output
        assert "error:" in result.stderr
    assert not out.exists()


def test_help_has_examples(runner: CliRunner) -> None:
    for command in (["--help"], ["sweep", "--help"], ["codecs", "--help"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 0
        assert "Example" in result.output
