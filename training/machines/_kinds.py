"""Bases per kind of machine: what a result holds and when a machine is satisfied.

Each base owns the "satisfied" rule of its kind (``judge``) and the input
checks; concrete machines only run their model (``_run``) and declare the
rule's numbers as class attributes, which also fill in the ``rule`` text
written to label manifests.

Verdict semantics shared by the zoo (Eq. 1 of the paper: satisfied when the
machine's perception result on the compressed image is the same as, or close
enough to, its result on the original):

* ``True``: the result on the compressed image is close enough.
* ``False``: it changed too much — including when something appears that was
  not there (a detector or OCR engine that finds objects or text on the
  compressed image but found none on the original: an application would act
  on that hallucination, so the output changed).
* ``None``: the machine cannot judge this image — a detector or OCR engine
  with nothing found on either image, a face-conditioned machine (landmarks,
  embedding) with no face on the original. Such machines are left out of
  the SMR denominator, never counted as satisfied.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sursmr_core.imaging import MIN_SIDE, RGBImage, check_rgb
from training.machines._matching import Detection, detection_f1, edit_similarity
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


class Top1Classifier(CheckedMachine):
    """Satisfied when the top-1 class of the compressed image equals the original's."""

    task = "classification"
    top_k: ClassVar[int] = 5
    rule = (
        "satisfied when the top-1 class on the compressed image equals the top-1 class on the original "
        "(the classifier's decision is unchanged); always judges"
    )

    def analyse(self, rgb: RGBImage) -> ClassScores:
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> ClassScores: ...

    def judge(self, original: ClassScores, compressed: ClassScores) -> bool | None:
        return original.top1 == compressed.top1


def logit(probability: float, eps: float = 1e-7) -> float:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
    p = min(max(probability, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


class ScoreClassifier(CheckedMachine):
    """A binary classifier judged on its score: satisfied while the log-odds move by at most ``max_logit_change``.

    The decision at 0.5 alone almost never flips on ordinary photos (their
    score sits near 0), which would make such a machine a constant; the
    log-odds of the score is what a moderation pipeline thresholds and ranks
    by, and a change of 1.0 means the odds changed by a factor e ≈ 2.7.
    """

    task = "classification"
    max_logit_change: ClassVar[float] = 1.0

    def analyse(self, rgb: RGBImage) -> float:
        """The positive-class probability in [0, 1]."""
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> float: ...

    def judge(self, original: float, compressed: float) -> bool | None:
        return abs(logit(compressed) - logit(original)) <= self.max_logit_change


# --- detection -------------------------------------------------------------------


def detection_rule(min_score: float | None, iou: float, min_f1: float, score_unit: str = "") -> str:
    """The rule text of a :class:`Detector` with these numbers."""
    kept = "all detections" if min_score is None else f"detections with score ≥ {min_score:g}{score_unit}"
    return (
        f"{kept} are kept; compressed detections are matched one-to-one to the original's (same class, "
        f"IoU ≥ {iou:g}, maximum matching); satisfied when F1 against the original's detections ≥ {min_f1:g}; "
        "cannot judge (None) when neither image has a detection; detections on the compressed image when the "
        "original has none → not satisfied"
    )


class Detector(CheckedMachine):
    """A box detector judged by F1 of its compressed-image detections against its original-image detections.

    ``min_f1 = 0.8`` (default): with up to four objects any missed, extra or
    relabelled box fails the machine; from five objects on one miss in five
    is tolerated. IoU 0.5 and score 0.3 are SMR-Net's detection settings.
    """

    task = "detection"
    min_score: ClassVar[float | None] = 0.3
    iou_threshold: ClassVar[float] = 0.5
    min_f1: ClassVar[float] = 0.8
    score_unit: ClassVar[str] = ""  # e.g. " (SVM margin)" when scores are not probabilities
    rule_note: ClassVar[str] = ""  # detector settings worth writing next to the rule

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # the rule text is derived from the declared numbers, so the two cannot drift apart
        cls.rule = detection_rule(cls.min_score, cls.iou_threshold, cls.min_f1, cls.score_unit) + cls.rule_note

    def analyse(self, rgb: RGBImage) -> tuple[Detection, ...]:
        """Detections kept at ``min_score``, sorted by descending score then box."""
        found = self._run(self._check(rgb))
        kept = [d for d in found if self.min_score is None or d.score >= self.min_score]
        return tuple(sorted(kept, key=lambda d: (-d.score, d.box, d.label)))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> Sequence[Detection]: ...

    def judge(self, original: Sequence[Detection], compressed: Sequence[Detection]) -> bool | None:
        if not original and not compressed:
            return None
        return detection_f1(original, compressed, self.iou_threshold) >= self.min_f1


# --- OCR ---------------------------------------------------------------------------


class TextReader(CheckedMachine):
    """An OCR engine judged by normalised edit similarity of the recognised text.

    ``min_similarity = 0.9``: at most one character in ten may change
    (character error rate ≤ 10 % against the original's reading), whitespace
    ignored. Below that a reader of the text would notice errors in most
    lines.
    """

    task = "ocr"
    min_similarity: ClassVar[float] = 0.9

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.rule = (
            "satisfied when the normalised edit similarity (1 - Levenshtein distance / longer length, NFKC, "
            f"whitespace removed) between the texts read on the compressed image and on the original is "
            f"≥ {cls.min_similarity:g}; cannot judge (None) when neither image yields text; text read on the "
            "compressed image when the original has none → not satisfied"
        )

    def analyse(self, rgb: RGBImage) -> str:
        """The recognised text, lines in reading order joined by newlines ("" when none)."""
        return self._run(self._check(rgb))

    @abstractmethod
    def _run(self, rgb: RGBImage) -> str: ...

    def judge(self, original: str, compressed: str) -> bool | None:
        if not original.strip() and not compressed.strip():
            return None
        return edit_similarity(original, compressed) >= self.min_similarity
