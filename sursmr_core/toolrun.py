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
