"""How zoo machines load and run models: lazily, once per process, CPU only, fixed threads.

Label generation runs many worker processes side by side, so every model
here runs on a fixed, small number of threads (:data:`MACHINE_THREADS`)
instead of one thread per core each. Thread settings that are process-wide
(torch, OpenCV) are set only for the duration of one call and restored
afterwards, so importing the zoo never changes how the rest of a process
(training, other tests) runs.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.levels import Availability

MACHINE_THREADS = 1
"""Threads each machine uses per call (ONNX intra/inter-op, torch, OpenCV)."""


def modules_available(*modules: str, hint: str) -> Availability:
    """Available when every top-level module can be found; else why not and how to fix (``hint``)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        return Availability(False, f"python module(s) {', '.join(missing)} not installed; {hint}")
    return Availability(True)


def program_available(program: str, hint: str) -> Availability:
    """Available when ``program`` is on PATH."""
    if shutil.which(program) is None:
        return Availability(False, f"program {program!r} not found on PATH; {hint}")
    return Availability(True)


def file_available(path: Path | None, what: str, hint: str) -> Availability:
    if path is None or not path.is_file():
        return Availability(False, f"{what} not found ({path}); {hint}")
    return Availability(True)


def require(name: str, status: Availability) -> None:
    """Raise :class:`LabellerUnavailableError` when a machine cannot run here."""
    if not status.available:
        raise LabellerUnavailableError(f"machine {name!r} is not available here: {status.reason}")


def onnx_session(path: Path | str) -> Any:
    """A CPU onnxruntime session on :data:`MACHINE_THREADS` threads, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = MACHINE_THREADS
    options.inter_op_num_threads = MACHINE_THREADS
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@contextmanager
def torch_threads() -> Iterator[None]:
    """Run the block with torch on :data:`MACHINE_THREADS` threads, restoring the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(MACHINE_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def opencv_threads() -> Iterator[None]:
    """Run the block with OpenCV on :data:`MACHINE_THREADS` threads, restoring the previous count."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(MACHINE_THREADS)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
