"""The one subprocess helper: limits, errors, scratch directories."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pytest

from sursmr_core.errors import ToolError, ToolTimeout
from sursmr_core.toolrun import run_tool, scratch_dir


def test_output_and_stdin_pass_through() -> None:
    result = run_tool(
        [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"], timeout=30, stdin=b"abc"
    )
    assert result.stdout == b"ABC"
    assert result.returncode == 0


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-finished"
    # the child spawns a grandchild that would write the marker after 2 s
    grandchild = f"import time; time.sleep(2); open({str(marker)!r}, 'w')"
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(30)"
    with pytest.raises(ToolTimeout, match="longer than"):
        run_tool([sys.executable, "-c", script], timeout=0.5)
    time.sleep(2.5)
    assert not marker.exists()


def test_failures_quote_stderr_and_missing_programs_are_typed() -> None:
    with pytest.raises(ToolError, match="exit code 3: boom"):
        run_tool([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], timeout=30)
    with pytest.raises(ToolError, match="cannot start"):
        run_tool(["/nonexistent/tool"], timeout=5)
    unchecked = run_tool([sys.executable, "-c", "import sys; sys.exit(4)"], timeout=30, check=False)
    assert unchecked.returncode == 4


def test_scratch_dir_is_removed_even_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), scratch_dir() as path:
        (path / "file").write_bytes(b"x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
