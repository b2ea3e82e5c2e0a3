"""Classic OpenCV 4.x detectors: Viola–Jones Haar cascades and the Dalal–Triggs HOG people detector.

Needs OpenCV **4.x** (``opencv-python-headless<5``): OpenCV 5 dropped
``CascadeClassifier`` and ``HOGDescriptor`` from the main package. All run
on the greyscale image at its own resolution. Seven of the 17 bundled
cascades are zoo members (frontal and profile faces, eyes, upper and full
bodies, cat faces, licence plates); the others are variants of these
(alt/alt2/tree face models, eyeglasses, left/right eyes) or too specific to
vote on photos (smiles, lower bodies of a full-length view).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector
from training.machines._matching import Detection
from training.machines._runtime import modules_available, opencv_threads
from training.machines.base import MACHINES

_INSTALL = "install OpenCV 4 with: pip install 'opencv-python-headless>=4.8,<5'"


def _opencv4() -> Availability:
    status = modules_available("cv2", hint=_INSTALL)
    if not status.available:
        return status
    import cv2

    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "HOGDescriptor"):
        return Availability(False, f"OpenCV {cv2.__version__} has no CascadeClassifier/HOGDescriptor; {_INSTALL}")
    return Availability(True)


def _cascade_path(filename: str) -> Path | None:
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    return Path(folder) / filename if folder else None


@functools.cache
def _cascade(filename: str) -> Any:
    import cv2

    path = _cascade_path(filename)
    classifier = cv2.CascadeClassifier(str(path)) if path is not None and path.is_file() else None
    if classifier is None or classifier.empty():
        raise LabellerUnavailableError(f"Haar cascade {filename} not found or unreadable ({path}); {_INSTALL}")
    return classifier


@functools.cache
def _hog() -> Any:
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))
    return hog


def _grey(rgb: RGBImage) -> np.ndarray:
    import cv2

    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


class HaarCascade(Detector):
    """A Haar cascade run with OpenCV's detectMultiScale (scale step 1.1, ``min_neighbours`` grouping).

    The cascade gives no calibrated confidence: the score of a box is the
    number of raw neighbouring hits that were merged into it, and boxes with
    fewer than ``min_neighbours`` are already dropped by OpenCV, so no
    further score threshold applies.
    """

    cascade_file: ClassVar[str]
    min_neighbours: ClassVar[int] = 5
    min_score: ClassVar[float | None] = None
    rule_note: ClassVar[str] = f"; OpenCV detectMultiScale with scaleFactor 1.1, minNeighbors {min_neighbours}"

    @classmethod
    def availability(cls) -> Availability:
        status = _opencv4()
        if not status.available:
            return status
        path = _cascade_path(cls.cascade_file)
        if path is None or not path.is_file():
            return Availability(False, f"Haar cascade {cls.cascade_file} not found ({path}); {_INSTALL}")
        return Availability(True)

    def _run(self, rgb: RGBImage) -> list[Detection]:
        with opencv_threads():
            boxes, neighbours = _cascade(self.cascade_file).detectMultiScale2(
                _grey(rgb), scaleFactor=1.1, minNeighbors=self.min_neighbours
            )
        return [
            Detection(box=(float(x), float(y), float(x + w), float(y + h)), score=float(n))
            for (x, y, w, h), n in zip(np.reshape(boxes, (-1, 4)), np.reshape(neighbours, -1), strict=True)
        ]


@MACHINES.register
class HaarFrontalFace(HaarCascade):
    """Frontal faces (OpenCV's ``haarcascade_frontalface_default.xml``)."""

    name = "haar_frontal_face"
    task = "face"
    version = "2"
    cascade_file = "haarcascade_frontalface_default.xml"


@MACHINES.register
class HaarEyes(HaarCascade):
    """Eyes (OpenCV's ``haarcascade_eye.xml``)."""

    name = "haar_eyes"
    version = "2"
    cascade_file = "haarcascade_eye.xml"


@MACHINES.register
class HaarProfileFace(HaarCascade):
    """Faces in profile, facing left (OpenCV's ``haarcascade_profileface.xml``)."""

    name = "haar_profile_face"
    task = "face"
    version = "1"
    cascade_file = "haarcascade_profileface.xml"


@MACHINES.register
class HaarUpperBody(HaarCascade):
    """Head and shoulders (OpenCV's ``haarcascade_upperbody.xml``)."""

    name = "haar_upper_body"
    version = "1"
    cascade_file = "haarcascade_upperbody.xml"


@MACHINES.register
class HaarFullBody(HaarCascade):
    """Standing people, whole figure (OpenCV's ``haarcascade_fullbody.xml``)."""

    name = "haar_full_body"
    version = "1"
    cascade_file = "haarcascade_fullbody.xml"


@MACHINES.register
class HaarCatFace(HaarCascade):
    """Frontal cat faces (OpenCV's ``haarcascade_frontalcatface.xml``)."""

    name = "haar_cat_face"
    version = "1"
    cascade_file = "haarcascade_frontalcatface.xml"


@MACHINES.register
class HaarPlate(HaarCascade):
    """Licence plates, Russian layout (OpenCV's ``haarcascade_russian_plate_number.xml``)."""

    name = "haar_plate"
    version = "1"
    cascade_file = "haarcascade_russian_plate_number.xml"


@MACHINES.register
class HOGPeople(Detector):
    """Upright pedestrians: OpenCV's default HOG + linear SVM people detector (64×128 window, stride 8, scale 1.05).

    Scores are SVM margins, not probabilities. OpenCV's default hit threshold
    (margin 0) fires on much textured background, so boxes below a margin of
    0.5 are dropped. Images smaller than the detection window (64 wide,
    128 high) cannot hold a person it detects and give no detections
    (OpenCV 4.14 crashes the process on them).
    """

    window: ClassVar[tuple[int, int]] = (64, 128)  # width, height

    name = "hog_people"
    version = "2"
    min_score: ClassVar[float | None] = 0.5
    score_unit: ClassVar[str] = " (SVM margin)"

    @classmethod
    def availability(cls) -> Availability:
        return _opencv4()

    def _run(self, rgb: RGBImage) -> list[Detection]:
        if rgb.shape[1] < self.window[0] or rgb.shape[0] < self.window[1]:
            return []
        with opencv_threads():
            boxes, weights = _hog().detectMultiScale(_grey(rgb), winStride=(8, 8), padding=(8, 8), scale=1.05)
        return [
            Detection(box=(float(x), float(y), float(x + w), float(y + h)), score=float(s))
            for (x, y, w, h), s in zip(np.reshape(boxes, (-1, 4)), np.reshape(weights, -1), strict=True)
        ]
