"""Where dataset jobs run: a registry of executors with one interface.

An executor maps a picklable top-level function over jobs and yields the
results *as they finish* (any order), so the caller can record each one at
once and a killed build loses nothing already done.

``local``
    This machine's processes (``concurrent.futures`` with the ``forkserver``
    start method); ``workers=1`` runs in this process, which is what tests and
    debuggers want.
``ray``
    A Ray instance on this machine, ``ray.init(num_cpus=workers,
    include_dashboard=False)``; the same job function, shipped by Ray's
    pickler. Connecting to a cluster is one ``address=`` away
    (``RAY_ADDRESS`` is honoured by ``ray.init``).
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, ClassVar, TypeVar

from sursmr_core.errors import ExitCode, InputError, SursmrError
from sursmr_core.levels import Availability
from sursmr_core.registry import Registry

J = TypeVar("J")
R = TypeVar("R")


class ExecutorUnavailableError(SursmrError):
    """An executor cannot run here (its package is missing)."""

    exit_code = ExitCode.USAGE


class Executor(ABC):
    """Runs ``fn(job)`` for every job with at most ``workers`` at a time."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InputError(f"workers must be ≥ 1, got {workers}")
        self.workers = workers

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @abstractmethod
    def map_unordered(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[R]:
        """Yield ``fn(job)`` for each job as it finishes; a job's exception is re-raised here."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def create_executor(name: str, workers: int = 1) -> Executor:
    cls = EXECUTORS.get(name)
    status = cls.availability()
    if not status.available:
        raise ExecutorUnavailableError(f"executor {name!r} is not available here: {status.reason}")
    return cls(workers)


def _worker_init() -> None:
    # one core per worker: BLAS/torch thread pools would oversubscribe the machine
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@EXECUTORS.register
class LocalExecutor(Executor):
    name = "local"
    description = "processes on this machine (workers=1: in this process)"

    def map_unordered(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[R]:
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:
                yield fn(job)
            return
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(jobs)), mp_context=context, initializer=_worker_init
        )
        # keep at most 2 jobs per worker queued: a Ctrl-C then wastes little work
        pending: set[Future[R]] = set()
        queue = iter(jobs)
        try:
            for job in queue:
                pending.add(pool.submit(fn, job))
                if len(pending) >= 2 * self.workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


@EXECUTORS.register
class RayExecutor(Executor):
    name = "ray"
    description = "a local Ray instance (ray.init(num_cpus=workers, include_dashboard=False))"

    @classmethod
    def availability(cls) -> Availability:
        try:
            import ray  # noqa: F401
        except ImportError:
            return Availability(False, "ray is not installed (pip install 'ray[default]')")
        return Availability(True)

    def map_unordered(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[R]:
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                num_cpus=self.workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
            )
        remote: Any = ray.remote(num_cpus=1, max_retries=0)(fn)
        queue = iter(jobs)
        pending: list[Any] = []
        try:
            for job in queue:
                pending.append(remote.remote(job))
                if len(pending) >= 2 * self.workers:
                    break
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        result: R = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
                        raise cause from None
                    yield result
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.append(remote.remote(nxt))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
