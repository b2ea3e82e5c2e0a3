"""dlib face machines: HOG face detector, 68-point landmarks and the 128-d face embedding.

Models: dlib's frontal face detector (HOG + linear SVM, built into
``dlib-bin``) and the ``face_recognition_models`` files
``shape_predictor_68_face_landmarks.dat`` and
``dlib_face_recognition_resnet_model_v1.dat``. The model folder is located
without importing ``face_recognition_models`` (its ``__init__`` needs
``pkg_resources``, i.e. ``setuptools<81``).

Faces are found with one 2× upsampling pass (faces down to about 40 px) and
kept at a detector score (SVM margin) ≥ :data:`MIN_FACE_SCORE`. The
landmark and embedding machines are *face-conditioned*: they vote only when
the original has a face, and judge the faces found on it (see
:class:`FaceConditioned`).
"""

from __future__ import annotations

import functools
import importlib.util
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector, Instance, PerInstance
from training.machines._matching import Box, Detection, normalised_landmark_error
from training.machines._runtime import file_available, modules_available
from training.machines.base import MACHINES

_INSTALL = "install them with: pip install dlib-bin face-recognition-models"
MIN_FACE_SCORE = 0.3  # SVM margin; dlib's own default (0) keeps flickering marginal boxes
UPSAMPLE = 1
LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
EMBEDDING_FILE = "dlib_face_recognition_resnet_model_v1.dat"
OUTER_EYE_CORNERS = (36, 45)  # indices in the 68-point iBUG scheme


def _model_file(filename: str) -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models" / filename


def _availability(*files: str) -> Availability:
    status = modules_available("dlib", hint=_INSTALL)
    for filename in files:
        if not status.available:
            return status
        status = file_available(_model_file(filename), f"dlib model {filename}", _INSTALL)
    return status


@functools.cache
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def _dlib_model(kind: str, filename: str) -> Any:
    import dlib

    path = _model_file(filename)
    if path is None or not path.is_file():
        raise LabellerUnavailableError(f"dlib model {filename} not found ({path}); {_INSTALL}")
    return getattr(dlib, kind)(str(path))


def _faces(rgb: RGBImage) -> list[tuple[Any, Box, float]]:
    """dlib rectangles, their boxes (x0, y0, x1, y1) and scores, for faces scoring ≥ MIN_FACE_SCORE."""
    rects, scores, _ = _detector().run(np.ascontiguousarray(rgb), UPSAMPLE, 0.0)
    found = []
    for rect, score in zip(rects, scores, strict=True):
        if score >= MIN_FACE_SCORE:
            box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
            found.append((rect, box, float(score)))
    return found


@MACHINES.register
class DlibHOGFace(Detector):
    """Frontal faces by dlib's HOG + linear SVM detector."""

    name = "dlib_hog_face"
    task = "face"
    version = "2"
    min_score: ClassVar[float | None] = MIN_FACE_SCORE
    score_unit: ClassVar[str] = " (SVM margin)"

    @classmethod
    def availability(cls) -> Availability:
        return _availability()

    def _run(self, rgb: RGBImage) -> list[Detection]:
        return [Detection(box=box, score=score) for _, box, score in _faces(rgb)]


Face = Instance
"""One face: its detector box and score, and a per-face vector (landmarks (x, y) pairs or an embedding)."""


class FaceConditioned(PerInstance):
    """A machine that measures something on each face dlib finds on the original (see :class:`PerInstance`).

    Faces that appear only on the compressed image are ignored: hallucinated
    faces are ``dlib_hog_face``'s concern, which runs the same detector.
    """

    instance = "face"

    @classmethod
    def availability(cls) -> Availability:
        return _availability(LANDMARKS_FILE, EMBEDDING_FILE)

    def _run(self, rgb: RGBImage) -> list[Instance]:
        return [Instance(box, score, self._measure(rgb, rect)) for rect, box, score in _faces(rgb)]

    @abstractmethod
    def _measure(self, rgb: RGBImage, rect: Any) -> tuple[float, ...]: ...


@MACHINES.register
class DlibLandmarks68(FaceConditioned):
    """68 facial landmarks (iBUG 300-W scheme) by dlib's regression-tree shape predictor."""

    name = "dlib_landmarks68"
    task = "landmarks"
    version = "2"
    max_error: ClassVar[float] = 0.02
    closeness = (
        f"the mean landmark displacement divided by the original's outer-eye-corner distance is ≤ {max_error:g} "
        f"(faces: dlib HOG, score ≥ {MIN_FACE_SCORE:g})"
    )

    @classmethod
    def availability(cls) -> Availability:
        return _availability(LANDMARKS_FILE)

    def _measure(self, rgb: RGBImage, rect: Any) -> tuple[float, ...]:
        shape = _dlib_model("shape_predictor", LANDMARKS_FILE)(rgb, rect)
        return tuple(float(v) for p in shape.parts() for v in (p.x, p.y))

    def close(self, original: Face, compressed: Face) -> bool:
        error = normalised_landmark_error(
            np.reshape(original.values, (-1, 2)), np.reshape(compressed.values, (-1, 2)), *OUTER_EYE_CORNERS
        )
        return error <= self.max_error


@MACHINES.register
class DlibFaceEmbedding(FaceConditioned):
    """128-d face descriptor by dlib's ResNet (the ``face_recognition`` model), one per face.

    ``max_distance = 0.3`` is half of dlib's documented same-person distance
    (0.6): compression may use up at most half of the verification margin
    before the face would no longer reliably match other photos of the person.
    """

    name = "dlib_face_embedding"
    task = "face_recognition"
    version = "2"
    max_distance: ClassVar[float] = 0.3
    closeness = (
        f"the Euclidean distance between the 128-d descriptors is ≤ {max_distance:g} (half dlib's 0.6 "
        f"same-person threshold; faces: dlib HOG, score ≥ {MIN_FACE_SCORE:g})"
    )

    def _measure(self, rgb: RGBImage, rect: Any) -> tuple[float, ...]:
        shape = _dlib_model("shape_predictor", LANDMARKS_FILE)(rgb, rect)
        descriptor = _dlib_model("face_recognition_model_v1", EMBEDDING_FILE).compute_face_descriptor(rgb, shape)
        return tuple(float(v) for v in descriptor)

    def close(self, original: Face, compressed: Face) -> bool:
        distance = float(np.linalg.norm(np.subtract(original.values, compressed.values)))
        return distance <= self.max_distance
