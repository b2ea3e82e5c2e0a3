"""Batches whose output place fails: a full disk (ENOSPC) and a read-only folder, before and during the run;
and the temporary folders of a run killed with SIGKILL.

Every failure must end in a typed error with exit code 2 and a message that
says what to do, leave no half-written output or temporary file, keep the
manifest readable line by line, and let ``--resume`` finish the batch with
the outputs an undisturbed run writes. Real full and read-only file systems
(tiny tmpfs mounts) need root and mount rights; the simulated ones (the
write path fails on cue) run everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _batch_helpers import PsnrPredictor, use_psnr_predictor
from test_batch import cli_env, make_tree, run_cli, tree_bytes

from sursmr import run_dir
from sursmr.manifest import MANIFEST_NAME, TEMP_PREFIX, read_manifest
from sursmr_core.errors import ExitCode


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> PsnrPredictor:
    return use_psnr_predictor(monkeypatch)


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


def assert_consistent(out: Path) -> None:
    """Every manifest line parses, every output is the one its line records, and no temporary file is left."""
    raw = (out / MANIFEST_NAME).read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    lines = [json.loads(line) for line in raw.splitlines()]  # no torn line: each one parses
    assert len(lines) == len(read_manifest(out / MANIFEST_NAME))
    recorded = {str(r["output"]): r["output_sha256"] for r in lines if r.get("output")}
    import hashlib

    for path in out.rglob("*.jpg"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded.get(str(path)), path
    assert not list(out.rglob(f"{TEMP_PREFIX}*")) and not list(out.rglob(".*.part"))


def batch_args(tmp_path: Path) -> list[str]:
    src = make_tree(tmp_path / "in", 5)
    return [str(src), "-r", "--codec", "jpeg", "--target-smr", "none", "--json"]


def is_our_temp(path: str | os.PathLike[str]) -> bool:
    name = Path(path).name
    return name.startswith(TEMP_PREFIX) and not name.startswith(f"{TEMP_PREFIX}probe")  # not a write probe


def reference_and_args(tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    args = batch_args(tmp_path)
    code, _, stderr = run_cli(*args, "-o", str(tmp_path / "reference"))
    assert code == 0, stderr
    return tree_bytes(tmp_path / "reference"), args


def resume_finishes(args: list[str], out: Path, expected: dict[str, bytes], fake: PsnrPredictor) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    fake.seen.clear()
    code, rows, stderr = run_cli(*args, "-o", str(out), "--resume")
    assert code == 0, stderr
    assert tree_bytes(out) == expected
    assert sum(1 for r in rows if r.get("skipped")) == len(before)  # nothing finished was redone
    assert all(p.stat().st_mtime_ns == before[p.name] for p in out.rglob("*.jpg") if p.name in before)
    assert_consistent(out)


@needs_proc
@pytest.mark.parametrize("fail_at", ["output", "manifest"])
def test_a_disk_that_fills_mid_batch_stops_it_cleanly_and_resume_finishes(
    tmp_path: Path, fake: PsnrPredictor, fail_at: str
) -> None:
    """ENOSPC on the third output's sync, or a short manifest write (the disk took half the line)."""
    expected, args = reference_and_args(tmp_path)
    out = tmp_path / "out"
    real_fsync, real_write = os.fsync, os.write
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        if fail_at == "output" and is_our_temp(fd_path(fd)):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def write(fd: int, data: bytes) -> int:
        if fail_at == "manifest" and fd_path(fd).endswith(MANIFEST_NAME):
            calls["n"] += 1
            if calls["n"] == 3:
                return real_write(fd, bytes(data)[: len(data) // 2])
        return real_write(fd, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        patch.setattr(os, "write", write)
        code, rows, stderr = run_cli(*args, "-o", str(out))
    assert code == ExitCode.USAGE, stderr
    assert "No space left on device" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert len(rows) == 2 and len(tree_bytes(out)) == 2  # the third image left nothing behind
    assert_consistent(out)
    resume_finishes(args, out, expected, fake)


@needs_proc
def test_a_folder_that_turns_read_only_mid_batch_stops_it(tmp_path: Path, fake: PsnrPredictor) -> None:
    """EROFS when the second output is created (the file system was remounted read-only)."""
    expected, args = reference_and_args(tmp_path)
    out = tmp_path / "out"
    real_open = os.open
    calls = {"n": 0}

    def open_(path: str | os.PathLike[str], flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if is_our_temp(path) and str(path).startswith(str(out)):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", open_)
        code, _, stderr = run_cli(*args, "-o", str(out))
    assert code == ExitCode.USAGE and "Read-only file system" in stderr and "--resume" in stderr, stderr
    assert len(tree_bytes(out)) == 1
    assert_consistent(out)
    resume_finishes(args, out, expected, fake)


# --- real file systems: tiny tmpfs mounts (root only) -------------------------------------------------------------


def _mount(target: Path, options: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the simulated tests cover this case")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


@contextlib.contextmanager
def tmpfs(target: Path, options: str) -> Iterator[Path]:
    _mount(target, options)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_real_full_disk(tmp_path: Path, fake: PsnrPredictor) -> None:
    expected, args = reference_and_args(tmp_path)
    with tmpfs(tmp_path / "small", "size=64k") as disk:
        out = disk / "out"
        out.mkdir()
        filler = disk / "filler"
        # leave three pages: the write probe, the manifest and one output fit, the second output does not
        free = shutil.disk_usage(disk).free
        filler.write_bytes(b"\0" * (free - 3 * 4096))
        code, rows, stderr = run_cli(*args, "-o", str(out))
        assert code == ExitCode.USAGE and "No space left on device" in stderr, stderr
        assert "Traceback" not in stderr and 0 < len(rows) < 5
        assert_consistent(out)
        filler.unlink()
        resume_finishes(args, out, expected, fake)


def test_a_real_read_only_folder_is_refused_before_any_work(tmp_path: Path, fake: PsnrPredictor) -> None:
    args = batch_args(tmp_path)
    if os.geteuid() == 0:
        context: contextlib.AbstractContextManager[Path] = tmpfs(tmp_path / "ro", "ro,size=64k")
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        context = contextlib.nullcontext(tmp_path / "ro")
    with context as folder:
        code, rows, stderr = run_cli(*args, "-o", str(folder / "out"))
        assert code == ExitCode.USAGE, stderr
        assert ("Read-only file system" in stderr or "Permission denied" in stderr) and "Traceback" not in stderr
        assert not rows and not fake.seen and not (folder / "out").exists()


# --- temporary folders of killed runs -----------------------------------------------------------------------------


def test_stale_run_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    def folder(name: str, lock: bool, age_s: float = 0.0) -> Path:
        path = tmp_path / f"{run_dir.RUN_PREFIX}{name}"
        (path / "pymp-abc").mkdir(parents=True)
        if lock:
            (path / run_dir.LOCK_NAME).touch()
        if age_s:
            stamp = time.time() - age_s
            os.utime(path, (stamp, stamp))
        return path

    alive, dead = folder("alive", lock=True), folder("dead", lock=True)
    making, abandoned = (
        folder("making", lock=False),
        folder("abandoned", lock=False, age_s=2 * run_dir.UNLOCKED_GRACE_S),
    )
    other = tmp_path / "pymp-not-ours"
    other.mkdir()
    fd = os.open(alive / run_dir.LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held, as by a running batch
        assert sorted(run_dir.remove_stale_run_dirs(tmp_path)) == sorted([dead, abandoned])
    finally:
        os.close(fd)
    assert alive.is_dir() and making.is_dir() and other.is_dir() and not dead.exists() and not abandoned.exists()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from sursmr.models import create_model
    from sursmr.predictor import Predictor

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    Predictor.from_model(create_model("sursmr_tiny")).save(path)
    return path


@pytest.mark.slow
@needs_proc
def test_a_killed_batch_leaves_its_pool_files_in_a_run_folder_the_next_run_removes(
    tmp_path: Path, tiny_weights: Path, request: pytest.FixtureRequest
) -> None:
    src = make_tree(tmp_path / "in", 4)
    scratch = Path(tempfile.mkdtemp(prefix="t", dir="/tmp" if Path("/tmp").is_dir() else None))  # short: sockets
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    env = {**cli_env(), "TMPDIR": str(scratch)}
    command = [sys.executable, "-c", "from sursmr.cli import run; run()", "compress", str(src), "-r"]
    command += ["--codec", "jpeg", "-o", str(tmp_path / "out"), "-j", "2", "--model", str(tiny_weights)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def pool_files() -> list[Path]:
        return list(scratch.glob(f"{run_dir.RUN_PREFIX}*/pymp-*"))

    wait_for(lambda: bool(pool_files()) or process.poll() is not None, 120)
    process.kill()
    process.wait(timeout=30)
    assert pool_files(), f"the worker pool never started: {process.stderr.read() if process.stderr else b''!r}"
    assert not list(scratch.glob("pymp-*"))  # nothing outside the run folder
    wait_for(lambda: not processes_of(scratch), 60)
    assert not processes_of(scratch), "image workers or their fork server outlived the killed batch"
    subprocess.run(
        [sys.executable, "-c", "from sursmr.cli import run; run()", "codecs"], env=env, capture_output=True, check=True
    )
    assert not list(scratch.iterdir())  # the killed run's folder and the new run's own are gone


def processes_of(scratch: Path) -> list[int]:
    """Processes whose TMPDIR is ``scratch`` or a run folder in it (the batch's workers and fork server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"TMPDIR={scratch}".encode() in environ:
            found.append(int(entry.name))
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)


def test_no_run_folder_where_pool_sockets_would_not_fit(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    code = "import sys; from sursmr.run_dir import use_run_dir; "
    code += "print(use_run_dir(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", code, str(deep)], env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(deep) and not list(deep.iterdir())  # left as it was


# --- a slow local Ray start ---------------------------------------------------------------------------------------


def test_a_local_ray_gets_the_start_timeout_instead_of_rays_fixed_30_s() -> None:
    import types

    from sursmr import batch_workers

    node = types.SimpleNamespace(time=time)
    ray = types.SimpleNamespace(_private=types.SimpleNamespace(node=node))
    with batch_workers._ray_start_wait(ray, 300.0):
        clock = node.time
        assert clock is not time and clock.sleep is time.sleep  # only monotonic changes
        start_real, start_seen = time.monotonic(), clock.monotonic()
        time.sleep(0.2)
        seen = clock.monotonic() - start_seen
        assert 0 < seen < (time.monotonic() - start_real) / 5  # 300 s of waiting look like 30 s to Ray
    assert node.time is time
    with batch_workers._ray_start_wait(ray, 10.0):  # shorter than Ray's own wait: left alone
        assert node.time is time


@pytest.mark.parametrize("value", ["nan", "0", "-5", "inf"])
def test_a_bad_ray_start_timeout_is_a_usage_error(tmp_path: Path, value: str) -> None:
    code, rows, stderr = run_cli(str(tmp_path), "--codec", "jpeg", "--executor", "ray", "--ray-start-timeout", value)
    assert code == ExitCode.USAGE and not rows and "ray-start-timeout" in stderr
