"""The machine zoo: pure matching maths, declared "satisfied" rules (no models) and the registry.

Every available machine on real photos: ``test_machine_zoo.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sursmr_core.errors import InputError, LabellerUnavailableError, UnsupportedImageError
from sursmr_core.levels import Availability
from training.machines import MACHINES, Machine
from training.machines._kinds import (
    ClassScores,
    Detector,
    Instance,
    Keypoints,
    Mask,
    ScoreClassifier,
    Segmenter,
    TextReader,
    Top1Classifier,
    mask_iou,
    matched_share,
)
from training.machines._matching import (
    Detection,
    box_iou,
    detection_f1,
    edit_distance,
    edit_similarity,
    match_detections,
    normalise_text,
    normalised_landmark_error,
)
from training.machines.dlib_face import DlibFaceEmbedding, DlibLandmarks68, Face

# --- pure matching maths -------------------------------------------------------------


def test_box_iou_hand_numbers() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges do not overlap
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_matching_maximises_the_number_of_pairs_not_greedy_overlap() -> None:
    a, b = Detection((0, 0, 10, 10), 1.0), Detection((0, 3, 10, 14), 1.0)
    x, y = Detection((0, 0, 10, 11), 1.0), Detection((0, 0, 16, 10), 1.0)
    assert box_iou(a.box, x.box) == pytest.approx(100 / 110)  # greedy would take a–x first...
    assert box_iou(b.box, y.box) == pytest.approx(70 / 200)  # ...and leave b–y below 0.5
    assert match_detections([a, b], [x, y]) == [(0, 1), (1, 0)]
    assert detection_f1([a, b], [x, y]) == 1.0


def test_matching_needs_equal_labels_and_enough_overlap() -> None:
    face = Detection((0, 0, 10, 10), 0.9, "FACE_FEMALE")
    assert match_detections([face], [Detection((0, 0, 10, 10), 0.9, "FACE_MALE")]) == []
    assert match_detections([face], [Detection((5, 0, 15, 10), 0.9, "FACE_FEMALE")]) == []  # IoU 1/3
    assert match_detections([face], [Detection((5, 0, 15, 10), 0.9, "FACE_FEMALE")], iou_threshold=0.3) == [(0, 0)]
    with pytest.raises(ValueError, match="iou_threshold"):
        match_detections([face], [face], iou_threshold=0.0)


def test_detection_f1_hand_numbers() -> None:
    boxes = [Detection((10.0 * i, 0, 10.0 * i + 8, 8), 1.0) for i in range(5)]
    assert detection_f1([], []) == 1.0
    assert detection_f1(boxes, []) == 0.0
    assert detection_f1([], boxes[:1]) == 0.0
    assert detection_f1(boxes, boxes[:4]) == pytest.approx(2 * 4 / 9)  # one miss in five: 0.889
    assert detection_f1(boxes[:2], boxes[:3]) == pytest.approx(2 * 2 / 5)  # one extra box: 0.8


def test_edit_distance_hand_numbers() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("", "abc") == edit_distance("abc", "") == 3
    assert edit_distance("日本語", "日本") == 1


def _reference_edit_distance(a: str, b: str) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[len(a)][len(b)]


@given(st.text(alphabet="abcé ", max_size=12), st.text(alphabet="abcé ", max_size=12))
def test_edit_distance_matches_the_textbook_table(a: str, b: str) -> None:
    assert edit_distance(a, b) == _reference_edit_distance(a, b)


def test_edit_similarity_ignores_whitespace_and_width_forms() -> None:
    assert normalise_text(" Region-based\n segmentation ") == "Region-basedsegmentation"
    assert edit_similarity("Region-based segmentation", "Region-basedsegmentation") == 1.0
    assert edit_similarity("ＡＢＣ", "ABC") == 1.0  # NFKC folds full-width letters
    assert edit_similarity("", "  ") == 1.0
    assert edit_similarity("abcdefghij", "abcdefghiX") == pytest.approx(0.9)
    assert edit_similarity("abc", "") == 0.0


def test_normalised_landmark_error_hand_numbers() -> None:
    reference = [(0.0, 0.0), (10.0, 0.0), (5.0, 5.0)]
    shifted = [(1.0, 0.0), (11.0, 0.0), (5.0, 0.0)]  # displacements 1, 1, 5 over an anchor distance of 10
    assert normalised_landmark_error(reference, shifted, 0, 1) == pytest.approx(7 / 3 / 10)
    assert normalised_landmark_error([(1.0, 1.0), (1.0, 1.0)], [(1.0, 1.0), (1.0, 1.0)], 0, 1) == math.inf
    with pytest.raises(ValueError, match="shape"):
        normalised_landmark_error(reference, shifted[:2], 0, 1)


# --- declared rules, on hand-made results (no models) ----------------------------------


def _first(kind: type) -> type[Machine]:
    for _, cls in MACHINES.items():
        if issubclass(cls, kind):
            return cls
    raise AssertionError(f"no registered machine is a {kind.__name__}")


def test_detector_votes_only_when_the_original_has_a_detection() -> None:
    detector = _first(Detector)()
    face = Detection((10, 10, 50, 50), 0.9)
    assert detector.judge((), ()) is None  # nothing found on the original: the task does not apply
    assert detector.judge((), (face,)) is None  # even when the compressed image "finds" something
    assert detector.judge((face,), ()) is False
    assert detector.judge((face,), (Detection((12, 11, 51, 50), 0.5),)) is True


def test_detector_rule_is_smr_net_half_of_the_original_matched() -> None:
    detector = _first(Detector)()
    assert (detector.iou_threshold, detector.min_matched_share) == (0.5, 0.5)
    four = tuple(Detection((60.0 * i, 0, 60.0 * i + 50, 50), 0.9, "person") for i in range(4))
    assert detector.judge(four, four[:2]) is True  # 2 of 4 matched: exactly 50 % is enough
    assert detector.judge(four, four[:1]) is False  # 1 of 4
    assert detector.judge(four[:1], four) is True  # extra detections on the compressed image do not fail it
    shifted = tuple(Detection((b.box[0] + 20, 0, b.box[2] + 20, 50), b.score, b.label) for b in four)
    assert detector.judge(four, shifted) is False  # IoU 30/70 = 0.43 < 0.5 for every box
    relabelled = tuple(Detection(b.box, b.score, "dog") for b in four)
    assert detector.judge(four, relabelled) is False  # same boxes, other class
    assert matched_share(four, four[:3], 0.5) == 0.75


def test_detector_keeps_detections_above_its_score_threshold() -> None:
    class Fixed(Detector):
        name = "fixed_test_detector"
        min_score = 0.3

        def _run(self, rgb: np.ndarray) -> list[Detection]:
            return [Detection((0, 0, 10, 10), 0.29), Detection((20, 0, 30, 10), 0.31), Detection((40, 0, 50, 9), 0.9)]

    found = Fixed().analyse(np.zeros((32, 64, 3), dtype=np.uint8))
    assert [d.score for d in found] == [0.9, 0.31]  # 0.29 is below SMR-Net's 0.3
    assert "score ≥ 0.3" in Fixed.applicability and "≥ 50% of the original's detections" in Fixed.rule


def test_text_reader_votes_only_when_the_original_has_text() -> None:
    reader = _first(TextReader)()
    assert reader.judge("", " \n") is None
    assert reader.judge(" ", "ghost") is None  # no text on the original: OCR does not apply
    assert reader.judge("Quick brown fox", "") is False
    assert reader.judge("Quick brown fox", "Quick brown f0x") is True  # 1 of 13 characters
    assert reader.judge("Quick brown fox", "Qu1ck brown f0x") is False  # 2 of 13: similarity 0.85


def test_classifier_votes_only_when_confident_on_the_original() -> None:
    top1 = _first(Top1Classifier)()
    assert top1.min_top1_probability == 0.5
    cat = ClassScores((285, 282), (0.6, 0.2))
    assert top1.judge(cat, ClassScores((285, 281), (0.4, 0.3))) is True
    assert top1.judge(cat, ClassScores((282, 285), (0.5, 0.4))) is False
    unsure = ClassScores((285, 282), (0.49, 0.3))
    assert top1.judge(unsure, ClassScores((282, 285), (0.5, 0.4))) is None  # p < 0.5 on the original
    assert top1.judge(ClassScores((285, 282), (0.5, 0.3)), ClassScores((285, 1), (0.2, 0.1))) is True  # boundary
    score = _first(ScoreClassifier)()
    assert score.judge(0.01, 0.02) is True  # odds × 2.0
    assert score.judge(0.01, 0.03) is False  # odds × 3.1
    assert score.judge(0.0, 0.0) is True  # clipped, no division by zero


def test_classifier_threshold_is_a_declared_parameter() -> None:
    class Strict(Top1Classifier):
        name = "strict_test_classifier"
        min_top1_probability = 0.8

        def _run(self, rgb: np.ndarray) -> ClassScores:
            return ClassScores((1,), (1.0,))

    assert Strict().judge(ClassScores((1, 2), (0.7, 0.1)), ClassScores((2, 1), (0.7, 0.1))) is None
    assert Strict().judge(ClassScores((1, 2), (0.8, 0.1)), ClassScores((2, 1), (0.7, 0.1))) is False
    assert "≥ 0.8" in Strict.applicability


def test_segmenter_rules() -> None:
    class Half(Segmenter):
        name = "half_test_segmenter"

        def _run(self, rgb: np.ndarray) -> Mask:
            return Mask.from_array(rgb[:, :, 0] > 128)

    machine = Half()
    empty = Mask.from_array(np.zeros((20, 20), dtype=bool))
    mask = np.zeros((20, 20), dtype=bool)
    mask[:, :10] = True  # 50 % of the image
    original = Mask.from_array(mask)
    assert original.to_array().tolist() == mask.tolist() and original.area_share == 0.5
    assert machine.judge(empty, original) is None  # nothing segmented on the original
    assert machine.judge(original, original) is True
    grown = mask.copy()
    grown[:, 10] = True  # IoU 200/220 = 0.909
    assert machine.judge(original, Mask.from_array(grown)) is True
    grown[:, 11] = True  # IoU 200/240 = 0.833
    assert machine.judge(original, Mask.from_array(grown)) is False
    assert mask_iou(empty, empty) == 1.0 and mask_iou(original, Mask.from_array(np.ones((5, 5)))) == 0.0


def test_keypoint_rule_scales_with_the_box() -> None:
    class Points(Keypoints):
        name = "points_test"
        instance = "hand"

        def _run(self, rgb: np.ndarray) -> list[Instance]:
            return []

    machine = Points()
    box = (0.0, 0.0, 30.0, 40.0)  # diagonal 50 px: 2 % is 1 px
    hand = Instance(box, 1.0, (10.0, 10.0, 20.0, 20.0))
    assert machine.judge((), (hand,)) is None
    assert machine.judge((hand,), (Instance(box, 1.0, (10.9, 10.0, 20.9, 20.0)),)) is True
    assert machine.judge((hand,), (Instance(box, 1.0, (11.1, 10.0, 21.1, 20.0)),)) is False
    assert machine.judge((hand,), (Instance(box, 1.0, (10.0, 10.0)),)) is False  # points lost
    assert "hand" in Points.applicability and "box diagonal" in Points.rule


def _face(box: tuple[float, float, float, float], values: list[float]) -> Face:
    return Face(box=box, score=1.0, values=tuple(values))


def test_landmark_rule() -> None:
    machine = DlibLandmarks68()
    points = np.zeros((68, 2))
    points[36], points[45] = (100.0, 100.0), (150.0, 100.0)  # inter-ocular distance 50 px
    face = _face((80, 80, 170, 170), points.ravel().tolist())
    near = _face((81, 80, 170, 171), np.add(points, (0.9, 0.0)).ravel().tolist())  # 0.018 of 50 px
    far = _face((81, 80, 170, 171), np.add(points, (1.1, 0.0)).ravel().tolist())  # 0.022
    elsewhere = _face((300, 300, 390, 390), points.ravel().tolist())
    assert machine.judge((), (face,)) is None  # face-conditioned: no face on the original, no vote
    assert machine.judge((face,), (near,)) is True
    assert machine.judge((face,), (far,)) is False
    assert machine.judge((face,), (elsewhere,)) is False  # the original's face was lost
    assert machine.judge((face,), (near, elsewhere)) is True  # an extra face is not this machine's concern


def test_embedding_rule() -> None:
    machine = DlibFaceEmbedding()
    base = np.zeros(128)
    face = _face((0, 0, 90, 90), base.tolist())
    assert machine.judge((face,), (_face((0, 0, 90, 90), (base + 0.29 / math.sqrt(128)).tolist()),)) is True
    assert machine.judge((face,), (_face((0, 0, 90, 90), (base + 0.31 / math.sqrt(128)).tolist()),)) is False


# --- the registry ----------------------------------------------------------------------


def test_registry_declares_every_machine() -> None:
    assert len(MACHINES) >= 16
    assert len({cls.task for _, cls in MACHINES.items()}) >= 6
    for name, cls in MACHINES.items():
        assert cls.name == name
        assert cls.task and cls.version and len(cls.rule) > 20, name
        assert isinstance(cls.availability(), Availability)
        status = cls.availability()
        assert status.available or status.reason, f"{name} is unavailable without a reason"
        assert cls.applicability.startswith("votes when"), name
        if issubclass(cls, Detector):  # the rule text is derived from the declared numbers
            assert f"≥ {cls.min_matched_share:.0%} of the original's detections" in cls.rule
            assert f"IoU ≥ {cls.iou_threshold:g}" in cls.rule


def test_installed_zoo_is_diverse() -> None:
    available = [cls for _, cls in MACHINES.items() if cls.availability().available]
    if len(available) < 16:
        pytest.skip(f"only {len(available)} machines available here: {[c.name for c in available]}")
    assert len({cls.task for cls in available}) >= 6


def test_unavailable_machine_refuses_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = _first(Detector)
    monkeypatch.setattr(cls, "availability", classmethod(lambda c: Availability(False, "test says no")))
    with pytest.raises(LabellerUnavailableError, match="test says no"):
        cls().analyse(np.zeros((32, 32, 3), dtype=np.uint8))


def test_machine_rejects_bad_input() -> None:
    machine = _first(Detector)()
    with pytest.raises(UnsupportedImageError):
        machine.analyse(np.zeros((32, 32, 3), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        machine.analyse(np.zeros((8, 32, 3), dtype=np.uint8))
