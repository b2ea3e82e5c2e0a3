"""Bases per kind of machine: what a result holds, when a machine votes, when it is satisfied.

Each base owns the two rules of its kind and the input checks; concrete
machines only run their model (``_run``) and declare the rules' numbers as
class attributes, which also fill in the ``rule`` and ``applicability``
texts written to label manifests (so text and numbers cannot drift apart).

**Applicability** (does the task apply to the original?) is decided on the
original's result alone, so a machine votes on every level of a crop or on
none:

* classifier: its top-1 probability on the original ≥ ``min_top1_probability``
  (0.5 by default: below that its "decision" is a coin toss and flips under
  any perturbation, which would be noise, not a verdict on compression);
* detector / face detector: at least one detection on the original above its
  score threshold;
* OCR: the original yields text;
* per-instance machines (landmarks, face embedding, pose, hands): at least
  one instance (face, person, hand) found on the original;
* segmentation: the original's mask covers at least ``min_area`` of the image.

**Satisfaction** follows SMR-Net (Zhang et al., arXiv 2211.06797, label
``SMR-top1`` and ``SMR-0.3-(0.5,0.5)``) where its tasks exist here:

* classification: top-1 class unchanged;
* detection: at least ``min_matched_share`` = 50 % of the original's
  detections with score ≥ 0.3 are matched one-to-one by a detection of the
  same class on the compressed image (score ≥ 0.3) with IoU ≥ 0.5.

Tasks SMR-Net has no rule for (OCR, landmarks, embeddings, binary scores,
segmentation) declare their own, documented on their base below.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from sursmr_core.imaging import MIN_SIDE, RGBImage, check_rgb
from training.machines._matching import Box, Detection, edit_similarity, match_detections, normalise_text
from training.machines._runtime import require
from training.machines.base import Machine


class CheckedMachine(Machine):
    """A machine whose ``analyse`` validates its input and refuses to run when unavailable."""

    min_side: ClassVar[int] = MIN_SIDE

    def _check(self, rgb: RGBImage) -> RGBImage:
        """The validated image as a C-contiguous array (OpenCV and dlib need one)."""
        check_rgb(rgb, name=f"machine {self.name} input", min_side=self.min_side)
        require(self.name, self.availability())
        return np.ascontiguousarray(rgb)


# --- classification ------------------------------------------------------------


@dataclass(frozen=True)
class ClassScores:
    """The top-k classes of a classifier, best first: class indices and softmax probabilities in [0, 1]."""

    labels: tuple[int, ...]
    probabilities: tuple[float, ...]

    @property
    def top1(self) -> int:
        return self.labels[0]


def classifier_applicability(min_top1_probability: float) -> str:
    return f"votes when its top-1 probability on the original is ≥ {min_top1_probability:g}"


class Top1Classifier(CheckedMachine):
    """SMR-Net's ``SMR-top1``: satisfied when the top-1 class of the compressed image equals the original's."""

    task = "classification"
    top_k: ClassVar[int] = 5
    min_top1_probability: ClassVar[float] = 0.5
    rule = "satisfied when the top-1 class on the compressed image equals the top-1 class on the original"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.applicability = classifier_applicability(cls.min_top1_probability)

    def analyse(self, rgb: RGBImage) -> ClassScores:
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> ClassScores: ...

    def applies(self, original: ClassScores) -> bool:
        return original.probabilities[0] >= self.min_top1_probability

    def satisfied(self, original: ClassScores, compressed: ClassScores) -> bool:
        return original.top1 == compressed.top1


def logit(probability: float, eps: float = 1e-7) -> float:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
    p = min(max(probability, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


class ScoreClassifier(CheckedMachine):
    """A binary classifier judged on its score: satisfied while the log-odds move by at most ``max_logit_change``.

    Applicability as for every classifier: the top-1 probability on the
    original, max(p, 1 - p), must reach ``min_top1_probability``. SMR-Net's
    top-1 rule would make such a machine a constant: on ordinary photos the
    positive score sits near 0 and the decision at 0.5 almost never flips.
    The log-odds is what a moderation pipeline thresholds and ranks by; a
    change of 1.0 means the odds changed by a factor e ≈ 2.7.
    """

    task = "classification"
    max_logit_change: ClassVar[float] = 1.0
    min_top1_probability: ClassVar[float] = 0.5

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.applicability = classifier_applicability(cls.min_top1_probability) + " (top-1 = max(p, 1 - p))"
        cls.rule = (
            "satisfied when the log-odds of the positive-class probability on the compressed image differ from the "
            f"original's by ≤ {cls.max_logit_change:g} (odds within a factor e^{cls.max_logit_change:g})"
        )

    def analyse(self, rgb: RGBImage) -> float:
        """The positive-class probability in [0, 1]."""
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> float: ...

    def applies(self, original: float) -> bool:
        return max(original, 1.0 - original) >= self.min_top1_probability

    def satisfied(self, original: float, compressed: float) -> bool:
        return abs(logit(compressed) - logit(original)) <= self.max_logit_change


# --- detection -------------------------------------------------------------------


def matched_share(reference: Sequence[Detection], candidate: Sequence[Detection], iou_threshold: float) -> float:
    """Share of ``reference`` detections matched one-to-one (same label, IoU ≥ threshold) in ``candidate``.

    1.0 when ``reference`` is empty (nothing to lose).
    """
    if not reference:
        return 1.0
    return len(match_detections(reference, candidate, iou_threshold)) / len(reference)


def detection_rule(min_score: float | None, iou: float, share: float, score_unit: str = "") -> str:
    """The "satisfied" text of a :class:`Detector` with these numbers."""
    kept = "all detections" if min_score is None else f"detections with score ≥ {min_score:g}{score_unit}"
    return (
        f"{kept} are kept on both images; satisfied when ≥ {share:.0%} of the original's detections are matched "
        f"one-to-one by a compressed-image detection of the same class with IoU ≥ {iou:g} (SMR-Net's rule)"
    )


class Detector(CheckedMachine):
    """A box detector judged by SMR-Net's ``SMR-0.3-(0.5,0.5)`` rule (see the module docstring).

    Votes only when the original has a detection above ``min_score``.
    Detections that appear only on the compressed image do not fail it
    (SMR-Net scores recall of the original's objects, not precision).
    """

    task = "detection"
    min_score: ClassVar[float | None] = 0.3
    iou_threshold: ClassVar[float] = 0.5
    min_matched_share: ClassVar[float] = 0.5
    score_unit: ClassVar[str] = ""  # e.g. " (SVM margin)" when scores are not probabilities
    rule_note: ClassVar[str] = ""  # detector settings worth writing next to the rule

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.rule = detection_rule(cls.min_score, cls.iou_threshold, cls.min_matched_share, cls.score_unit)
        cls.rule += cls.rule_note
        kept = "a detection" if cls.min_score is None else f"a detection with score ≥ {cls.min_score:g}{cls.score_unit}"
        cls.applicability = f"votes when the original has {kept}"

    def analyse(self, rgb: RGBImage) -> tuple[Detection, ...]:
        """Detections kept at ``min_score``, sorted by descending score then box."""
        found = self._run(self._check(rgb))
        kept = [d for d in found if self.min_score is None or d.score >= self.min_score]
        return tuple(sorted(kept, key=lambda d: (-d.score, d.box, d.label)))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> Sequence[Detection]: ...

    def applies(self, original: Sequence[Detection]) -> bool:
        return len(original) > 0

    def satisfied(self, original: Sequence[Detection], compressed: Sequence[Detection]) -> bool:
        return matched_share(original, compressed, self.iou_threshold) >= self.min_matched_share


# --- OCR ---------------------------------------------------------------------------


class TextReader(CheckedMachine):
    """An OCR engine judged by normalised edit similarity of the recognised text.

    Votes when the original yields text (after whitespace removal).
    ``min_similarity = 0.9``: at most one character in ten may change
    (character error rate ≤ 10 % against the original's reading). Below that
    a reader of the text would notice errors in most lines.
    """

    task = "ocr"
    min_similarity: ClassVar[float] = 0.9
    applicability = "votes when text is read on the original"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.rule = (
            "satisfied when the normalised edit similarity (1 - Levenshtein distance / longer length, NFKC, "
            f"whitespace removed) between the texts read on the compressed image and on the original is "
            f"≥ {cls.min_similarity:g}"
        )

    def analyse(self, rgb: RGBImage) -> str:
        """The recognised text, lines in reading order joined by newlines ("" when none)."""
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> str: ...

    def applies(self, original: str) -> bool:
        return bool(normalise_text(original))

    def satisfied(self, original: str, compressed: str) -> bool:
        return edit_similarity(original, compressed) >= self.min_similarity


# --- per-instance measurements (landmarks, embeddings, pose, hands) ---------------------


@dataclass(frozen=True)
class Instance:
    """One found object (a face, a hand, a person): its box, score and a per-instance vector.

    ``values``: landmarks as flattened (x, y) pixel pairs, or an embedding.
    """

    box: Box
    score: float
    values: tuple[float, ...]


class PerInstance(CheckedMachine):
    """A machine that measures something on each instance found on the original.

    Votes when the original has at least one instance. Instances are paired
    by box (IoU ≥ ``iou_threshold``, one-to-one). Satisfied when every
    instance of the original is found again and each pair is close
    (:meth:`close`). Instances that appear only on the compressed image are
    ignored: they have no reference to compare with.
    """

    iou_threshold: ClassVar[float] = 0.5
    instance: ClassVar[str] = "instance"  # what one instance is ("face", "hand"), for the rule texts
    closeness: ClassVar[str] = "close"  # the per-instance closeness rule, for the rule text

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.applicability = f"votes when a {cls.instance} is found on the original"
        cls.rule = (
            f"{cls.instance}s of the original are paired with the compressed image's by box IoU ≥ "
            f"{cls.iou_threshold:g}; satisfied when every original {cls.instance} is found again and, per "
            f"{cls.instance}, {cls.closeness}"
        )

    def analyse(self, rgb: RGBImage) -> tuple[Instance, ...]:
        found = self._run(self._check(rgb))
        return tuple(sorted(found, key=lambda f: (-f.score, f.box)))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> Sequence[Instance]: ...

    @abstractmethod
    def close(self, original: Instance, compressed: Instance) -> bool: ...

    def applies(self, original: Sequence[Instance]) -> bool:
        return len(original) > 0

    def satisfied(self, original: Sequence[Instance], compressed: Sequence[Instance]) -> bool:
        pairs = match_detections(
            [Detection(f.box, f.score) for f in original],
            [Detection(f.box, f.score) for f in compressed],
            self.iou_threshold,
        )
        if len(pairs) < len(original):
            return False
        return all(self.close(original[i], compressed[j]) for i, j in pairs)


def box_diagonal(box: Box) -> float:
    return math.hypot(box[2] - box[0], box[3] - box[1])


def point_error(original: Instance, compressed: Instance, scale: float) -> float:
    """Mean displacement of corresponding (x, y) points divided by ``scale`` (inf when scale is 0)."""
    ref = np.reshape(np.asarray(original.values, dtype=np.float64), (-1, 2))
    cand = np.reshape(np.asarray(compressed.values, dtype=np.float64), (-1, 2))
    if ref.shape != cand.shape:
        return math.inf
    if scale <= 0.0:
        return math.inf
    return float(np.linalg.norm(ref - cand, axis=1).mean() / scale)


class Keypoints(PerInstance):
    """Landmarks per instance, satisfied while the mean point displacement ≤ ``max_error`` × the box diagonal.

    The box diagonal of the original's instance is the scale (a face, hand
    or body of any size); ``max_error = 0.02`` is 2 % of it, about the
    precision of a hand-labelled landmark.
    """

    task = "landmarks"
    max_error: ClassVar[float] = 0.02

    def __init_subclass__(cls, **kwargs: object) -> None:
        cls.closeness = (
            f"the mean landmark displacement divided by the original {cls.instance}'s box diagonal is ≤ "
            f"{cls.max_error:g}"
        )
        super().__init_subclass__(**kwargs)

    def close(self, original: Instance, compressed: Instance) -> bool:
        return point_error(original, compressed, box_diagonal(original.box)) <= self.max_error


# --- segmentation --------------------------------------------------------------------


@dataclass(frozen=True)
class Mask:
    """A binary mask of shape ``(height, width)``, bit-packed row-major (``numpy.packbits``) so it compares by value."""

    height: int
    width: int
    bits: bytes

    @classmethod
    def from_array(cls, mask: npt.ArrayLike) -> Mask:
        array = np.asarray(mask, dtype=bool)
        if array.ndim != 2:
            raise ValueError(f"a mask must be 2-D, got shape {array.shape}")
        return cls(int(array.shape[0]), int(array.shape[1]), np.packbits(array).tobytes())

    def to_array(self) -> npt.NDArray[np.bool_]:
        flat = np.unpackbits(np.frombuffer(self.bits, dtype=np.uint8), count=self.height * self.width)
        return flat.reshape(self.height, self.width).astype(bool)

    @property
    def area_share(self) -> float:
        return float(self.to_array().mean()) if self.height * self.width else 0.0


def mask_iou(a: Mask, b: Mask) -> float:
    """Intersection over union of two masks of one shape; 1.0 when both are empty, 0.0 on a shape mismatch."""
    if (a.height, a.width) != (b.height, b.width):
        return 0.0
    x, y = a.to_array(), b.to_array()
    union = int(np.logical_or(x, y).sum())
    return 1.0 if union == 0 else float(np.logical_and(x, y).sum() / union)


class Segmenter(CheckedMachine):
    """A binary segmenter judged by mask IoU.

    Votes when the original's mask covers ≥ ``min_area`` of the image (the
    object is there). Satisfied when the compressed image's mask overlaps the
    original's with IoU ≥ ``min_iou``: 0.9 leaves room for the boundary
    pixels that flip under any re-encoding, not for a lost or grown region.
    """

    task = "segmentation"
    min_area: ClassVar[float] = 0.05
    min_iou: ClassVar[float] = 0.9

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.applicability = f"votes when the original's mask covers ≥ {cls.min_area:.0%} of the image"
        cls.rule = f"satisfied when the IoU of the compressed image's mask with the original's is ≥ {cls.min_iou:g}"

    def analyse(self, rgb: RGBImage) -> Mask:
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> Mask: ...

    def applies(self, original: Mask) -> bool:
        return original.area_share >= self.min_area

    def satisfied(self, original: Mask, compressed: Mask) -> bool:
        return mask_iou(original, compressed) >= self.min_iou
