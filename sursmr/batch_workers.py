"""Where the images of a batch run: here, in local worker processes, or on Ray workers.

Each executor takes ``(index, source)`` tasks and yields one
:class:`ImageAnswer` per task in completion order (the chosen bitstream, not
yet written: the driver in :mod:`sursmr.batch` writes outputs and the
manifest). Each worker loads the model once (on its first image) and keeps it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping, Sequence
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


def _start_ray(ray: Any, workers: int, address: str | None) -> None:
    """Connect to ``address``, or start a local Ray with ``workers`` CPUs (tried twice: a busy machine can make
    Ray's own 30 s start-up limit run out once)."""
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        options.update(num_cpus=workers, include_dashboard=False)
    else:
        options.update(address=address)
    for attempt in (1, 2):
        try:
            ray.init(**options)
            return
        except Exception as exc:  # Ray raises bare Exception and ConnectionError on start-up problems
            ray.shutdown()
            if attempt == 2:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                raise InputError(
                    f"cannot start or reach {where}: {exc}; check --ray-address or use --executor local"
                ) from None


def run_ray(
    todo: Sequence[tuple[int, Source]],
    settings: AnySettings,
    predictor: PredictorSpec,
    device: str,
    workers: int,
    address: str | None,
) -> Iterator[ImageAnswer]:
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'ray[default]'") from None
    _start_ray(ray, workers, address)
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
