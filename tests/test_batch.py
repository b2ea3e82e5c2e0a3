"""Batches: folders, the manifest, --resume after crashes (simulated and real signals), --force, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _batch_helpers import PsnrPredictor, use_psnr_predictor
from click.testing import CliRunner
from conftest import json_lines, photo_crop
from PIL import Image

from sursmr.batch import compress_many, plan_inputs
from sursmr.cli import main
from sursmr.manifest import MANIFEST_NAME, REQUIRED_FIELDS, Manifest, read_manifest
from sursmr_core.errors import ExitCode, InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> PsnrPredictor:
    return use_psnr_predictor(monkeypatch)


def make_tree(root: Path, count: int = 5) -> Path:
    """``count`` small photos in a folder with a sub-folder, plus files a batch must ignore."""
    (root / "sub").mkdir(parents=True)
    for i in range(count):
        folder = root if i % 2 == 0 else root / "sub"
        Image.fromarray(photo_crop(48, 64, top=20 + 7 * i, left=100 + 11 * i)).save(folder / f"p{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"")
    return root


def run_cli(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["compress", "-j", "1", *args])  # in this process, where the fake is
    return result.exit_code, json_lines(result.stdout), result.stderr


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.jpg"))}


def test_plan_mirrors_folders_and_filters(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "in")
    flat = plan_inputs([src], extension="jpg", out_dir=tmp_path / "out")
    assert [Path(i.label).name for i in flat] == ["p0.png", "p2.png", "p4.png"]
    deep = plan_inputs([src], extension="jpg", out_dir=tmp_path / "out", recursive=True)
    assert [str(i.output.relative_to(tmp_path / "out")) for i in deep if i.output] == [
        "p0.jpg",
        "p2.jpg",
        "p4.jpg",
        "sub/p1.jpg",
        "sub/p3.jpg",
    ]
    picked = plan_inputs([src], extension="jpg", out_dir=None, recursive=True, glob="sub/*")
    assert [i.output for i in picked] == [src / "sub" / "p1.sursmr.jpg", src / "sub" / "p3.sursmr.jpg"]
    with pytest.raises(InputError, match="no images found"):
        plan_inputs([src], extension="jpg", glob="*.webp")


def test_folder_batch_writes_outputs_manifest_and_summary(tmp_path: Path, fake: PsnrPredictor) -> None:
    src, out = make_tree(tmp_path / "in"), tmp_path / "out"
    code, rows, stderr = run_cli(str(src), "-r", "--codec", "jpeg", "--target-smr", "none", "-o", str(out), "--json")
    assert code == 0, stderr
    assert len(rows) == 5 and all(Path(str(r["output"])).is_file() for r in rows)
    assert "5 images compressed, 0 skipped, 0 failed" in stderr and "images/s" in stderr
    records = read_manifest(out / MANIFEST_NAME)
    assert len(records) == 5
    for record in records:
        assert set(REQUIRED_FIELDS) <= set(record) and "error" not in record
        assert record["model"] == "fake-psnr" and record["codec"] == "jpeg"
        assert record["targets"] == {"sur": 0.75, "smr": None, "margin": 0.0}
        output = Path(str(record["output"]))
        assert output.stat().st_size == record["bytes"] and record["probes"] >= 1 and record["encodes"] >= 1
        assert len(str(record["input_sha256"])) == 64 and record["output_sha256"]
    assert not list(out.rglob(".sursmr-*"))


def test_existing_outputs_need_force_and_resume_skips(tmp_path: Path, fake: PsnrPredictor) -> None:
    src, out = make_tree(tmp_path / "in", 3), tmp_path / "out"
    args = [str(src), "-r", "--codec", "jpeg", "-o", str(out), "--json"]
    assert run_cli(*args)[0] == 0
    before = tree_bytes(out)
    # our own outputs may be replaced by a rerun (the manifest shows we wrote them); a stranger's may not
    (out / "p0.jpg").write_bytes(b"someone else's file")
    code, rows, _ = run_cli(*args)
    assert code == ExitCode.USAGE
    refused = [r for r in rows if "error" in r]
    assert len(refused) == 1 and "--force" in str(refused[0]["error"])
    assert (out / "p0.jpg").read_bytes() == b"someone else's file"
    assert run_cli(*args, "--force")[0] == 0 and tree_bytes(out) == before

    fake.seen.clear()
    code, rows, stderr = run_cli(*args, "--resume")
    assert code == 0 and all(r.get("skipped") is True for r in rows) and len(rows) == 3
    assert not fake.seen and "0 images compressed, 3 skipped" in stderr
    # other targets: nothing matches, every image runs again
    code, rows, _ = run_cli(*args, "--resume", "--target-sur", "0.5")
    assert code == 0 and not any(r.get("skipped") for r in rows)


def test_resume_repairs_every_crash_state(tmp_path: Path, fake: PsnrPredictor) -> None:
    """The states a SIGKILL can leave: a torn last line, a temp file, a line whose output never got its name."""
    src = make_tree(tmp_path / "in", 4)
    reference, out = tmp_path / "reference", tmp_path / "out"
    args = [str(src), "-r", "--codec", "jpeg", "--json"]
    assert run_cli(*args, "-o", str(reference))[0] == 0
    expected = tree_bytes(reference)

    assert run_cli(*args, "-o", str(out))[0] == 0
    manifest = out / MANIFEST_NAME
    lines = manifest.read_bytes().splitlines(keepends=True)
    # crash 1: killed after the third line was appended but before its output was renamed (a temp is left)
    third = json.loads(lines[2])
    Path(third["output"]).rename(Path(third["output"]).parent / ".sursmr-0123456789ab.part")
    # crash 2: killed while writing the fourth line (torn), its output never written
    fourth = json.loads(lines[3])
    Path(fourth["output"]).unlink()
    manifest.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    assert len(read_manifest(manifest)) == 3
    kept = {name: (out / name).stat().st_mtime_ns for name in expected if (out / name).exists()}

    fake.seen.clear()
    code, rows, _ = run_cli(*args, "-o", str(out), "--resume")
    assert code == 0
    assert sorted(str(r["input"]) for r in rows if not r.get("skipped")) == sorted([third["input"], fourth["input"]])
    assert len(fake.seen) == 2  # nothing finished was redone
    assert tree_bytes(out) == expected and not list(out.rglob(".sursmr-*"))
    assert all((out / name).stat().st_mtime_ns == ns for name, ns in kept.items())
    assert len(read_manifest(manifest)) == 5  # the torn line is ignored, later lines start fresh


def test_manifest_lock_refuses_a_second_batch(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / MANIFEST_NAME) as book:
        book.append({"input": "a"})
        with pytest.raises(InputError, match="another sursmr batch"):
            Manifest.open(tmp_path / MANIFEST_NAME)
    with Manifest.open(tmp_path / MANIFEST_NAME) as again:
        assert [r["input"] for r in again.records] == ["a"]


def test_compress_many_yields_every_input_with_errors(tmp_path: Path) -> None:
    fake = PsnrPredictor()
    good = photo_crop(48, 64)
    inputs: list[object] = [good, tmp_path / "missing.png", np.zeros((4, 4, 3), np.uint8)]
    outcomes = list(compress_many(inputs, codec="jpeg", target_smr=None, predictor=fake))  # type: ignore[arg-type]
    assert sorted(o.index for o in outcomes) == [0, 1, 2]
    by_index = {o.index: o for o in outcomes}
    assert by_index[0].ok and by_index[0].result is not None and by_index[0].output is None
    assert "no such file" in str(by_index[1].error) and by_index[2].exit_code == ExitCode.USAGE
    written = list(compress_many([good], codec="jpeg", predictor=fake, out_dir=tmp_path / "o", target_smr=None))
    assert written[0].output == tmp_path / "o" / "image-000000.jpg" and written[0].output.is_file()
    with pytest.raises(InputError, match="resume needs a manifest"):
        list(compress_many([good], codec="jpeg", predictor=fake, resume=True))


def test_save_a_pillow_image(tmp_path: Path) -> None:
    import sursmr

    image = Image.fromarray(photo_crop(48, 64)).convert("RGBA")
    with pytest.warns(UserWarning, match="alpha"):
        result = sursmr.save(image, tmp_path / "x.jpg", codec="jpeg", target_smr=None, predictor=PsnrPredictor())
    assert (tmp_path / "x.jpg").read_bytes() == result.data and result.width == 64


# --- real processes: worker pools, signals, Ray ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from sursmr.models import create_model
    from sursmr.predictor import Predictor

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    Predictor.from_model(create_model("sursmr_tiny")).save(path)
    return path


def cli_command(src: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from sursmr.cli import run; run()",
        "compress",
        str(src),
        "-r",
        "--codec",
        "jpeg",
        "--model",
        str(weights),
        "--device",
        "cpu",
        "--target-sur",
        "0.1",
        "--target-smr",
        "0.1",
        "-o",
        str(out),
        "--json",
        *extra,
    ]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_worker_processes_give_the_same_outputs(tmp_path: Path, tiny_weights: Path) -> None:
    src = make_tree(tmp_path / "in", 4)
    one = subprocess.run(cli_command(src, tmp_path / "one", tiny_weights, "-j", "1"), env=cli_env(), check=False)
    two = subprocess.run(cli_command(src, tmp_path / "two", tiny_weights, "-j", "2"), env=cli_env(), check=False)
    assert one.returncode == two.returncode == 0
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two") and len(tree_bytes(tmp_path / "one")) == 4


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "after_lines"), [(signal.SIGKILL, 0), (signal.SIGKILL, 2), (signal.SIGINT, 1)])
def test_killed_batch_resumes_to_the_uninterrupted_result(
    tmp_path: Path, tiny_weights: Path, sig: signal.Signals, after_lines: int
) -> None:
    src = make_tree(tmp_path / "in", 6)
    reference = subprocess.run(cli_command(src, tmp_path / "ref", tiny_weights, "-j", "1"), env=cli_env(), check=False)
    assert reference.returncode == 0
    out = tmp_path / "out"
    process = subprocess.Popen(cli_command(src, out, tiny_weights, "-j", "1"), env=cli_env(), stdout=subprocess.PIPE)
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (len(read_manifest(manifest)) if manifest.exists() else 0) >= after_lines:
            break
        time.sleep(0.01)
    process.send_signal(sig)
    process.communicate(timeout=60)
    lines = read_manifest(manifest) if manifest.exists() else []
    finished = {str(r["output"]) for r in lines if Path(str(r["output"])).is_file()}
    stamps = {output: Path(output).stat().st_mtime_ns for output in finished}

    again = subprocess.run(
        cli_command(src, out, tiny_weights, "-j", "1", "--resume"), env=cli_env(), capture_output=True, check=False
    )
    assert again.returncode == 0, again.stderr
    assert tree_bytes(out) == tree_bytes(tmp_path / "ref") and not list(out.rglob(".sursmr-*"))
    rows = json_lines(again.stdout.decode())
    assert len(rows) == 6 and finished <= {str(r["output"]) for r in rows if r.get("skipped")}
    assert all(Path(output).stat().st_mtime_ns == ns for output, ns in stamps.items())  # not written again
    per_output: dict[str, int] = {}
    for record in read_manifest(manifest):
        per_output[str(record["output"])] = per_output.get(str(record["output"]), 0) + 1
    assert set(per_output) == {str(out / p) for p in tree_bytes(tmp_path / "ref")}


@pytest.mark.slow
def test_ray_batch_survives_a_killed_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    import ray

    monkeypatch.setenv(
        "PYTHONPATH", f"{ROOT / 'tests'}{os.pathsep}{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    )
    from _batch_helpers import KillOncePredictor

    src = make_tree(tmp_path / "in", 6)
    marker = tmp_path / "kill-once"
    marker.write_text("")
    try:
        outcomes = list(
            compress_many(
                [src],
                recursive=True,
                codec="jpeg",
                target_smr=None,
                predictor=KillOncePredictor(str(marker)),
                out_dir=tmp_path / "out",
                workers=2,
                executor="ray",
            )
        )
    finally:
        ray.shutdown()
    assert not marker.exists()  # one worker really died mid-image
    assert sorted(o.index for o in outcomes) == list(range(6)) and all(o.ok for o in outcomes)
    records = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert sorted(str(r["input"]) for r in records) == sorted(o.input for o in outcomes)  # none lost, none twice
    assert len(tree_bytes(tmp_path / "out")) == 6
