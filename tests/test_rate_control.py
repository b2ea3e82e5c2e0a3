"""The pure level search: properties over synthetic level curves with hypothesis."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_adapters.base import LevelAxis
from sursmr.errors import InputError, TargetUnreachable
from sursmr.rate_control import Probe, Targets, search


class FakeCodec:
    """Synthetic curves indexed worst→best; records every level evaluated."""

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
    passing = [Probe(lv, b, s, m) for lv, (s, m, b) in codec.table.items() if targets.passes(Probe(lv, b, s, m))]
    return min(passing, key=lambda p: p.nbytes) if passing else None


axes = st.sampled_from(
    [LevelAxis(1, 100, "higher"), LevelAxis(0, 51, "lower"), LevelAxis(0, 63, "lower"), LevelAxis(3, 9, "higher")]
)


@st.composite
def monotone_curves(draw: st.DrawFn) -> tuple[LevelAxis, FakeCodec]:
    axis = draw(axes)
    n = axis.hi - axis.lo + 1
    unit = st.floats(0, 1, allow_nan=False)
    sur = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    smr = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    steps = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
    nbytes = [100 + sum(steps[: i + 1]) for i in range(n)]  # strictly growing with quality
    return axis, FakeCodec(axis, sur, smr, nbytes)


@st.composite
def jagged_curves(draw: st.DrawFn) -> tuple[LevelAxis, FakeCodec]:
    axis = draw(axes)
    n = axis.hi - axis.lo + 1
    unit = st.floats(0, 1, allow_nan=False)
    sur = sorted(draw(st.lists(unit, min_size=n, max_size=n)))
    smr = draw(st.lists(unit, min_size=n, max_size=n))  # SMR is not monotone
    nbytes = draw(st.lists(st.integers(10, 10_000), min_size=n, max_size=n))
    return axis, FakeCodec(axis, sur, smr, nbytes)


targets_st = st.builds(
    Targets,
    sur=st.one_of(st.none(), st.floats(0, 0.98)),
    smr=st.floats(0, 0.98),
    margin=st.sampled_from([0.0, 0.0, 0.02]),
)


@settings(max_examples=60, deadline=None)
@given(monotone_curves(), targets_st, st.integers(1, 4))
def test_bisect_equals_exhaustive_on_monotone_curves(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, batch: int
) -> None:
    axis, codec = case
    expected = exhaustive_answer(codec, targets)
    if expected is None:
        with pytest.raises(TargetUnreachable) as info:
            search(axis, codec, targets, batch=batch)
        assert info.value.probes and info.value.best in info.value.probes
        return
    result = search(axis, codec, targets, batch=batch)
    assert result.best.level == expected.level
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})


@settings(max_examples=60, deadline=None)
@given(
    jagged_curves(),
    targets_st,
    st.sampled_from(["bisect", "interpolate", "exhaustive"]),
    st.one_of(st.none(), st.integers(1, 12)),
    st.integers(1, 3),
)
def test_result_passes_and_is_the_smallest_passing_probe(
    case: tuple[LevelAxis, FakeCodec], targets: Targets, strategy: str, budget: int | None, batch: int
) -> None:
    axis, codec = case
    try:
        result = search(axis, codec, targets, strategy=strategy, max_probes=budget, batch=batch)
    except TargetUnreachable as exc:
        assert not any(targets.passes(p) for p in exc.probes)
        assert exc.best in exc.probes
        assert all(targets.shortfall(exc.best) <= targets.shortfall(p) for p in exc.probes)
        assert budget is None or len(exc.probes) <= budget
        if strategy == "exhaustive" and budget is None:
            assert exhaustive_answer(codec, targets) is None
        return
    assert targets.passes(result.best)
    assert result.best.nbytes == min(p.nbytes for p in result.probes if targets.passes(p))
    assert codec.evaluated == len(result.probes) == len({p.level for p in result.probes})
    if budget is not None:
        assert len(result.probes) <= budget
    if strategy == "exhaustive" and budget is None:
        expected = exhaustive_answer(codec, targets)
        assert expected is not None and result.best.nbytes == expected.nbytes


@settings(max_examples=60, deadline=None)
@given(jagged_curves(), st.floats(0, 0.9))
def test_bisect_always_finds_a_level_when_the_best_level_passes(
    case: tuple[LevelAxis, FakeCodec], target_sur: float
) -> None:
    axis, codec = case
    best_sur, best_smr, _ = codec.table[axis.worst_to_best()[-1]]
    targets = Targets(min(target_sur, best_sur), best_smr)
    assert targets.passes(search(axis, codec, targets).best)


def test_bisect_uses_few_probes_on_a_long_axis() -> None:
    axis = LevelAxis(1, 100, "higher")
    ramp = [i / 99 for i in range(100)]
    codec = FakeCodec(axis, ramp, ramp, list(range(1000, 1100)))
    result = search(axis, codec, Targets(0.5, 0.3))
    assert result.best.level == 51  # first level with ramp ≥ 0.5
    assert len(result.probes) <= 9


def test_smr_dip_at_the_sur_boundary_is_stepped_over() -> None:
    axis = LevelAxis(0, 10, "lower")  # worst_to_best: 10, 9, ..., 0
    sur = [i / 10 for i in range(11)]
    smr = [1.0] * 11
    smr[6] = 0.0  # the level bisection on SUR lands on
    codec = FakeCodec(axis, sur, smr, [100 * (i + 1) for i in range(11)])
    result = search(axis, codec, Targets(0.6, 0.9))
    assert result.best.level == axis.worst_to_best()[7]


def test_margin_raises_the_bar() -> None:
    axis = LevelAxis(1, 10, "higher")
    ramp = [i / 9 for i in range(10)]
    codec = FakeCodec(axis, ramp, [1.0] * 10, list(range(10, 20)))
    plain = search(axis, codec, Targets(0.5, None))
    safer = search(axis, codec, Targets(0.5, None, margin=0.2))
    assert safer.best.sur >= 0.7 and safer.best.level > plain.best.level


def test_unreachable_carries_the_closest_attempt() -> None:
    axis = LevelAxis(1, 10, "higher")
    codec = FakeCodec(axis, [0.1 * i for i in range(10)], [0.5] * 10, list(range(10)))
    with pytest.raises(TargetUnreachable) as info:
        search(axis, codec, Targets(0.95, 0.4))
    assert info.value.best.level == 10 and "closest" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"sur": None, "smr": None}, {"sur": 1.5}, {"smr": -0.1}, {"sur": 0.9, "margin": 0.2}, {"margin": -0.1}],
)
def test_bad_targets_are_input_errors(kwargs: dict[str, float | None]) -> None:
    with pytest.raises(InputError):
        Targets(**kwargs)  # type: ignore[arg-type]


def test_bad_search_arguments() -> None:
    axis = LevelAxis(1, 10, "higher")
    codec = FakeCodec(axis, [1.0] * 10, [1.0] * 10, list(range(10)))
    with pytest.raises(InputError):
        search(axis, codec, Targets(0.5), max_probes=0)
    with pytest.raises(InputError, match="unknown strategy"):
        search(axis, codec, Targets(0.5), strategy="golden")
