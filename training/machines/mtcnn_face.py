"""MTCNN face machines (facenet-pytorch's bundled P/R/O-Net weights): face boxes and 5 facial landmarks.

``facenet-pytorch`` ships the three MTCNN stage networks inside its wheel
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``), so nothing is downloaded.
Install it with ``--no-deps``: its pinned torch/torchvision/Pillow
requirements would replace ours, and MTCNN needs nothing beyond torch and
torchvision. Settings: facenet-pytorch's defaults (stage thresholds 0.6 /
0.7 / 0.7, minimum face 20 px, scale factor 0.709), CPU, one thread.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np

from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector, Instance, Keypoints
from training.machines._matching import Detection
from training.machines._runtime import modules_available, torch_threads
from training.machines.base import MACHINES

_INSTALL = "install it with: pip install --no-deps facenet-pytorch==2.6.0 (needs torch and torchvision)"


def _availability() -> Availability:
    return modules_available("torch", "torchvision", "facenet_pytorch", hint=_INSTALL)


@functools.cache
def _mtcnn() -> Any:
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


def _detect(rgb: RGBImage) -> list[tuple[tuple[float, float, float, float], float, tuple[float, ...]]]:
    """(box, probability, 5 landmarks as x0, y0, ..., x4, y4) per face, boxes clipped to the image."""
    from PIL import Image

    with torch_threads():
        boxes, probs, points = _mtcnn().detect(Image.fromarray(rgb), landmarks=True)
    if boxes is None:
        return []
    height, width = rgb.shape[:2]
    found = []
    for box, prob, marks in zip(boxes, probs, points, strict=True):
        x0, x1 = (min(max(float(v), 0.0), width) for v in (box[0], box[2]))
        y0, y1 = (min(max(float(v), 0.0), height) for v in (box[1], box[3]))
        found.append(((x0, y0, x1, y1), float(prob), tuple(float(v) for v in np.asarray(marks).ravel())))
    return found


@MACHINES.register
class MTCNNFace(Detector):
    """Faces found by MTCNN (three-stage cascade of CNNs), kept at probability ≥ 0.3 (SMR-Net's threshold)."""

    name = "mtcnn_face"
    task = "face"
    version = "1"
    min_score: ClassVar[float | None] = 0.3

    @classmethod
    def availability(cls) -> Availability:
        return _availability()

    def _run(self, rgb: RGBImage) -> list[Detection]:
        return [Detection(box=box, score=prob) for box, prob, _ in _detect(rgb)]


@MACHINES.register
class MTCNNLandmarks(Keypoints):
    """MTCNN's 5 facial landmarks (eye centres, nose tip, mouth corners) per face."""

    name = "mtcnn_landmarks5"
    version = "1"
    instance = "face"

    @classmethod
    def availability(cls) -> Availability:
        return _availability()

    def _run(self, rgb: RGBImage) -> list[Instance]:
        return [Instance(box, prob, marks) for box, prob, marks in _detect(rgb)]
