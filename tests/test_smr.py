"""SMR proxy labels from the machine zoo: the ratio, its edge cases, and running a zoo."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from sursmr_core.errors import InputError, LabellerUnavailableError, UnknownNameError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.labels.smr import (
    DEFAULT_MIN_APPLICABLE,
    analyse_all,
    applicable_per_crop,
    applicable_summary,
    best_level_index,
    judge_all,
    machine_report,
    smr_from_verdicts,
    smr_over_levels,
    zoo,
    zoo_status,
)
from training.machines import MACHINES, Machine


def test_smr_is_the_share_of_satisfied_among_applicable_machines() -> None:
    assert smr_from_verdicts({"a": True, "b": False, "c": True, "d": None}, min_applicable=3) == pytest.approx(2 / 3)
    assert smr_from_verdicts({"a": True}, min_applicable=1) == 1.0
    assert smr_from_verdicts({"a": False, "b": None}, min_applicable=1) == 0.0
    numpy_verdicts: dict[str, Any] = {"a": np.bool_(True), "b": np.bool_(False)}
    assert smr_from_verdicts(numpy_verdicts, min_applicable=2) == 0.5


def test_smr_needs_k_applicable_machines() -> None:
    assert DEFAULT_MIN_APPLICABLE == 4
    four = {"a": True, "b": False, "c": True, "d": True, "e": None}
    assert smr_from_verdicts(four) == 0.75  # 4 applicable: K = 4 is met
    three = {**four, "d": None}
    assert smr_from_verdicts(three) is None  # 3 applicable < K: no label, never 1.0 or 0.0
    assert smr_from_verdicts(three, min_applicable=3) == pytest.approx(2 / 3)
    assert smr_from_verdicts({"a": None, "b": None}, min_applicable=1) is None
    assert smr_from_verdicts({}, min_applicable=1) is None
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="min_applicable"):
            smr_from_verdicts(four, min_applicable=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1, 0.5, "yes"])
def test_smr_refuses_anything_but_true_false_none(bad: Any) -> None:
    with pytest.raises(InputError, match="verdict"):
        smr_from_verdicts({"a": True, "odd": bad})


def test_smr_over_levels_recomputes_from_stored_verdicts() -> None:
    stored: dict[str, list[bool | None]] = {
        "cls": [False, True, True],
        "det": [False, False, True],
        "ocr": [None, None, None],
        "face": [True, True, True],
    }
    assert smr_over_levels(stored, 3, min_applicable=3) == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert smr_over_levels(stored, 3) == [None, None, None]  # 3 applicable < K = 4
    assert smr_over_levels(stored, 3, jury=["cls", "det"], min_applicable=2) == [0.0, 0.5, 1.0]
    with pytest.raises(InputError, match="no verdicts of machine 'pose'"):
        smr_over_levels(stored, 3, jury=["cls", "pose"])
    with pytest.raises(InputError, match="2 levels"):
        smr_over_levels(stored, 2)


class MeanBrightness(Machine):
    """A toy machine (not registered): satisfied while mean brightness moves ≤ 10 levels; votes unless black."""

    name = "mean_brightness"
    task = "classification"
    rule: ClassVar[str] = "toy"

    def analyse(self, rgb: RGBImage) -> float:
        return float(rgb.mean())

    def applies(self, original: float) -> bool:
        return original != 0.0

    def satisfied(self, original: float, compressed: float) -> bool:
        return abs(original - compressed) <= 10.0


class HasRed(MeanBrightness):
    name = "has_red"

    def analyse(self, rgb: RGBImage) -> float:
        return float(rgb[:, :, 0].max())

    def applies(self, original: float) -> bool:
        return True

    def satisfied(self, original: float, compressed: float) -> bool:
        return (original > 128) == (compressed > 128)


def test_analyse_and_judge_a_zoo() -> None:
    machines = [MeanBrightness(), HasRed()]
    image = np.full((16, 16, 3), 100, dtype=np.uint8)
    image[0, 0, 0] = 200
    original = analyse_all(machines, image)
    assert set(original) == {"mean_brightness", "has_red"}
    darker = judge_all(machines, original, analyse_all(machines, image // 2))
    assert darker == {"mean_brightness": False, "has_red": False}
    assert smr_from_verdicts(darker, min_applicable=2) == 0.0
    same = judge_all(machines, original, analyse_all(machines, image))
    assert smr_from_verdicts(same, min_applicable=2) == 1.0
    black = np.zeros_like(image)
    # applicability is decided on the original: a black original gets no vote from mean_brightness...
    blind = judge_all(machines, analyse_all(machines, black), analyse_all(machines, image))
    assert blind == {"mean_brightness": None, "has_red": False}
    assert smr_from_verdicts(blind, min_applicable=1) == 0.0
    assert smr_from_verdicts(blind, min_applicable=2) is None
    # ...while a black compressed image of a votable original is a plain "not satisfied"
    assert judge_all(machines, original, analyse_all(machines, black))["mean_brightness"] is False


def test_judge_all_refuses_missing_results() -> None:
    machines = [MeanBrightness(), HasRed()]
    results = analyse_all(machines, np.full((16, 16, 3), 50, dtype=np.uint8))
    partial = {"mean_brightness": results["mean_brightness"]}
    with pytest.raises(InputError, match=r"has_red.*compressed"):
        judge_all(machines, results, partial)


def test_machines_must_be_distinct() -> None:
    with pytest.raises(InputError, match="distinct"):
        analyse_all([HasRed(), HasRed()], np.zeros((16, 16, 3), dtype=np.uint8))


def test_zoo_holds_the_available_machines() -> None:
    status = zoo_status()
    assert set(status) == set(MACHINES.names())
    assert [m.name for m in zoo()] == sorted(name for name, reason in status.items() if reason is None)


def test_zoo_by_name() -> None:
    available = [name for name, reason in zoo_status().items() if reason is None]
    if available:
        assert [m.name for m in zoo([available[0]])] == [available[0]]
    with pytest.raises(UnknownNameError):
        zoo(["no_such_machine"])


def test_zoo_refuses_a_named_unavailable_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    name = MACHINES.names()[0]
    monkeypatch.setattr(MACHINES.get(name), "availability", classmethod(lambda c: Availability(False, "not here")))
    assert zoo_status()[name] == "not here"
    assert name not in [m.name for m in zoo()]
    with pytest.raises(LabellerUnavailableError, match="not here"):
        zoo([name])


# --- the per-machine report ----------------------------------------------------------------


def _record(crop: str, codec: str, levels: list[int], better: str, verdicts: dict[str, list[bool | None]]) -> Any:
    return {
        "item_id": f"{crop}/{codec}",
        "crop_id": crop,
        "levels": levels,
        "better": better,
        "labels": {"machine_verdicts": verdicts},
    }


def test_best_level_follows_the_codec_direction() -> None:
    assert best_level_index(_record("c", "jpeg", [50, 95, 20], "higher", {})) == 1
    assert best_level_index(_record("c", "vvc", [30, 20, 40], "lower", {})) == 1
    with pytest.raises(InputError, match="better"):
        best_level_index({"item_id": "x", "levels": [1, 2]})


def test_machine_report_counts_applicability_and_best_level_noise_floor() -> None:
    records = [
        # jpeg: best level is 95 (index 2), worst 20 (index 0)
        _record("a", "jpeg", [20, 60, 95], "higher", {"cls": [False, True, True], "ocr": [None, None, None]}),
        _record("b", "jpeg", [20, 60, 95], "higher", {"cls": [False, False, False], "ocr": [False, True, True]}),
        # vvc: best level is QP 22 (index 0)
        _record("a", "vvc", [22, 37, 47], "lower", {"cls": [True, True, True], "ocr": [None, None, None]}),
        {
            **_record("c", "vvc", [22, 37, 47], "lower", {}),
            "labels": {
                "machine_verdicts": {"cls": [None, None, None]},
                "machine_verdicts_excluded": {"ocr": [True, True, True]},
            },
        },
    ]
    rows = {row.machine: row for row in machine_report(records)}
    assert set(rows) == {"cls", "ocr"}
    cls, ocr = rows["cls"], rows["ocr"]
    assert (cls.items, cls.applicable, cls.best_unsatisfied, cls.worst_unsatisfied) == (4, 3, 1, 2)
    assert cls.applicability_rate == 0.75 and cls.noise_floor == pytest.approx(1 / 3)
    assert cls.worst_level_unsatisfied == pytest.approx(2 / 3)
    assert (ocr.items, ocr.applicable, ocr.best_unsatisfied, ocr.worst_unsatisfied) == (4, 2, 0, 1)
    assert ocr.to_dict() == {
        "machine": "ocr",
        "items": 4,
        "applicable": 2,
        "applicability_rate": 0.5,
        "noise_floor": 0.0,
        "worst_level_unsatisfied": 0.5,
    }
    # a named machine nobody ran reports zero items and no rates (not 0 %)
    ghost = machine_report(records, machines=["pose"])[0]
    assert (ghost.items, ghost.applicability_rate, ghost.noise_floor) == (0, None, None)
    assert [row.machine for row in machine_report(records, machines=["ocr"])] == ["ocr"]
    with pytest.raises(InputError, match="2 verdicts for 3 levels"):
        machine_report([_record("d", "jpeg", [20, 60, 95], "higher", {"cls": [True, True]})])


def test_applicable_machines_per_crop() -> None:
    records = [
        _record("a", "jpeg", [20, 95], "higher", {"cls": [True, True], "ocr": [None, None], "det": [False, True]}),
        _record("a", "vvc", [22, 47], "lower", {"cls": [True, True], "ocr": [None, None], "det": [False, True]}),
        _record("b", "jpeg", [20, 95], "higher", {"cls": [None, None], "ocr": [None, None], "det": [None, None]}),
    ]
    counts = applicable_per_crop(records)
    assert counts == {"a": 2, "b": 0}
    assert applicable_per_crop(records, jury=["cls", "ocr"]) == {"a": 1, "b": 0}
    summary = applicable_summary([2, 0, 5, 6, 4], min_applicable=4)
    assert summary == {"crops": 5, "median": 4.0, "p10": pytest.approx(0.8), "below_k": 2, "k": 4}
    assert applicable_summary([])["median"] is None


def test_label_sweep_skips_machines_whose_task_does_not_apply() -> None:
    from training.datasets.labelling import LabelPipeline, label_sweep

    class Counting(MeanBrightness):
        calls = 0

        def analyse(self, rgb: RGBImage) -> float:
            type(self).calls += 1
            return super().analyse(rgb)

    class Metric:
        name, lower_is_better, version = "mae", True, "1"

        def score(self, reference: RGBImage, distorted: RGBImage) -> float:
            return float(np.abs(reference.astype(float) - distorted).mean())

    pipeline = LabelPipeline(
        metrics={"mae": Metric()},
        machines={"mean_brightness": Counting()},
        eq3=lambda scores, lower: np.linspace(1.0, 0.0, len(next(iter(scores.values())))),
        smr=lambda verdicts: smr_from_verdicts(verdicts, min_applicable=1),
    )
    black = np.zeros((16, 16, 3), dtype=np.uint8)
    labels = label_sweep(black, [black + 1, black + 50], pipeline)
    assert labels.verdicts == {"mean_brightness": [None, None]} and labels.smr == [None, None]
    assert Counting.calls == 1  # only the original was analysed
    grey = np.full((16, 16, 3), 100, dtype=np.uint8)
    labels = label_sweep(grey, [grey + 1, grey + 50], pipeline)
    assert labels.verdicts == {"mean_brightness": [True, False]} and labels.smr == [1.0, 0.0]
    assert Counting.calls == 4
