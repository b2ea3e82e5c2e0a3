"""Where and how a benchmark ran, said the same way by every benchmark that reports it as text.

``host_text()`` goes into a result file's ``"host"`` field; ``run_footer(result)``
is the "Run: …" line under a markdown report, read back from that file (command,
wall seconds, host), so the report states only what the run recorded.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

WORK_CACHE_NOTE = "crops already in the --work cache are not recomputed"


def host_text(torch_threads: int = 1) -> str:
    """The machine, the Python version, the core count and the torch threads, e.g. for a result's ``"host"``."""
    threads = f"{torch_threads} torch thread{'s' if torch_threads != 1 else ''}"
    return f"{platform.machine()} ({platform.python_version()}), shared {os.cpu_count()}-core machine, {threads}"


def run_footer(result: Mapping[str, Any], note: str = WORK_CACHE_NOTE) -> str:
    """``Run: `command`; N s on host for this run (note).`` from a result's ``command``, ``wall_s`` and ``host``."""
    return f"Run: `{result['command']}`; {result['wall_s']:.0f} s on {result['host']} for this run ({note})."
