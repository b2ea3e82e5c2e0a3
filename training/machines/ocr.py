"""OCR machines: RapidOCR (PP-OCRv4 on onnxruntime) and Tesseract 5 (LSTM engine), and RapidOCR's text detector alone.

* ``rapidocr``: ``rapidocr-onnxruntime==1.4.4`` with its bundled PP-OCRv4
  detection + recognition models and the angle classifier, default settings
  (text score ≥ 0.5), our fixed thread count. Its recogniser is trained on
  Chinese and English.
* ``rapidocr_text_boxes``: RapidOCR's PP-OCRv4 text *detection* stage alone
  (DB text-line boxes, its default box threshold 0.5), judged as a detector:
  it finds where text is even when the recogniser misreads it, so it votes
  on images whose text is too small or stylised to read.
* ``tesseract``: the ``tesseract`` program (Debian ``tesseract-ocr`` +
  ``tesseract-ocr-eng``), English, automatic page segmentation, run through
  :func:`sursmr_core.toolrun.run_tool` with the PNG on stdin and OpenMP limited to
  one thread.
"""

from __future__ import annotations

import functools
import io
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from sursmr_core.errors import LabellerUnavailableError, ToolError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector, TextReader
from training.machines._matching import Detection
from training.machines._runtime import MACHINE_THREADS, modules_available, program_available
from training.machines.base import MACHINES

_RAPID_INSTALL = "install it with: pip install rapidocr-onnxruntime==1.4.4 'opencv-python-headless<5'"
_TESSERACT_INSTALL = "install it with: apt-get install tesseract-ocr tesseract-ocr-eng (or your OS's package)"


@functools.cache
def _rapidocr() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=MACHINE_THREADS, inter_op_num_threads=MACHINE_THREADS)


@MACHINES.register
class RapidOCRReader(TextReader):
    """Text lines read by RapidOCR (PP-OCRv4 det + rec), in its top-to-bottom, left-to-right order."""

    name = "rapidocr"
    version = "2"

    @classmethod
    def availability(cls) -> Availability:
        return modules_available("rapidocr_onnxruntime", "onnxruntime", "cv2", hint=_RAPID_INSTALL)

    def _run(self, rgb: RGBImage) -> str:
        # RapidOCR treats 3-channel arrays as OpenCV's BGR order
        result, _ = _rapidocr()(rgb[:, :, ::-1].copy())
        return "\n".join(str(line[1]) for line in result or ())


@MACHINES.register
class RapidOCRTextBoxes(Detector):
    """Axis-aligned boxes of the text lines found by RapidOCR's detection stage (no recognition)."""

    name = "rapidocr_text_boxes"
    task = "text_detection"
    version = "1"
    min_score: ClassVar[float | None] = None  # the detector returns no per-box score; its own threshold applies

    @classmethod
    def availability(cls) -> Availability:
        return modules_available("rapidocr_onnxruntime", "onnxruntime", "cv2", hint=_RAPID_INSTALL)

    def _run(self, rgb: RGBImage) -> list[Detection]:
        boxes, _ = _rapidocr()(rgb[:, :, ::-1].copy(), use_det=True, use_cls=False, use_rec=False)
        found = []
        for quad in boxes if boxes is not None else ():
            xy = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
            (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
            found.append(Detection(box=(float(x0), float(y0), float(x1), float(y1)), score=1.0))
        return found


@MACHINES.register
class TesseractReader(TextReader):
    """Text read by Tesseract 5 (English, LSTM engine, automatic page segmentation)."""

    name = "tesseract"
    version = "2"
    timeout_s: ClassVar[float] = 60.0

    @classmethod
    def availability(cls) -> Availability:
        return program_available("tesseract", _TESSERACT_INSTALL)

    def _run(self, rgb: RGBImage) -> str:
        from sursmr_core.toolrun import run_tool

        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
        try:
            result = run_tool(
                ["env", f"OMP_THREAD_LIMIT={MACHINE_THREADS}", "tesseract", "stdin", "stdout", "-l", "eng"],
                timeout=self.timeout_s,
                stdin=buffer.getvalue(),
            )
        except ToolError as exc:
            raise LabellerUnavailableError(f"machine {self.name!r} failed: {exc}") from exc
        return result.stdout.decode("utf-8", "replace").strip()
