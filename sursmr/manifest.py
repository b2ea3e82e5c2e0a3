"""``sursmr-manifest.jsonl``: one JSON line per image a batch finished (or failed), appended as it goes.

Each line is written with a single ``write`` on a file opened for appending
and synced before the image's output takes its final name, so a crash
leaves at most one torn last line. Readers skip lines that do not parse (and
a writer starts a fresh line after a torn one), so a torn line never breaks
the next run. One batch at a time may write to a manifest: :meth:`Manifest.open`
takes an exclusive lock that the operating system releases when the process
ends, however it ends.

Fields of a line (``null`` where not applicable): ``format``, ``input``
(path, or ``<array N>``), ``input_sha256`` (of the file's bytes, or of the
array's shape and pixels), ``input_bytes``, ``output``, ``output_sha256``,
``codec``, ``level``, ``bytes``, ``sur``, ``smr`` (predicted), ``probes``,
``encodes``, ``targets`` (``sur``, ``smr``, ``margin``), ``strategy``,
``max_probes``, ``thorough``, ``options`` (the codec's resolved options), ``model``,
``model_sha256``, ``seconds``, ``finished`` (UTC, ISO 8601), and for a
failure ``error`` and ``exit_code``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sursmr_core.errors import InputError, OutputError

MANIFEST_NAME = "sursmr-manifest.jsonl"
MANIFEST_FORMAT = "sursmr-manifest/1"
TEMP_PREFIX = ".sursmr-"
TEMP_SUFFIX = ".part"
REQUIRED_FIELDS = (
    "format",
    "input",
    "input_sha256",
    "output",
    "codec",
    "targets",
    "model",
    "model_sha256",
    "seconds",
    "finished",
)
"""Fields every line carries; a finished image adds ``level``, ``bytes``, ``sur``, ``smr``, ``probes``...,
a failed one ``error`` and ``exit_code``."""


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete line of a manifest, in order (none when the file is missing); torn lines are skipped."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    records = []
    for line in raw.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # empty, or torn by a crash mid-write
        if isinstance(record, dict) and record.get("format") == MANIFEST_FORMAT:
            records.append(record)
    return records


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """An open, locked manifest: the lines it held when opened, and :meth:`append` for new ones."""

    def __init__(self, path: Path, fd: int, records: list[dict[str, Any]]) -> None:
        self.path = path
        self._fd = fd
        self.records = records

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Manifest:
        """Open (creating it and its folder) and lock ``path``; :class:`InputError` if another batch holds it."""
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(f"{target}: cannot open the manifest ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError(
                f"{target}: another sursmr batch is writing to this manifest; wait for it or use another -o folder"
            ) from None
        return cls(target, fd, read_manifest(target))

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one line (``format`` is filled in) with one write, then sync it to disk.

        When the write or the sync fails (a full disk, a file system gone
        read-only), the file is cut back to where it was, so no torn line
        stays, and :class:`OutputError` says why.
        """
        line = json.dumps({"format": MANIFEST_FORMAT, **record}, separators=(",", ":"), allow_nan=False)
        data = line.encode("utf-8") + b"\n"
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a torn line from a crash stays on its own line
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # a full disk takes what fits
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise OutputError(
                f"{self.path}: cannot add to the manifest ({exc.strerror or exc}); "
                "make room or fix the folder, then run again with --resume"
            ) from exc
        self.records.append(json.loads(line))

    def finished(self) -> Iterator[dict[str, Any]]:
        """Lines of images that were written (no error), oldest first."""
        return (r for r in self.records if r.get("error") is None and r.get("output") is not None)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_temp(target: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``target`` (mode from the umask), synced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        temp = target.parent / f"{TEMP_PREFIX}{os.urandom(6).hex()}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp
    raise InputError(f"{target.parent}: cannot create a temporary file")


def remove_stale_temps(folders: Iterable[Path]) -> int:
    """Delete temporary files of ours (``.sursmr-*.part``) in ``folders``; returns how many."""
    removed = 0
    for folder in folders:
        try:
            stale = list(folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"))
        except OSError:
            continue
        for path in stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
