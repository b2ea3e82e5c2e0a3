"""The one way sursmr runs external programs.

Every call has a time limit, kills the whole process group when it is
exceeded, and works inside a private scratch directory that is removed on
success, failure, timeout and Ctrl-C alike.
"""

from __future__ import annotations

import os
import shutil
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
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere a no-op).

    For worker processes: a killed parent must not leave them waiting on a
    queue forever, holding memory and the caller's stdout. Returns whether
    it took effect; exits at once if the parent is already gone.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
    return True


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
