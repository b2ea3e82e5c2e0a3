"""One temporary folder per run, so that a run killed with SIGKILL leaves nothing in ``/tmp`` but that folder, and
the next run removes it.

Python's worker pools put their scratch files in ``pymp-*`` folders of the
system temporary folder and remove them at exit; a SIGKILL skips that, and
every killed batch used to leave one behind. :func:`use_run_dir` makes a
``sursmr-run-*`` folder for this process (``tempfile`` and, through
``TMPDIR``, the worker processes and codec tools it starts put their
temporary files there), holds a lock on it while the process lives, and
removes it at exit. Each new run first removes the ``sursmr-run-*`` folders
whose lock is free: their owner is gone, however it ended (the system
releases the lock of a killed process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

RUN_PREFIX = "sursmr-run-"
LOCK_NAME = ".owner.lock"
UNLOCKED_GRACE_S = 3600.0
"""A run folder without its lock file is being made right now, or was left half-made long ago: removed only
when older than this."""
SOCKET_PATH_MAX = 107
"""Longest path of a Unix socket (Linux ``sun_path``, less its NUL); worker pools listen on one in their folder."""
_POOL_SOCKET_ROOM = 48
"""What ``pymp-XXXXXXXX/listener-XXXXXXXX`` and a margin add to the run folder's path."""
ENV_VARS = ("TMPDIR",)
"""Set to the run folder for the processes this one starts (worker pools, codec tools)."""

_CURRENT: Path | None = None


def _owner_alive(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime < UNLOCKED_GRACE_S
        except OSError:
            return True
    except OSError:
        return True  # not ours to judge (another user's folder, permissions)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def remove_stale_run_dirs(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the ``sursmr-run-*`` folders in ``parent`` (default: the system temporary folder) whose owner
    process has ended; returns them."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        candidates = sorted(where.glob(f"{RUN_PREFIX}*"))
    except OSError:
        return removed
    for folder in candidates:
        if folder == _CURRENT or not folder.is_dir() or folder.is_symlink() or _owner_alive(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _remove(rmtree: object, folder: Path, fd: int) -> None:
    # runs after multiprocessing removed its own pymp-* folder (exit priority -100), so that one finds it
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.close(fd)


def use_run_dir(parent: str | os.PathLike[str] | None = None) -> Path:
    """Make this process's run folder (once; later calls return it), first removing stale ones of dead runs.

    Sets :data:`tempfile.tempdir` and ``TMPDIR`` to it, so that worker pools
    and codec tools started from now on keep their temporary files there.
    Returns the folder. A ``parent`` that is unusable, or so deep that the
    sockets of worker pools would not fit in a run folder below it, leaves
    everything as it was and is returned instead.
    """
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_stale_run_dirs(base)
    if len(os.fsencode(base)) + 1 + len(RUN_PREFIX) + 8 + _POOL_SOCKET_ROOM > SOCKET_PATH_MAX:
        return base
    try:
        folder = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=base))
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return base
    fcntl.flock(fd, fcntl.LOCK_EX)  # a new, private file: never contended
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _remove, args=(shutil.rmtree, folder, fd), exitpriority=-200)
    tempfile.tempdir = str(folder)
    # Ray reads TMPDIR too: its sessions (logs, sockets) stay where they were, they outlive this process
    os.environ.setdefault("RAY_TMPDIR", str(base))
    for name in ENV_VARS:
        os.environ[name] = str(folder)
    _CURRENT = folder
    return folder


__all__ = ["RUN_PREFIX", "remove_stale_run_dirs", "use_run_dir"]
