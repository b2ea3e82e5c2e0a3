"""A generated corpus of hostile inputs and options through the real CLI: never a traceback, never a partial file.

Each case runs ``sursmr compress`` (a few ``predict`` and ``sweep``) in-process
with the real JPEG codec and a PSNR-based stand-in for the model (real tiny
networks for the model-file cases). It must end with an exit code in 2..6
(0 where the input is valid), a one-line error instead of a traceback, and
leave no partial output or temporary file behind. The cases are built in
``_hostile_corpus.py``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from _hostile_corpus import Case, PsnrPredictor, build_corpus, build_model_cases
from click.testing import CliRunner
from conftest import photo_crop
from PIL import Image

import sursmr.compress
import sursmr.predictor
from sursmr.cli import main
from sursmr.manifest import MANIFEST_NAME
from sursmr.predictor import Predictor

REAL_LOAD = sursmr.compress.cached_predictor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("hostile")
    cases = build_corpus(root)
    cases += build_model_cases(root)
    return root, cases


def load_fake(name: object = None, device: str = "auto") -> PsnrPredictor:
    """The fake in place of the model, behind the same device check as a real load."""
    from sursmr.predictor import resolve_device

    resolve_device(device)
    return PsnrPredictor()


@pytest.fixture(scope="module")
def fake_model() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sursmr.compress, "cached_predictor", load_fake)
        yield


def _files_under(folder: Path) -> list[Path]:
    """Files a case left, but the batch manifest (it records failures too, by design)."""
    return sorted(p for p in folder.rglob("*") if p.name != MANIFEST_NAME) if folder.exists() else []


def run_case(case: Case, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, Path]:
    out = root / "out" / case.id
    args = list(case.args)
    if case.command == "compress":
        args = ["--target-sur", "0.5", "--target-smr", "0.5", *args]  # the cases' own options come later and win
        if "--no-out" in args:
            args.remove("--no-out")
        elif "--out-here" in args:
            at = args.index("--out-here")
            args[at : at + 2] = ["-o", args[at + 1]]
        else:
            args += ["-o", str(out)]
        if "--codec" not in args:
            args += ["--codec", "jpeg"]
        if "--device" not in args:
            args += ["--device", "cpu"]
        args += ["--json", "-q"]
    elif case.command == "predict" and "--device" not in args:
        args += ["--device", "cpu", "--json"]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.command == "predict" and "--model" not in args:
        args += ["--model", str(root / "models" / "tiny.safetensors")]
    result = CliRunner().invoke(main, [case.command, *args])
    for key in case.env:
        monkeypatch.delenv(key)
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"{case.id}: raised {result.exc_info[0].__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output, case.id
    return result.exit_code, result.output, out


def test_hostile_corpus(corpus: tuple[Path, list[Case]], fake_model: None, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cases = corpus
    assert len(cases) >= 300
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"
    before = {p: p.stat().st_mtime_ns for p in _files_under(root / "inputs") if p.is_file() and not p.is_symlink()}
    failures: list[str] = []
    for case in cases:
        if case.real_model:
            continue  # run by test_hostile_model_files with the real predictor
        code, output, out = run_case(case, root, monkeypatch)
        written = _files_under(out)
        if code not in case.codes:
            failures.append(f"{case.id}: exit {code}, expected {sorted(case.codes)}: {output.strip()[-300:]}")
            continue
        leftovers = [p for p in written if p.name.endswith(".part") or p.name.startswith(".")]
        if leftovers:
            failures.append(f"{case.id}: temporary files left: {leftovers}")
        if code != 0 and case.command == "compress" and written:
            failures.append(f"{case.id}: failed (exit {code}) but left {written}")
        if code == 0 and case.check is not None:
            try:
                case.check(out)
            except AssertionError as exc:
                failures.append(f"{case.id}: {exc}")
    assert not failures, f"{len(failures)} cases misbehaved:\n" + "\n".join(failures)
    # nothing was written beside the inputs or into them, whatever happened
    after = {p: p.stat().st_mtime_ns for p in _files_under(root / "inputs") if p.is_file() and not p.is_symlink()}
    assert after == before
    assert not [p for p in (root / "inputs").iterdir() if p.name.endswith(".part") or ".sursmr." in p.name]
    assert not (Path("/proc/sursmr-out")).exists()


def test_hostile_model_files(corpus: tuple[Path, list[Case]], monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.set_num_threads(1)
    monkeypatch.setattr(sursmr.compress, "cached_predictor", REAL_LOAD)  # the corpus fixture may still hold the fake
    root, cases = corpus
    failures = []
    for case in [c for c in cases if c.real_model]:
        sursmr.compress._PREDICTORS.clear()
        code, output, out = run_case(case, root, monkeypatch)
        if code not in case.codes:
            failures.append(f"{case.id}: exit {code}, expected {sorted(case.codes)}: {output.strip()[-300:]}")
        elif code != 0 and _files_under(out):
            failures.append(f"{case.id}: failed but left {_files_under(out)}")
    assert not failures, "\n".join(failures)


def test_output_files_get_the_umask_mode_and_long_names_fit(tmp_path: Path, fake_model: None) -> None:
    source = tmp_path / ("é" * 120 + ".png")  # 244 bytes: the temporary name must still fit in 255
    Image.fromarray(photo_crop(64, 96)).save(source)
    previous = os.umask(0o027)
    try:
        result = CliRunner().invoke(main, ["compress", str(source), "--codec", "jpeg", "-o", str(tmp_path / "o")])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    written, manifest = sorted((tmp_path / "o").iterdir(), key=lambda p: p.name == MANIFEST_NAME)
    assert manifest.name == MANIFEST_NAME
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(manifest.stat().st_mode) == 0o640


def test_an_impossible_output_folder_fails_before_the_model_is_loaded(tmp_path: Path, photo_png: Path) -> None:
    loaded: list[str] = []

    def load(name: object = None, device: str = "auto") -> PsnrPredictor:
        loaded.append(str(name))
        return PsnrPredictor()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sursmr.compress, "cached_predictor", load)
        result = CliRunner().invoke(main, ["compress", str(photo_png), "--codec", "jpeg", "-o", "/proc/nope/out"])
    assert result.exit_code == 2 and "cannot" in result.stderr and loaded == []


# --- bounded memory: the predictor streams tiles ------------------------------------------


def _tiny_native(batch_size: int = 3) -> Predictor:
    import torch

    from sursmr.models import create_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    return Predictor.from_model(create_model("sursmr_tiny", input_mode="native", input_size=64), batch_size=batch_size)


def _whole_image_scores(predictor: Predictor, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The trainer's path: every tile of the image at once through image_to_input and forward."""
    import torch

    from sursmr.models.inputs import aggregate_tiles, image_to_input

    with torch.inference_mode():
        ref = image_to_input(reference, predictor.config)
        dist = image_to_input(candidate, predictor.config)
        tiles = predictor.model(ref, dist)
        return aggregate_tiles(tiles, predictor.config.patch_aggregate).clamp(0, 1).double().numpy()


@pytest.mark.parametrize(("height", "width"), [(150, 200), (40, 50), (64, 300)])
def test_streamed_tiles_score_like_the_whole_image(height: int, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = np.ascontiguousarray(np.resize(photo_crop(150, 200), (height, width, 3)))
    noisy = np.random.default_rng(1).integers(-20, 21, reference.shape)
    candidates = [reference, np.clip(reference + noisy, 0, 255).astype(np.uint8)]
    predictor = _tiny_native()
    expected = np.array([_whole_image_scores(predictor, reference, c) for c in candidates])
    cached = predictor.predict(reference, candidates)
    np.testing.assert_allclose([(p.sur, p.smr) for p in cached], expected, atol=1e-5)
    # small chunks and no cache: the reference is recomputed chunk by chunk, the scores stay the same
    monkeypatch.setattr(sursmr.predictor, "TILE_CHUNK", 2)
    monkeypatch.setattr(sursmr.predictor, "REFERENCE_CACHE_BYTES", 0)
    streamed = _tiny_native(batch_size=1)
    chunks = streamed.predict(reference, candidates)
    np.testing.assert_allclose([(p.sur, p.smr) for p in chunks], expected, atol=1e-5)


def test_reference_features_are_kept_only_when_they_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = photo_crop(150, 200)  # 3x4 tiles of 64
    candidate = np.ascontiguousarray(reference[::-1])
    predictor = _tiny_native(batch_size=4)
    calls: list[int] = []
    predictor.model.backbone.register_forward_hook(lambda _m, args, _out: calls.append(args[0].shape[0]))
    predictor.predict(reference, [candidate])
    predictor.predict(reference, [candidate])
    assert calls == [4] * 9  # 12 reference tiles (3 batches) once, then only the candidate's 3 batches
    monkeypatch.setattr(sursmr.predictor, "REFERENCE_CACHE_BYTES", 0)
    predictor.clear_cache()
    calls.clear()
    predictor.predict(reference, [candidate])
    predictor.predict(reference, [candidate])
    assert calls == [4, 4, 4, 4, 4, 4] * 2  # over the budget: recomputed on every call, never kept
    assert predictor._reference_features is None


def test_non_finite_scores_are_a_model_error(photo_png: Path) -> None:
    import torch

    from sursmr_core.errors import ModelError

    predictor = _tiny_native()
    with torch.no_grad():
        next(predictor.model.parameters()).fill_(float("nan"))
    reference = photo_crop(64, 96)
    with pytest.raises(ModelError, match="non-finite"):
        predictor.predict(reference, [reference])


# --- signals and worker processes ----------------------------------------------------------

_SLOW_COMPRESS = """
import sys, time
import sursmr.compress
from sursmr.scoring import Prediction

class Slow:
    name = "slow"
    def predict(self, reference, candidates):
        print("scoring", file=sys.stderr, flush=True)
        time.sleep(120)
        return [Prediction(1.0, 1.0) for _ in candidates]

sursmr.compress.cached_predictor = lambda spec=None, device="auto": Slow()
from sursmr.cli import run
sys.argv = ["sursmr", "compress", *sys.argv[1:]]
run()
"""

_POOL_OWNER = """
import sys, time
import numpy as np
from sursmr.encoding import encode_in_worker, encoder_pool

pool = encoder_pool(np.zeros((32, 32, 3), np.uint8), "jpeg", jobs=2)
list(pool.map(encode_in_worker, [50, 60, 70, 80]))
print(" ".join(str(pid) for pid in pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its entry waits for a reaper


def _wait_until(predicate: Callable[[], bool], limit_s: float = 60.0) -> bool:
    import time

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX signals")
def test_sigterm_ends_a_compress_cleanly_with_143(tmp_path: Path, photo_png: Path) -> None:
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_COMPRESS, str(photo_png), "--codec", "jpeg", "-o", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # blocks until the search scores its first candidates
    assert "scoring" in first, first
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    # no image and no temp file; the batch manifest may exist but records no finished image
    left = list(out.iterdir()) if out.exists() else []
    assert [p.name for p in left if p.name != MANIFEST_NAME] == []
    assert all(p.read_text() == "" for p in left)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_worker_pools_die_with_their_owner() -> None:
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _POOL_OWNER], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    proc.send_signal(signal.SIGKILL)  # no cleanup can run in the owner: the workers must notice by themselves
    proc.wait(timeout=30)
    assert _wait_until(lambda: not any(_alive(pid) for pid in workers)), "workers outlived their owner"
