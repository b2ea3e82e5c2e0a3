"""SMR proxy labels from the machine zoo: the ratio, its edge cases, and running a zoo."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from sursmr_core.errors import InputError, LabellerUnavailableError, UnknownNameError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.labels.smr import analyse_all, judge_all, smr_from_verdicts, zoo, zoo_status
from training.machines import MACHINES, Machine


def test_smr_is_the_share_of_satisfied_among_machines_that_judged() -> None:
    assert smr_from_verdicts({"a": True, "b": False, "c": True, "d": None}) == pytest.approx(2 / 3)
    assert smr_from_verdicts({"a": True}) == 1.0
    assert smr_from_verdicts({"a": False, "b": None}) == 0.0
    numpy_verdicts: dict[str, Any] = {"a": np.bool_(True), "b": np.bool_(False)}
    assert smr_from_verdicts(numpy_verdicts) == 0.5


def test_smr_is_unknown_when_no_machine_could_judge() -> None:
    assert smr_from_verdicts({"a": None, "b": None}) is None
    assert smr_from_verdicts({}) is None


@pytest.mark.parametrize("bad", [1, 0.5, "yes"])
def test_smr_refuses_anything_but_true_false_none(bad: Any) -> None:
    with pytest.raises(InputError, match="verdict"):
        smr_from_verdicts({"a": True, "odd": bad})


class MeanBrightness(Machine):
    """A toy machine (not registered): satisfied while mean brightness moves ≤ 10 levels; None on black."""

    name = "mean_brightness"
    task = "classification"
    rule: ClassVar[str] = "toy"

    def analyse(self, rgb: RGBImage) -> float:
        return float(rgb.mean())

    def judge(self, original: float, compressed: float) -> bool | None:
        if original == 0.0:
            return None
        return abs(original - compressed) <= 10.0


class HasRed(MeanBrightness):
    name = "has_red"

    def analyse(self, rgb: RGBImage) -> float:
        return float(rgb[:, :, 0].max())

    def judge(self, original: float, compressed: float) -> bool | None:
        return (original > 128) == (compressed > 128)


def test_analyse_and_judge_a_zoo() -> None:
    machines = [MeanBrightness(), HasRed()]
    image = np.full((16, 16, 3), 100, dtype=np.uint8)
    image[0, 0, 0] = 200
    original = analyse_all(machines, image)
    assert set(original) == {"mean_brightness", "has_red"}
    darker = judge_all(machines, original, analyse_all(machines, image // 2))
    assert darker == {"mean_brightness": False, "has_red": False}
    assert smr_from_verdicts(darker) == 0.0
    same = judge_all(machines, original, analyse_all(machines, image))
    assert smr_from_verdicts(same) == 1.0
    black = np.zeros_like(image)
    blind = judge_all(machines, analyse_all(machines, black), analyse_all(machines, black))
    assert blind == {"mean_brightness": None, "has_red": True}
    assert smr_from_verdicts(blind) == 1.0


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
