"""Writing outputs: refused before any work when impossible, atomic, umask modes, names that fit, nothing left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sursmr_core.errors import ExitCode, OutputError
from sursmr_core.outputs import NAME_MAX, atomic_write_bytes, check_writable, check_writable_folder, temporary_name


def test_impossible_places_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = {
        a_file / "sub" / "a.jpg": "a part of that path is a file",
        a_file / "a.jpg": "not a folder",
        tmp_path: "is a folder",
        fifo: "special file",
        tmp_path / ("n" * 256 + ".jpg"): "over the 255 bytes",
        tmp_path / ("d" * 300) / "a.jpg": "over the 255 bytes",
    }
    if Path("/proc/self").is_dir():
        cases[Path("/proc/sursmr/a.jpg")] = "cannot write files there"
    for path, reason in cases.items():
        with pytest.raises(OutputError, match=reason) as caught:
            check_writable(path)
        assert caught.value.exit_code == ExitCode.USAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "plain.txt"]
    check_writable(tmp_path / "new" / "deeper" / "a.jpg")  # a folder that can be made is fine: nothing made yet
    check_writable_folder(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_writes_are_atomic_with_the_umask_mode(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = atomic_write_bytes(tmp_path / "a" / "b" / "out.jpg", b"data")
    finally:
        os.umask(previous)
    assert written.read_bytes() == b"data"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert sorted(p.name for p in written.parent.iterdir()) == ["out.jpg"]


def test_a_failed_write_leaves_no_temporary_file_and_no_folder_it_made(tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        atomic_write_bytes(tmp_path / "made" / "here" / ("x" * 256), b"data")
    assert list(tmp_path.iterdir()) == []
    target = tmp_path / "made" / "out.jpg"
    target.parent.mkdir()
    os.mkfifo(target)
    with pytest.raises(OutputError, match="special file"):
        atomic_write_bytes(target, b"data")
    assert [p.name for p in target.parent.iterdir()] == ["out.jpg"]  # the FIFO, untouched; no .part


@pytest.mark.parametrize("name", ["x" * 254, "é" * 127, "photo.jpg", "日本" * 40 + ".jpg"])
def test_temporary_names_fit_in_255_bytes(name: str) -> None:
    temp = temporary_name(Path("/somewhere") / name)
    assert len(os.fsencode(temp)) <= NAME_MAX
    assert temp.startswith(".") and temp.endswith(".part")
    temp.encode("utf-8")  # no character cut in half
