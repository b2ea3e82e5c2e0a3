"""The pure level search: properties over synthetic level curves (hypothesis) and a few worked cases."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sursmr.rate_control import STRATEGIES, Probe, Targets, search, verify
from sursmr_core.errors import InputError, TargetUnreachable
from sursmr_core.levels import LevelAxis

WALKS = ["bisect", "interpolate"]


class FakeCodec:
    """Synthetic curves indexed worst→best quality; records every batch of levels evaluated."""

    def __init__(self, axis: LevelAxis, sur: Sequence[float], smr: Sequence[float], nbytes: Sequence[int]) -> None:
        self.order = axis.worst_to_best()
        self.table = {lv: (sur[i], smr[i], nbytes[i]) for i, lv in enumerate(self.order)}
        self.calls: list[list[int]] = []

    def __call__(self, levels: Sequence[int]) -> list[Probe]:
        self.calls.append(list(levels))
        return [Probe(lv, self.table[lv][2], self.table[lv][0], self.table[lv][1], 0.01) for lv in levels]

    @property
    def evaluated(self) -> int:
        return sum(len(c) for c in self.calls)


def exhaustive_answer(codec: FakeCodec, targets: Targets) -> Probe | None:
    probes = [Probe(lv, b, s, m) for lv, (s, m, b) in codec.table.items()]
    passing = [p for p in probes if targets.passes(p)]
    return min(passing, key=lambda p: p.nbytes) if passing else None


axes = st.sampled_from(
    [LevelAxis(1, 100, "higher"), LevelAxis(0, 51, "lower"), LevelAxis(0, 63, "lower"), LevelAxis(3, 9, "higher")]
)
unit = st.floats(0, 1, allow_nan=False)


@st.composite
def monotone_curves(draw: st.DrawFn) -> tuple[LevelAxis, FakeCodec]:
    axis = draw(axes)
    n = axis.hi - axis.lo + 1
    sur = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    smr = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    steps = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
    nbytes = [100 + sum(steps[: i + 1]) for i in range(n)]  # strictly growing with quality
    return axis, FakeCodec(axis, sur, smr, nbytes)


@st.composite
def jagged_curves(draw: st.DrawFn) -> tuple[LevelAxis, FakeCodec]:
    axis = draw(axes)
    n = axis.hi - axis.lo + 1
    sur = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    smr = draw(st.lists(unit, min_size=n, max_size=n))  # SMR is not monotone
    nbytes = draw(st.lists(st.integers(10, 10_000), min_size=n, max_size=n))  # nor, here, are bytes
    return axis, FakeCodec(axis, sur, smr, nbytes)


targets_st = st.builds(
    Targets,
    sur=st.one_of(st.none(), st.floats(0, 0.95)),
    smr=st.floats(0, 0.95),
    margin=st.sampled_from([0.0, 0.0, 0.05]),
)


def test_the_registry_lists_the_strategies() -> None:
    assert STRATEGIES.names() == ["bisect", "exhaustive", "interpolate", "predicted"]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(monotone_curves(), targets_st, st.integers(1, 4), st.sampled_from(WALKS))
def test_walks_equal_exhaustive_on_monotone_curves(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, batch: int, strategy: str
) -> None:
    axis, codec = case
    expected = exhaustive_answer(codec, targets)
    if expected is None:
        with pytest.raises(TargetUnreachable) as info:
            search(axis, codec, targets, strategy=strategy, batch=batch)
        assert info.value.probes and info.value.best in info.value.probes
        return
    result = search(axis, codec, targets, strategy=strategy, batch=batch)
    assert result.best.level == expected.level
    assert result.strategy == strategy
    # no level is evaluated twice, every evaluation is kept, batches respect `batch`
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})
    assert all(len(call) <= max(batch, 2) for call in codec.calls)


@settings(max_examples=200, deadline=None)
@given(
    jagged_curves(),
    targets_st,
    st.sampled_from([*WALKS, "exhaustive"]),
    st.one_of(st.none(), st.integers(1, 12)),
    st.integers(1, 3),
)
@pytest.mark.slow
def test_result_passes_and_is_the_smallest_passing_probe(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, strategy: str, budget: int | None, batch: int
) -> None:
    axis, codec = case
    try:
        result = search(axis, codec, targets, strategy=strategy, max_probes=budget, batch=batch)
    except TargetUnreachable as exc:
        assert exc.probes and not any(targets.passes(p) for p in exc.probes)
        assert exc.best in exc.probes
        assert all(targets.shortfall(exc.best) <= targets.shortfall(p) for p in exc.probes)
        assert budget is None or len(exc.probes) <= budget
        if strategy == "exhaustive" and budget is None:
            assert exhaustive_answer(codec, targets) is None
        return
    assert targets.passes(result.best)
    assert result.best.nbytes == min(p.nbytes for p in result.probes if targets.passes(p))
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})
    assert budget is None or len(result.probes) <= budget
    if strategy == "exhaustive" and budget is None:
        expected = exhaustive_answer(codec, targets)
        assert expected is not None and result.best.nbytes == expected.nbytes


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(jagged_curves(), st.floats(0, 0.9), st.sampled_from(WALKS), st.integers(1, 3))
def test_walks_find_a_level_whenever_the_best_level_passes(
    case: tuple[LevelAxis, FakeCodec], target_sur: float, strategy: str, batch: int
) -> None:
    axis, codec = case
    best_sur, best_smr, _ = codec.table[axis.worst_to_best()[-1]]
    targets = Targets(min(target_sur, best_sur), best_smr)
    assert targets.passes(search(axis, codec, targets, strategy=strategy, batch=batch).best)


def sigmoid_codec(axis: LevelAxis) -> FakeCodec:
    n = axis.hi - axis.lo + 1
    sur = [1 / (1 + math.exp(-(i - 0.6 * n) / (0.08 * n))) for i in range(n)]
    return FakeCodec(axis, sur, sur, [1000 + 40 * i for i in range(n)])


@pytest.mark.parametrize("axis", [LevelAxis(1, 100, "higher"), LevelAxis(0, 51, "lower")])
def test_walks_probe_a_fraction_of_the_axis(axis: LevelAxis) -> None:
    counts = {}
    for strategy in [*WALKS, "exhaustive"]:
        codec = sigmoid_codec(axis)
        result = search(axis, codec, Targets(0.75, None), strategy=strategy)
        assert result.best == search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
        counts[strategy] = len(result.probes)
    n = axis.hi - axis.lo + 1
    assert counts["exhaustive"] == n
    assert counts["bisect"] <= math.ceil(math.log2(n)) + 1
    assert counts["interpolate"] <= counts["bisect"]


def test_smr_dip_at_the_sur_boundary_is_stepped_over() -> None:
    axis = LevelAxis(0, 10, "lower")  # worst_to_best: 10, 9, ..., 0
    sur = [i / 10 for i in range(11)]
    smr = [1.0] * 11
    smr[6] = 0.0  # the level the SUR bisection lands on
    codec = FakeCodec(axis, sur, smr, [100 * (i + 1) for i in range(11)])
    result = search(axis, codec, Targets(0.6, 0.9))
    assert result.best.level == axis.worst_to_best()[7] == 3


def test_the_smallest_passing_probe_wins_not_the_last_one() -> None:
    # bytes are not monotone here: the level found last is bigger than one found earlier
    axis = LevelAxis(1, 5, "higher")
    codec = FakeCodec(axis, [0.1, 0.2, 0.8, 0.9, 1.0], [1.0] * 5, [10, 20, 500, 40, 50])
    result = search(axis, codec, Targets(0.75, None), strategy="exhaustive")
    assert result.best.level == 4 and result.best.nbytes == 40


def test_margin_raises_the_bar() -> None:
    axis = LevelAxis(1, 10, "higher")
    ramp = [i / 9 for i in range(10)]
    codec = FakeCodec(axis, ramp, [1.0] * 10, list(range(10, 20)))
    plain = search(axis, codec, Targets(0.5, None))
    safer = search(axis, codec, Targets(0.5, None, margin=0.2))
    assert plain.best.sur < 0.7 <= safer.best.sur
    assert safer.best.level > plain.best.level


def test_budget_is_respected_and_the_best_so_far_returned() -> None:
    axis = LevelAxis(1, 100, "higher")
    ramp = [i / 99 for i in range(100)]
    codec = FakeCodec(axis, ramp, ramp, list(range(1000, 1100)))
    result = search(axis, codec, Targets(0.5, None), max_probes=3)
    assert len(result.probes) == codec.evaluated == 3
    assert result.best.sur >= 0.5 and result.best.level > 51  # not the optimum (51), but passing


def test_unreachable_carries_the_closest_attempt_and_every_probe() -> None:
    axis = LevelAxis(1, 10, "higher")
    codec = FakeCodec(axis, [0.1 * i for i in range(10)], [0.5] * 10, list(range(10)))
    with pytest.raises(TargetUnreachable) as info:
        search(axis, codec, Targets(0.95, 0.4))
    assert info.value.best.level == 10 and "closest" in str(info.value)
    assert len(info.value.probes) == 1  # SUR is monotone: the best level failing settles it
    with pytest.raises(TargetUnreachable) as info:
        search(axis, codec, Targets(0.95, 0.4), strategy="exhaustive")
    assert len(info.value.probes) == 10 and info.value.best.level == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sur": None, "smr": None},
        {"sur": 1.5},
        {"smr": -0.1},
        {"sur": math.nan},
        {"sur": 0.9, "margin": 0.2},
        {"margin": -0.1},
        {"sur": "0.5"},
    ],
)
def test_bad_targets_are_input_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Targets(**kwargs)  # type: ignore[arg-type]


def test_bad_search_arguments() -> None:
    axis = LevelAxis(1, 10, "higher")
    codec = FakeCodec(axis, [1.0] * 10, [1.0] * 10, list(range(10)))
    with pytest.raises(InputError):
        search(axis, codec, Targets(0.5), max_probes=0)
    with pytest.raises(InputError):
        search(axis, codec, Targets(0.5), batch=0)
    with pytest.raises(InputError, match="unknown strategy"):
        search(axis, codec, Targets(0.5), strategy="golden")
    assert codec.calls == []


def shifted_prior(codec: FakeCodec, shift: int) -> dict[int, tuple[float, float]]:
    """The codec's true curves moved ``shift`` axis steps (positive: the prior thinks quality is lower)."""
    order = codec.order
    last = len(order) - 1
    return {
        level: codec.table[order[min(last, max(0, i - shift))]][:2]  # type: ignore[misc]
        for i, level in enumerate(order)
    }


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(monotone_curves(), targets_st, st.integers(1, 4), st.integers(-15, 15))
def test_predicted_equals_exhaustive_on_monotone_curves_whatever_the_prior(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, batch: int, shift: int
) -> None:
    axis, codec = case
    prior = shifted_prior(codec, shift)
    expected = exhaustive_answer(codec, targets)
    if expected is None:
        with pytest.raises(TargetUnreachable) as info:
            search(axis, codec, targets, strategy="predicted", batch=batch, prior=prior)
        assert info.value.probes and info.value.best in info.value.probes
        return
    result = search(axis, codec, targets, strategy="predicted", batch=batch, prior=prior)
    assert result.best.level == expected.level
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(jagged_curves(), targets_st, st.one_of(st.none(), st.integers(1, 12)), st.integers(-20, 20))
def test_predicted_never_returns_a_failing_probe_and_keeps_every_probe(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, budget: int | None, shift: int
) -> None:
    axis, codec = case
    try:
        prior = shifted_prior(codec, shift)
        result = search(axis, codec, targets, strategy="predicted", max_probes=budget, prior=prior)
    except TargetUnreachable as exc:
        assert exc.probes and not any(targets.passes(p) for p in exc.probes)
        assert budget is None or len(exc.probes) <= budget
        return
    assert targets.passes(result.best)
    assert result.best.nbytes == min(p.nbytes for p in result.probes if targets.passes(p))
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})
    assert budget is None or len(result.probes) <= budget


@pytest.mark.parametrize("axis", [LevelAxis(1, 100, "higher"), LevelAxis(0, 51, "lower"), LevelAxis(0, 63, "lower")])
def test_a_right_prior_settles_the_level_in_two_encodes_and_a_near_one_in_three(axis: LevelAxis) -> None:
    expected = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    for shift, most in [(0, 2), (1, 3), (-1, 3)]:
        codec = sigmoid_codec(axis)
        result = search(axis, codec, Targets(0.75, None), strategy="predicted", prior=shifted_prior(codec, shift))
        assert result.best == expected
        assert codec.evaluated <= most, (shift, codec.calls)


@pytest.mark.parametrize("shift", [10, -10, 15])
def test_a_prior_off_by_many_levels_is_moved_onto_the_image_in_three_encodes(shift: int) -> None:
    # a population curve of the right shape in the wrong place: the first probe tells where the image sits
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    result = search(axis, codec, Targets(0.75, None), strategy="predicted", prior=shifted_prior(codec, shift))
    assert result.best == search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    assert codec.evaluated <= 3, codec.calls


@pytest.mark.parametrize("offset", [10, -10])
def test_a_prior_of_the_wrong_shape_falls_back_and_still_finds_the_answer(offset: int) -> None:
    # a step where the truth is a gentle S, 10 levels off: anchoring moves less than a level per probe
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    truth = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    step = truth.level + offset
    prior = {level: (1.0, 1.0) if level >= step else (0.0, 0.0) for level in range(1, 101)}
    result = search(axis, codec, Targets(0.75, None), strategy="predicted", prior=prior)
    assert result.best == truth
    assert 3 < codec.evaluated <= 3 + 2 * math.ceil(math.log2(20)) + 1  # galloped, then searched a small bracket
    assert [p.level for p in result.probes] == [lv for call in codec.calls for lv in call]


def test_predicted_without_a_prior_is_bisect() -> None:
    axis = LevelAxis(0, 51, "lower")
    walked, bisected = sigmoid_codec(axis), sigmoid_codec(axis)
    assert (
        search(axis, walked, Targets(0.75, 0.5), strategy="predicted").best
        == search(axis, bisected, Targets(0.75, 0.5)).best
    )
    assert walked.calls == bisected.calls


def test_parallel_encoders_get_the_moved_guess_and_its_confirming_neighbour_together() -> None:
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    expected = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    result = search(axis, codec, Targets(0.75, None), strategy="predicted", batch=2, prior=shifted_prior(codec, 10))
    assert result.best == expected
    assert len(codec.calls) == 2 and [len(call) for call in codec.calls] == [1, 2], codec.calls


@pytest.mark.parametrize("steepness", [0.5, 2.0])
def test_an_image_steeper_or_flatter_than_the_prior_is_followed_by_its_own_slope(steepness: float) -> None:
    # the prior has the right midpoint but twice or half the image's width: after two probes on one side the
    # secant through them (the image's slope) aims, and once bracketed regula falsi closes in
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    n = 100
    prior = {
        level: (p, p)
        for level in range(1, 101)
        for p in [1 / (1 + math.exp(-((level - 1) - 0.6 * n + 12) / (0.08 * n * steepness)))]
    }
    result = search(axis, codec, Targets(0.75, None), strategy="predicted", prior=prior)
    assert result.best == search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    assert codec.evaluated <= 5, codec.calls


def test_verify_evaluates_only_the_given_levels_and_never_returns_a_failing_one() -> None:
    axis = LevelAxis(1, 20, "higher")
    sur = [i / 19 for i in range(20)]  # passes 0.75 from level 16
    codec = FakeCodec(axis, sur, [1.0] * 20, [100 * (i + 1) for i in range(20)])
    result = verify(axis, codec, Targets(0.75), [17])
    assert codec.calls == [[17]] and result.best.level == 17 and result.strategy == "verify"
    assert [p.level for p in result.probes] == [17]
    with pytest.raises(TargetUnreachable) as caught:
        verify(axis, codec, Targets(0.75), [10])
    assert codec.calls[-1] == [10] and caught.value.best.level == 10 and len(caught.value.probes) == 1
    # of several levels the passing one with the fewest bytes, not the last one
    assert verify(axis, codec, Targets(0.75), [20, 16, 3]).best.level == 16
    for bad in ([], [0], [21]):
        with pytest.raises(InputError):
            verify(axis, codec, Targets(0.75), bad)


@pytest.mark.parametrize("axis", [LevelAxis(1, 100, "higher"), LevelAxis(0, 51, "lower")])
def test_settling_saves_the_confirming_encode_where_the_images_own_line_says_it_fails(axis: LevelAxis) -> None:
    # an S-shaped (logit-linear) image curve: the line through a bracket's probes is right, so settling keeps
    # the exact answer, and it skips the neighbour's encode whenever the bracket was wider than one level
    truth = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    exact_total = settled_total = 0
    for shift in range(-12, 13):
        exact, settled = sigmoid_codec(axis), sigmoid_codec(axis)
        prior = shifted_prior(exact, shift)
        search(axis, exact, Targets(0.75, None), strategy="predicted", prior=prior)
        result = search(axis, settled, Targets(0.75, None), strategy="predicted", prior=prior, settle_margin=0.0)
        assert result.best == truth, shift
        assert settled.evaluated <= exact.evaluated, shift
        exact_total += exact.evaluated
        settled_total += settled.evaluated
    assert settled_total < exact_total


def test_one_probe_never_settles_however_sure_the_prior_is() -> None:
    # the prior is a step right where the first probe lands, so it "knows" the level below fails; only the
    # image's own probes may say so, so the neighbour is still encoded
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    truth = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    prior = {level: (0.99, 0.99) if level >= truth.level else (0.01, 0.01) for level in range(1, 101)}
    result = search(axis, codec, Targets(0.75, None), strategy="predicted", prior=prior, settle_margin=0.0)
    assert result.best == truth and codec.evaluated >= 2


def test_a_large_settle_margin_is_the_exact_search() -> None:
    axis = LevelAxis(1, 100, "higher")
    for shift in (-6, 0, 4, 12):
        exact, cautious = sigmoid_codec(axis), sigmoid_codec(axis)
        prior = shifted_prior(exact, shift)
        a = search(axis, exact, Targets(0.75, None), strategy="predicted", prior=prior)
        b = search(axis, cautious, Targets(0.75, None), strategy="predicted", prior=prior, settle_margin=1e6)
        assert a.best == b.best and exact.calls == cautious.calls


def test_settling_on_a_wrong_prior_costs_bytes_never_a_failing_answer() -> None:
    # the prior thinks the image is 8 levels harder than it is: the first probe passes with room to spare,
    # so the moved curve predicts its neighbour passes too and the search goes on down
    axis = LevelAxis(1, 100, "higher")
    codec = sigmoid_codec(axis)
    truth = search(axis, sigmoid_codec(axis), Targets(0.75, None), strategy="exhaustive").best
    result = search(
        axis, codec, Targets(0.75, None), strategy="predicted", prior=shifted_prior(codec, 8), settle_margin=0.0
    )
    assert Targets(0.75, None).passes(result.best)
    assert result.best.level >= truth.level and result.best.level - truth.level <= 2
    assert result.best.nbytes == min(p.nbytes for p in result.probes if Targets(0.75, None).passes(p))


@settings(max_examples=100, deadline=None)
@given(jagged_curves(), targets_st, st.integers(-20, 20), st.sampled_from([0.0, 0.3, 1.0]))
def test_settling_never_returns_a_failing_probe(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, shift: int, margin: float
) -> None:
    axis, codec = case
    try:
        result = search(
            axis, codec, targets, strategy="predicted", prior=shifted_prior(codec, shift), settle_margin=margin
        )
    except TargetUnreachable as exc:
        assert exc.probes and not any(targets.passes(p) for p in exc.probes)
        return
    assert targets.passes(result.best)
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})


def test_settle_margin_must_be_a_finite_non_negative_number() -> None:
    axis = LevelAxis(1, 100, "higher")
    for bad in (-0.5, float("inf"), float("nan"), "1"):
        with pytest.raises(InputError, match="settle_margin"):
            search(axis, sigmoid_codec(axis), Targets(0.75), strategy="predicted", settle_margin=bad)  # type: ignore[arg-type]
