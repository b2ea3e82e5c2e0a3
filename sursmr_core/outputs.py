"""Writing results so that a failure or Ctrl-C never leaves a half-written file.

:func:`check_writable` answers, before any expensive work, whether a file can
be written at a path (creating nothing); :func:`atomic_write_bytes` then
writes it through a temporary file in the same folder. Both raise
:class:`~sursmr_core.errors.OutputError` (exit code 2) with the reason.
Files get the usual mode from the umask (0644 under umask 022), like any
file a program creates, not the 0600 of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from sursmr_core.errors import OutputError

NAME_MAX = 255
"""Longest file name, in bytes, that common file systems (ext4, XFS, btrfs, APFS, NTFS) accept."""

TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
# ".{name}.{8 hex}.part": the random part, dots and suffix leave this many bytes of the name
_TEMP_NAME_BYTES = NAME_MAX - len(TEMP_PREFIX) - 1 - 8 - len(TEMP_SUFFIX)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _check_name(path: Path) -> None:
    name = os.fsencode(path.name)
    if len(name) > NAME_MAX:
        raise OutputError(
            f"{path}: the file name is {len(name)} bytes long, over the {NAME_MAX} bytes file systems accept; "
            "rename the input or choose a shorter output name"
        )


def _existing_ancestor(folder: Path) -> tuple[Path, list[Path]]:
    """The nearest folder that exists, and the missing folders below it (top first)."""
    for depth in range(1, len(folder.parts) + 1):
        _check_name(Path(*folder.parts[:depth]))
    missing: list[Path] = []
    current = folder
    while True:
        try:
            info = os.stat(current)
        except FileNotFoundError:
            if current.parent == current:
                raise OutputError(f"{folder}: cannot be created (no such file system root)") from None
            missing.insert(0, current)
            current = current.parent
            continue
        except NotADirectoryError:
            raise OutputError(f"{folder}: cannot be a folder: a part of that path is a file") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{current}: symbolic link loop; choose another output folder") from None
            raise OutputError(f"{current}: cannot be used as an output folder ({_reason(exc)})") from None
        if not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{current}: is not a folder; choose another output folder")
        return current, missing


def _probe(folder: Path) -> None:
    """Create, write one byte to, sync and remove a file in ``folder``; raises OutputError on any failure."""
    probe = folder / f"{TEMP_PREFIX}sursmr-probe.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write files there ({_reason(exc)})") from None
    try:
        os.write(fd, b"\0")
        os.fsync(fd)  # a full disk may accept the write and refuse only the flush
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write files there ({_reason(exc)})") from None
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _check_replaceable(target: Path) -> None:
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"{target}: cannot be written ({_reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{target}: is a folder; it cannot be replaced by a file")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise OutputError(f"{target}: is a special file (device, FIFO or socket); refusing to replace it")


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` unless a file could be written at ``path``; creates nothing that stays.

    Checks the name lengths, that the folder exists or can be created below
    its nearest existing ancestor, that a file can be written and synced
    there (catching read-only mounts, ``/proc``, ``/sys`` and full disks),
    and that ``path`` is not a folder or a special file such as ``/dev/null``.
    """
    target = Path(path)
    _check_name(target)
    folder, _ = _existing_ancestor(target.parent)
    _check_replaceable(target)
    _probe(folder)


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` unless files could be written in ``folder`` (created later if missing)."""
    existing, _ = _existing_ancestor(Path(folder))
    _probe(existing)


def temporary_name(target: Path) -> str:
    """``.<name>.<8 hex>.part``, the name shortened so that the whole fits in :data:`NAME_MAX` bytes."""
    name = os.fsencode(target.name)
    if len(name) > _TEMP_NAME_BYTES:
        name = name[:_TEMP_NAME_BYTES]
        while name and name[-1] & 0xC0 == 0x80:  # do not cut a UTF-8 character in two
            name = name[:-1]
        if name and name[-1] >= 0xC0:
            name = name[:-1]
    return f"{TEMP_PREFIX}{os.fsdecode(name)}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _make_folders(missing: list[Path]) -> list[Path]:
    created: list[Path] = []
    for folder in missing:
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not folder.is_dir():
                _remove_folders(created)
                raise OutputError(f"{folder}: is a file, not a folder") from None
            continue
        except OSError as exc:
            _remove_folders(created)
            raise OutputError(f"{folder}: cannot create the folder ({_reason(exc)})") from None
        created.append(folder)
    return created


def _remove_folders(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break  # something else put a file there meanwhile: keep it


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    The file appears complete under its final name or not at all; on any
    failure the temporary file and every folder this call created are
    removed. OS failures (permissions, read-only or full file system, a name
    too long) raise :class:`OutputError`.
    """
    target = Path(path)
    _check_name(target)
    _, missing = _existing_ancestor(target.parent)
    created = _make_folders(missing)
    tmp: Path | None = None
    try:
        while tmp is None:
            candidate = target.parent / temporary_name(target)
            try:
                # 0o666 and O_EXCL: the kernel applies the umask, as for any new file
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            tmp = candidate
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _check_replaceable(target)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_folders(created)
        if isinstance(exc, OSError):
            raise OutputError(f"{target}: cannot be written ({_reason(exc)})") from None
        raise
    return target
