"""The pure maths of moving a population prior onto one image (sursmr.anchoring)."""

from __future__ import annotations

import math

import pytest

from sursmr.anchoring import (
    PriorCurve,
    anchored_guess,
    curves_on_axis,
    first_guess,
    relative_shift,
    shifted_guess,
    transition_width,
)
from sursmr_core.errors import InputError


def test_curve_is_made_non_decreasing_and_inverted_by_interpolation() -> None:
    curve = PriorCurve([0.0, 0.2, 0.1, 0.6, 1.0])
    assert curve.values == [0.0, 0.2, 0.2, 0.6, 1.0]
    assert curve.crossing(0.4) == pytest.approx(2.5)
    assert curve.crossing(0.2) == pytest.approx(1.0)
    assert curve.crossing(-1.0) == 0.0  # the worst level already reaches it
    assert PriorCurve([0.0, 0.5]).crossing(0.9) == 1.0  # never reached: clamped to the top
    assert not PriorCurve([0.0, 0.5]).reaches(0.9)


def test_bad_curves_are_refused() -> None:
    with pytest.raises(InputError):
        PriorCurve([])
    with pytest.raises(InputError):
        PriorCurve([0.1, math.nan])


def test_prior_levels_are_spread_over_the_axis_indices() -> None:
    order = [50, 40, 30, 20, 10, 0]  # a "lower is better" axis, worst first
    curves = curves_on_axis({40: (0.2, 0.5), 20: (0.6, 0.9), 99: (1.0, 1.0)}, order)
    assert curves["sur"].values == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.6, 0.6])  # flat beyond the ends
    assert curves["smr"].values == pytest.approx([0.5, 0.5, 0.7, 0.9, 0.9, 0.9])
    with pytest.raises(InputError, match="no level"):
        curves_on_axis({99: (1.0, 1.0)}, order)


def linear(n: int, start: int) -> list[float]:
    """0 up to ``start``, then +0.1 per index up to 1."""
    return [min(1.0, max(0.0, (i - start) / 10)) for i in range(n)]


def test_a_shifted_image_is_found_from_one_probe() -> None:
    population = PriorCurve(linear(60, 20))  # crosses 0.75 at 27.5
    image = linear(60, 24)  # the same shape 4 indices later
    curves = {"sur": population, "smr": PriorCurve([0.0] * 10 + [1.0] * 50)}
    required = {"sur": 0.75}
    assert first_guess(curves, required) == 28
    guess = anchored_guess(curves, 28, {"sur": image[28], "smr": 1.0}, required)
    assert guess == 32 == min(i for i, v in enumerate(image) if v >= 0.75)


def test_a_probe_on_the_floor_moves_the_guess_by_the_least_shift_that_explains_it() -> None:
    curves = {"sur": PriorCurve(linear(60, 20)), "smr": PriorCurve([1.0] * 60)}
    # nothing risen yet at 28: the image starts at least 8 indices after the population
    assert anchored_guess(curves, 28, {"sur": 0.0, "smr": 1.0}, {"sur": 0.75}) == 36
    assert curves["sur"].position(0.0) == 20.0 and curves["sur"].crossing(0.0) == 0.0
    assert curves["sur"].position(1.0) == 30.0 == curves["sur"].crossing(1.0)  # the ceiling starts at 30


def test_the_binding_target_sets_the_guess() -> None:
    curves = {"sur": PriorCurve(linear(60, 10)), "smr": PriorCurve(linear(60, 30))}
    required = {"sur": 0.5, "smr": 0.9}
    # SUR: 0.5 at 20 where the population has it at 15 → shift +5 → 15 + 5 = 20;
    # SMR: 0.2 at 20 where the population has it at 32 → shift -12 → 39 - 12 = 27: SMR binds
    assert anchored_guess(curves, 20, {"sur": 0.5, "smr": 0.2}, required) == 27


def test_saturated_probes_and_unreachable_targets() -> None:
    curves = {"sur": PriorCurve(linear(60, 20)), "smr": PriorCurve([1.0] * 60)}
    # a probe at the curve's ceiling bounds the shift: the guess moves down, not up
    assert anchored_guess(curves, 50, {"sur": 1.0, "smr": 1.0}, {"sur": 0.75}) < 50
    # a target the population never reaches: the top index
    low = {"sur": PriorCurve([0.0, 0.3, 0.6]), "smr": PriorCurve([1.0] * 3)}
    assert anchored_guess(low, 0, {"sur": 0.0, "smr": 1.0}, {"sur": 0.9}) == 2
    assert first_guess(low, {"sur": 0.9}) == 2


def test_secant_uses_the_two_probes_nearest_the_boundary() -> None:
    from sursmr.anchoring import secant_crossing

    # slack rises by 0.5 per index between the two nearest probes: zero at 10 + 1.0 / 0.5 = 12
    assert secant_crossing([(2, -9.0), (8, -2.0), (10, -1.0)]) == pytest.approx(12.0)
    assert secant_crossing([(10, -1.0)]) is None  # one probe: no slope
    assert secant_crossing([(10, -1.0), (10, -1.5)]) is None  # one index twice
    assert secant_crossing([(8, -1.0), (10, -2.0)]) is None  # falling slack says nothing
    assert secant_crossing([(8, -1.0), (10, -1.0)]) is None  # flat stretch


def logistic(n: int, centre: float, scale: float) -> list[float]:
    """A population curve over ``n`` indices rising through 0.5 at ``centre``, ``scale`` indices per logit."""
    return [1.0 / (1.0 + math.exp(-(i - centre) / scale)) for i in range(n)]


def test_transition_width_is_the_curve_own_unit_of_movement() -> None:
    narrow, wide = PriorCurve(logistic(80, 20, 1.5)), PriorCurve(logistic(80, 40, 3.0))
    assert transition_width(narrow, 0.5) == pytest.approx(3.0, abs=0.15)  # two logits, 1.5 indices each
    assert transition_width(wide, 0.5) == pytest.approx(2 * transition_width(narrow, 0.5), rel=0.05)
    assert transition_width(PriorCurve([0.0] * 5 + [1.0] * 5), 0.5) >= 0.5  # a step is never a zero width


def test_a_shift_learnt_on_one_codec_moves_the_guess_of_another_by_its_own_widths() -> None:
    # codec A rises over 1.5 indices per logit, codec B over 3: the same image, 2 widths harder than the
    # population on A (found 6 indices after A's guess), is 12 indices after B's guess
    a = {"sur": PriorCurve(logistic(80, 20, 1.5)), "smr": PriorCurve([1.0] * 80)}
    b = {"sur": PriorCurve(logistic(80, 30, 3.0)), "smr": PriorCurve([1.0] * 80)}
    required = {"sur": 0.5}
    assert first_guess(a, required) == 20 and first_guess(b, required) == 30
    shift = relative_shift(a, required, 26)
    assert shift == pytest.approx(2.0, abs=0.1)
    assert shifted_guess(b, required, shift or 0.0) == 42
    assert shifted_guess(b, required, 0.0) == first_guess(b, required)
    assert shifted_guess(b, required, 100.0) == 79 and shifted_guess(b, required, -100.0) == 0  # clamped


def test_the_binding_ratio_decides_the_shift_and_a_prior_that_never_meets_the_targets_says_nothing() -> None:
    # SMR's prior meets 0.9 later than SUR's meets 0.5: SMR binds, so the shift is measured on SMR's curve
    curves = {"sur": PriorCurve(logistic(60, 10, 1.0)), "smr": PriorCurve(logistic(60, 20, 2.0))}
    required = {"sur": 0.5, "smr": 0.9}
    crossing = curves["smr"].crossing(0.9)
    assert first_guess(curves, required) == math.ceil(crossing)
    width = transition_width(curves["smr"], 0.9)
    assert relative_shift(curves, required, 30) == pytest.approx((30 - crossing) / width)
    low = {"sur": PriorCurve([0.1, 0.2, 0.3]), "smr": PriorCurve([1.0] * 3)}
    assert relative_shift(low, {"sur": 0.9}, 1) is None
    assert shifted_guess(low, {"sur": 0.9}, -3.0) == 2  # the top: no level's prior reaches the target
