"""Pure comparison maths shared by the machine zoo's "satisfied" rules.

No models and no I/O here: box IoU, one-to-one matching of detections, the
F1 of a candidate detection set against a reference set, normalised edit
similarity of strings and normalised landmark error. Every function is
deterministic and works on plain Python / numpy values.

Conventions: boxes are ``(x0, y0, x1, y1)`` in pixels with ``x1 ≥ x0`` and
``y1 ≥ y0`` (right/bottom edges exclusive, so a box's area is
``(x1 - x0) * (y1 - y0)``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]
"""An axis-aligned box ``(x0, y0, x1, y1)`` in pixels."""


@dataclass(frozen=True)
class Detection:
    """One detected object: box in pixels, detector score, class label ("" for one-class detectors)."""

    box: Box
    score: float
    label: str = ""


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, in [0, 1]; 0 when either box is empty."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_detections(
    reference: Sequence[Detection], candidate: Sequence[Detection], iou_threshold: float = 0.5
) -> list[tuple[int, int]]:
    """One-to-one matches ``(reference index, candidate index)`` between two detection sets.

    A pair may match only when the labels are equal and the IoU is at least
    ``iou_threshold``. Among all such matchings, the one with the most pairs
    is chosen (Hungarian algorithm), ties broken by the largest total IoU;
    pairs are returned sorted by reference index.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if not reference or not candidate:
        return []
    from scipy.optimize import linear_sum_assignment  # lazy: scipy.optimize takes ~0.8 s to import

    iou = np.array([[box_iou(r.box, c.box) for c in candidate] for r in reference], dtype=np.float64)
    labels_equal = np.array([[r.label == c.label for c in candidate] for r in reference], dtype=bool)
    valid = labels_equal & (iou >= iou_threshold)
    # A weight larger than any total IoU per pair makes "more pairs" dominate "more overlap".
    bonus = float(min(len(reference), len(candidate)) + 1)
    weight = np.where(valid, bonus + iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c])


def detection_f1(reference: Sequence[Detection], candidate: Sequence[Detection], iou_threshold: float = 0.5) -> float:
    """F1 of ``candidate`` detections scored against ``reference`` as ground truth, in [0, 1].

    Precision = matches / len(candidate), recall = matches / len(reference),
    with matches from :func:`match_detections`. Two empty sets agree
    perfectly (1.0); one empty and one not give 0.0.
    """
    if not reference and not candidate:
        return 1.0
    matches = len(match_detections(reference, candidate, iou_threshold))
    return 2.0 * matches / (len(reference) + len(candidate))


def normalise_text(text: str) -> str:
    """NFKC-normalised text with all whitespace removed.

    OCR engines differ in where they put spaces and line breaks (rapidocr's
    recogniser often drops spaces); those are layout, not content, so they
    do not count as changes.
    """
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit-cost insert, delete, substitute) between two strings.

    Row-by-row dynamic programme, vectorised with numpy: O(len(a)·len(b))
    work, O(len(b)) memory.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes_b = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1, dtype=np.int64)
    row = steps.copy()
    for i, char in enumerate(a, start=1):
        substitute = row[:-1] + (codes_b != ord(char))
        delete = row[1:] + 1
        head = np.empty_like(row)
        head[0] = i
        head[1:] = np.minimum(substitute, delete)
        # insertions chain along the row: d[j] = min_k≤j (head[k] + j - k)
        row = np.minimum.accumulate(head - steps) + steps
    return int(row[-1])


def edit_similarity(a: str, b: str) -> float:
    """``1 - edit_distance / max(len)`` of the :func:`normalise_text` forms, in [0, 1]; 1.0 when both are empty."""
    na, nb = normalise_text(a), normalise_text(b)
    longest = max(len(na), len(nb))
    if longest == 0:
        return 1.0
    return 1.0 - edit_distance(na, nb) / longest


def normalised_landmark_error(
    reference: npt.ArrayLike, candidate: npt.ArrayLike, left_index: int, right_index: int
) -> float:
    """Mean point displacement divided by the reference's distance between two anchor points.

    ``reference`` and ``candidate`` are (N, 2) arrays of (x, y) pixels with
    the same point order; the anchors are typically the outer eye corners
    (the "inter-ocular" normalisation of 300-W). Returns ``inf`` when the
    anchors coincide, so a degenerate reference never counts as close.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[1] != 2 or ref.shape != cand.shape:
        raise ValueError(f"landmarks must be two (N, 2) arrays of one shape, got {ref.shape} and {cand.shape}")
    scale = float(np.linalg.norm(ref[left_index] - ref[right_index]))
    if scale == 0.0:
        return float("inf")
    return float(np.linalg.norm(ref - cand, axis=1).mean() / scale)
