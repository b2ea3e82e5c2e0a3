"""The one way sursmr runs external programs.

Every call has a time limit, kills the whole process group when it is
exceeded, and works inside a private scratch directory that is removed on
success, failure, timeout and Ctrl-C alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sursmr_core.errors import ToolError, ToolTimeout

_STDERR_TAIL = 2000


@dataclass(frozen=True)
class ToolResult:
    """What a finished program left: its exit status and captured streams."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


@contextmanager
def scratch_dir(prefix: str = "sursmr-") -> Iterator[Path]:
    """A fresh temporary directory, removed whatever happens inside the block."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as path:
        yield Path(path)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Make this (worker) process end as soon as the process that started it dies.

    A worker of a ``forkserver`` or ``spawn`` pool is a child of the fork
    server, not of the program that owns the pool, and waits on its task
    queue forever: after a SIGKILL of the owner, the workers, the fork
    server and the resource tracker would live on for minutes holding
    memory and the caller's stdout. A daemon thread watches the owner's
    sentinel (multiprocessing's parent process) and exits when it closes;
    on Linux the kernel also sends ``sig`` when the direct parent dies.
    """
    import multiprocessing
    import threading

    owner = multiprocessing.parent_process()
    if owner is not None:

        def watch() -> None:
            owner.join()
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    if sys.platform.startswith("linux"):
        import ctypes

        parent = os.getppid()
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(1)


@contextmanager
def signals_deferred(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold ``signals`` back in this thread for the block (a short critical section); they arrive after it.

    Only in the main thread, where Python runs signal handlers, and where
    ``pthread_sigmask`` exists; elsewhere the block runs unchanged.
    """
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_tool(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> ToolResult:
    """Run ``args`` with ``stdin`` piped in; return its output.

    Raises :class:`ToolTimeout` after ``timeout`` seconds (the process group
    is killed first) and, with ``check``, :class:`ToolError` on a non-zero
    exit, quoting the end of its stderr. ``FileNotFoundError`` for a missing
    program becomes :class:`ToolError` too.
    """
    argv = tuple(os.fspath(a) for a in args)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,  # own process group: a timeout kills children too
        )
    except OSError as exc:
        raise ToolError(f"cannot start {argv[0]!r}: {exc}") from exc
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise ToolTimeout(f"{Path(argv[0]).name} ran longer than {timeout:g} s and was stopped") from None
    except BaseException:  # Ctrl-C and friends: never leave the child behind
        _kill_group(proc)
        proc.communicate()
        raise
    result = ToolResult(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise ToolError(f"{Path(argv[0]).name} failed with exit code {proc.returncode}: {tail}")
    return result
