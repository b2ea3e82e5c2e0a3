"""Where the images of a batch run: here, in local worker processes, or on Ray workers.

Each executor takes ``(index, source)`` tasks and yields one
:class:`ImageAnswer` per task in completion order (the chosen bitstream, not
yet written: the driver in :mod:`sursmr.batch` writes outputs and the
manifest). Each worker loads the model once (on its first image) and keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sursmr import codec_choice, compress
from sursmr.codec_choice import ChoiceSettings
from sursmr.compress import CompressResult, CompressSettings
from sursmr.encoding import default_jobs
from sursmr.manifest import file_sha256
from sursmr.scoring import QualityPredictor
from sursmr_core.errors import ExitCode, InputError, ModelError, SursmrError
from sursmr_core.imaging import RGBImage, load_image
from sursmr_core.toolrun import die_with_parent

POOL_RESTARTS = 2
"""How often a local pool whose worker died is restarted (its unfinished images run again) before giving up."""

PredictorSpec = QualityPredictor | str | os.PathLike[str] | None
AnySettings = CompressSettings | ChoiceSettings
"""One codec's settings, or a choice between codecs (``--codec auto`` or a list)."""
Source = Path | RGBImage


def array_sha256(rgb: RGBImage) -> str:
    digest = hashlib.sha256(repr(tuple(rgb.shape)).encode())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageAnswer:
    """A worker's answer for one image (no output written yet); ``fatal``: the model cannot load, stop the batch.

    ``codecs``: with a choice between codecs, each codec's outcome (:meth:`~sursmr.codec_choice.CodecChoice.summary`).
    """

    index: int
    result: CompressResult | None
    input_sha256: str | None
    input_bytes: int | None
    seconds: float
    error: str | None = None
    exit_code: int = ExitCode.OK
    closest: Mapping[str, Any] | None = None
    fatal: bool = False
    codecs: Mapping[str, Any] | None = None


def run_image(index: int, source: Source, settings: AnySettings, predictor: PredictorSpec, device: str) -> ImageAnswer:
    start = time.perf_counter()
    sha = size = None
    try:
        rgb = load_image(source, strict=settings.strict) if isinstance(source, Path) else source
        if predictor is None or isinstance(predictor, str | os.PathLike):
            # the model loads once per process, after the first image is read; if it cannot, no image can run
            try:
                predictor = compress.cached_predictor(predictor, device)
            except SursmrError as exc:
                return ImageAnswer(index, None, None, None, 0.0, str(exc), exc.exit_code, fatal=True)
        codecs = None
        if isinstance(settings, ChoiceSettings):
            choice = codec_choice.choose_codec(rgb, settings, predictor, device=device)
            result, codecs = choice.best, choice.summary()
        else:
            result = compress.compress_image(rgb, settings, predictor, device=device)
        if isinstance(source, Path):
            sha, size = file_sha256(source), source.stat().st_size
        else:
            sha, size = array_sha256(source), int(source.nbytes)
        return ImageAnswer(index, result, sha, size, time.perf_counter() - start, codecs=codecs)
    except SursmrError as exc:
        best = getattr(exc, "best", None)
        closest = None
        if best is not None:
            closest = {"level": best.level, "bytes": best.nbytes, "sur": best.sur, "smr": best.smr}
        return ImageAnswer(
            index,
            None,
            sha,
            size,
            time.perf_counter() - start,
            error=str(exc),
            exit_code=exc.exit_code,
            closest=closest,
            fatal=isinstance(exc, ModelError),
        )
    except OSError as exc:  # the input vanished or became unreadable after it was read
        return ImageAnswer(
            index,
            None,
            sha,
            size,
            time.perf_counter() - start,
            f"{source if isinstance(source, Path) else 'image'}: {exc}",
            ExitCode.USAGE,
        )


# Worker-process state (local pools): settings and predictor arrive once per worker.
_WORKER: dict[str, Any] = {}


def _init_worker(settings: AnySettings, predictor: PredictorSpec, device: str, threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch loads: workers share the cores
    die_with_parent()  # a batch killed with SIGKILL must not leave its image workers (and their models) behind
    _WORKER.update(settings=settings, predictor=predictor, device=device)


def _run_in_worker(index: int, source: Source) -> ImageAnswer:
    return run_image(index, source, _WORKER["settings"], _WORKER["predictor"], _WORKER["device"])


def _ray_task(index: int, source: Source, settings: AnySettings, predictor: PredictorSpec, device: str) -> ImageAnswer:
    return run_image(index, source, settings, predictor, device)


# --- executors: each yields ImageAnswer in completion order ---------------------------------------------------


def run_inline(
    todo: Sequence[tuple[int, Source]], settings: AnySettings, predictor: PredictorSpec, device: str
) -> Iterator[ImageAnswer]:
    for index, source in todo:
        yield run_image(index, source, settings, predictor, device)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (an interrupted batch must not leave processes behind)."""
    stop = getattr(pool, "terminate_workers", None)  # Python ≥ 3.14
    if stop is not None:
        stop()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def run_local_pool(
    todo: Sequence[tuple[int, Source]],
    settings: AnySettings,
    predictor: PredictorSpec,
    device: str,
    workers: int,
) -> Iterator[ImageAnswer]:
    pending = dict(todo)
    threads = max(1, default_jobs() // workers)
    restarts = 0
    while pending:
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_init_worker,
            initargs=(settings, predictor, device, threads),
        )
        broken = False
        try:
            # a bounded window keeps an interrupt quick and memory flat for huge batches
            queue = sorted(pending.items())
            running: dict[Future[ImageAnswer], int] = {}
            while queue or running:
                while queue and len(running) < 2 * workers:
                    index, source = queue.pop(0)
                    running[pool.submit(_run_in_worker, index, source)] = index
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    try:
                        answer = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    del pending[index]
                    yield answer
                if broken:
                    break
        finally:
            _terminate(pool)
        if broken:
            restarts += 1
            if restarts > POOL_RESTARTS:
                for index in sorted(pending):
                    yield ImageAnswer(
                        index,
                        None,
                        None,
                        None,
                        0.0,
                        "a worker process died (out of memory?) again and again",
                        ExitCode.INTERNAL,
                    )
                return


DEFAULT_RAY_START_TIMEOUT_S = 300.0
"""How long a local Ray may take to start. Ray itself gives a new node a fixed 30 s to register, which a
loaded machine overruns (measured: 16 s on 2 idle-ish cores, past 30 s with a dataset build running)."""

_RAY_NODE_WAIT_S = 30.0
"""The fixed wait of ``ray._private.node.Node`` for its raylet to register (Ray 2.x; not configurable there)."""


class _StretchedClock:
    """``time`` with a ``monotonic`` that runs ``factor`` times as fast: Ray's fixed 30 s waits last 30/factor s."""

    def __init__(self, factor: float) -> None:
        self._factor = factor

    def monotonic(self) -> float:
        return time.monotonic() * self._factor

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def _ray_start_wait(ray: Any, seconds: float) -> Iterator[None]:
    """Give a local Ray ``seconds`` instead of 30 s to start: Ray's node module waits on a stretched clock.

    Ray has no setting for this wait; a failed start cannot simply be retried
    either (the half-started processes of the first try stay alive until this
    process ends). Left alone when Ray's layout is not the one we know.
    """
    node = getattr(getattr(ray, "_private", None), "node", None)
    if node is None or getattr(node, "time", None) is not time or seconds <= _RAY_NODE_WAIT_S:
        yield
        return
    node.time = _StretchedClock(_RAY_NODE_WAIT_S / seconds)
    try:
        yield
    finally:
        node.time = time


def _start_ray(ray: Any, workers: int, address: str | None, start_timeout: float) -> float | None:
    """Connect to ``address``, or start a local Ray with ``workers`` CPUs, allowing it ``start_timeout`` seconds;
    returns the seconds it took (None when Ray was already running in this process)."""
    if ray.is_initialized():
        return None
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        options.update(num_cpus=workers, include_dashboard=False)
    else:
        options.update(address=address)
    start = time.perf_counter()
    try:
        with _ray_start_wait(ray, start_timeout):
            ray.init(**options)
    except Exception as exc:  # Ray raises bare Exception and ConnectionError on start-up problems
        ray.shutdown()
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        hint = "check --ray-address or use --executor local"
        if address is None:
            hint = f"a busy machine may need a longer --ray-start-timeout (it was {start_timeout:g} s), or {hint}"
        raise InputError(f"cannot start or reach {where}: {exc}; {hint}") from None
    return time.perf_counter() - start


def run_ray(
    todo: Sequence[tuple[int, Source]],
    settings: AnySettings,
    predictor: PredictorSpec,
    device: str,
    workers: int,
    address: str | None,
    start_timeout: float = DEFAULT_RAY_START_TIMEOUT_S,
    notify: Callable[[str], None] | None = None,
) -> Iterator[ImageAnswer]:
    """Images on Ray workers; ``notify`` hears how long Ray took to start or connect."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'ray[default]'") from None
    seconds = _start_ray(ray, workers, address, start_timeout)
    if seconds is not None and notify is not None:
        where = f"connected to the Ray cluster at {address}" if address else f"started a local Ray with {workers} CPUs"
        notify(f"{where} in {seconds:.1f} s")
    # a task whose worker dies is run again on another (max_retries): nothing lost; the driver keeps one answer
    task = ray.remote(num_cpus=1, max_retries=3)(_ray_task)
    settings_ref, predictor_ref = ray.put(settings), ray.put(predictor)
    queue = list(todo)
    running: dict[Any, int] = {}
    try:
        while queue or running:
            while queue and len(running) < 2 * workers:
                index, source = queue.pop(0)
                running[task.remote(index, source, settings_ref, predictor_ref, device)] = index
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index = running.pop(ref)
                try:
                    answer: ImageAnswer = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    answer = ImageAnswer(index, None, None, None, 0.0, f"Ray lost this image: {exc}", ExitCode.INTERNAL)
                yield answer
    finally:
        for ref in running:
            ray.cancel(ref, force=True)


# --- outputs --------------------------------------------------------------------------------------------------------
