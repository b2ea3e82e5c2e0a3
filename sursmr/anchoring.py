"""Anchor a population prior to one image with the probes it already has (pure logic, no I/O).

A prior (:data:`sursmr.rate_control.Prior`) says what SUR and SMR a typical
image gets at each level of a codec. Images differ mostly by *where* along
the level axis their curves rise, much less by the curves' shape. So after one
probe at axis index ``i`` scored ``s``, the prior curve ``P`` is moved along
the axis until it passes through that point, ``P'(x) = P(x - δ)`` with
``δ = i - P⁻¹(s)``, and the moved curve gives the guess for the level where
the image meets the target: ``P⁻¹(t) + δ``. With several targets the guess is
the highest of their crossings. This is Newton's step with the slope taken
from the population's curve instead of from a second probe.

Curves are handled on axis indices (0 = worst quality, as
:meth:`sursmr_core.levels.LevelAxis.worst_to_best` orders the levels): the
prior's levels are interpolated linearly onto every index, held flat beyond
its first and last level, and made non-decreasing (a running maximum), so the
inverse is defined. A ratio outside the curve's range (a saturated probe,
SUR 0.9999 where the prior tops out at 0.998) gives only a bound on ``δ``;
the bound is used as if it were the value, and the next probe corrects it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sursmr_core.errors import InputError


def logit(ratio: float) -> float:
    """``log(r / (1 - r))`` with ``ratio`` clipped to [0.001, 0.999] (a ratio of exactly 0 or 1 stays finite)."""
    clipped = min(max(ratio, 1e-3), 1.0 - 1e-3)
    return math.log(clipped / (1.0 - clipped))


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


class PriorCurve:
    """One ratio's prior over axis indices ``0..top``: non-decreasing, with a continuous inverse."""

    def __init__(self, values: Sequence[float]) -> None:
        if not values:
            raise InputError("a prior curve needs at least one value")
        running: list[float] = []
        for value in values:
            if not math.isfinite(value):
                raise InputError(f"prior curve values must be finite, got {value!r}")
            running.append(value if not running else max(running[-1], value))
        self.values = running

    @property
    def top(self) -> int:
        return len(self.values) - 1

    def crossing(self, value: float) -> float:
        """The smallest continuous index where the curve reaches ``value``, clamped to ``[0, top]``.

        ``0`` when even the worst level's prior reaches ``value``; ``top`` when no level's does.
        """
        values = self.values
        if value <= values[0]:
            return 0.0
        for index in range(1, len(values)):
            if values[index] >= value:
                below = values[index - 1]
                step = values[index] - below
                return index - 1 + ((value - below) / step if step > 0 else 1.0)
        return float(self.top)

    def position(self, value: float) -> float:
        """Where an image that scored ``value`` sits on this curve: :meth:`crossing`, except at the floor.

        A ratio at or below the worst level's prior says only that the image's
        curve has not started to rise yet: the answer is the last index of the
        curve's floor (the least shift that explains it), not index 0. A ratio
        at or above the curve's ceiling gives the first index of the ceiling.
        """
        values = self.values
        if value >= values[-1] > values[0]:
            return self.crossing(values[-1])  # at the ceiling: where the curve first gets there
        if value > values[0]:
            return self.crossing(value)
        last = 0
        while last + 1 < len(values) and values[last + 1] <= value:
            last += 1
        return float(last)

    def reaches(self, value: float) -> bool:
        """True when some level's prior reaches ``value``."""
        return self.values[-1] >= value


def curves_on_axis(prior: Mapping[int, tuple[float, float]], order: Sequence[int]) -> dict[str, PriorCurve]:
    """``{"sur": curve, "smr": curve}`` over the indices of ``order`` (levels worst to best).

    Levels of ``prior`` not on the axis are ignored; between the prior's levels
    the values are interpolated on the index, beyond them held flat. Raises
    :class:`InputError` when no prior level lies on the axis.
    """
    index_of = {level: i for i, level in enumerate(order)}
    known = sorted((index_of[level], sur, smr) for level, (sur, smr) in prior.items() if level in index_of)
    if not known:
        raise InputError("the prior has no level on this codec's axis")
    curves: dict[str, PriorCurve] = {}
    for column, name in ((1, "sur"), (2, "smr")):
        points = [(float(row[0]), float(row[column])) for row in known]
        values: list[float] = []
        at = 0
        for index in range(len(order)):
            while at + 1 < len(points) and points[at + 1][0] <= index:
                at += 1
            x0, y0 = points[at]
            if index <= x0 or at + 1 == len(points):
                values.append(y0)
            else:
                x1, y1 = points[at + 1]
                values.append(y0 + (y1 - y0) * (index - x0) / (x1 - x0))
        curves[name] = PriorCurve(values)
    return curves


def first_guess(curves: Mapping[str, PriorCurve], required: Mapping[str, float]) -> int:
    """The lowest index whose prior meets every required ratio (the top index when the prior never does)."""
    return shifted_guess(curves, required, 0.0)


def _binding(curves: Mapping[str, PriorCurve], required: Mapping[str, float]) -> str:
    """The required ratio whose prior crossing comes last: the one that decides where the prior meets the targets."""
    return max(required, key=lambda name: curves[name].crossing(required[name]))


def transition_width(curve: PriorCurve, need: float) -> float:
    """How many indices the curve takes to climb from one logit below ``need`` to one logit above (at least 0.5).

    A codec's own unit of movement along its axis: a prior that rises over 3
    QP steps and one that rises over 8 JPEG quality steps both have one width
    between 27 % and 73 % around a target of 0.5.
    """
    below = curve.crossing(_sigmoid(logit(need) - 1.0))
    above = curve.crossing(_sigmoid(logit(need) + 1.0))
    return max(0.5, above - below)


def relative_shift(curves: Mapping[str, PriorCurve], required: Mapping[str, float], found: int) -> float | None:
    """Where an image's lowest passing index ``found`` sits against the prior's guess, in transition widths.

    ``(found - c) / w`` with ``c`` the prior's continuous crossing of the
    binding ratio and ``w`` its :func:`transition_width` there: a
    codec-independent measure of how much harder (> 0) or easier (< 0) this
    image is than the population, to be applied to another codec's prior with
    :func:`shifted_guess`. None when the prior never reaches a required ratio
    (its guess is only the top index then, which says nothing).
    """
    if not all(curves[name].reaches(need) for name, need in required.items()):
        return None
    name = _binding(curves, required)
    crossing = curves[name].crossing(required[name])
    return (found - crossing) / transition_width(curves[name], required[name])


def shifted_guess(curves: Mapping[str, PriorCurve], required: Mapping[str, float], shift: float) -> int:
    """The prior's lowest index meeting ``required``, moved by ``shift`` transition widths, clamped to the axis.

    ``shift`` 0 is :func:`first_guess`; a shift from :func:`relative_shift`
    on another codec of the same image carries over what that codec's search
    learnt about the image. The top index when the prior never reaches a required ratio.
    """
    top = min(curve.top for curve in curves.values())
    if not all(curves[name].reaches(need) for name, need in required.items()):
        return top
    name = _binding(curves, required)
    guess = curves[name].crossing(required[name]) + shift * transition_width(curves[name], required[name])
    return min(top, max(0, math.ceil(guess - 1e-9)))


def anchored_guess(
    curves: Mapping[str, PriorCurve],
    index: int,
    observed: Mapping[str, float],
    required: Mapping[str, float],
) -> int:
    """The lowest index that meets ``required`` once the curves are moved through ``observed`` at ``index``.

    Each constrained ratio moves its own curve (SUR and SMR of one image need
    not sit at the same place relative to the population); the guess is the
    highest of the crossings, clamped to the axis. A required ratio the prior
    never reaches gives the top index.
    """
    top = min(curve.top for curve in curves.values())
    guess = 0.0
    for name, need in required.items():
        curve = curves[name]
        if not curve.reaches(need):
            return top
        shift = index - curve.position(observed[name])
        guess = max(guess, curve.crossing(need) + shift)
    return min(top, max(0, math.ceil(guess - 1e-9)))


def secant_crossing(points: Sequence[tuple[int, float]]) -> float | None:
    """Where the line through the two points nearest zero crosses it: ``(index, slack)`` pairs, one side of zero.

    ``slack`` is a monotone score that reaches 0 where the targets are met
    (:meth:`sursmr.rate_control.Targets.logit_slack`). The two points with
    the smallest ``|slack|`` (on distinct indices) give the image's own slope,
    which replaces the population's once an image has two probes on one side
    of its boundary. None when fewer than two distinct indices are known or
    the slope is not positive (a flat or non-monotone stretch says nothing
    about where the curve crosses).
    """
    nearest: dict[int, float] = {}
    for index, slack in sorted(points, key=lambda p: abs(p[1])):
        if index not in nearest and math.isfinite(slack):
            nearest[index] = slack
        if len(nearest) == 2:
            break
    if len(nearest) < 2:
        return None
    (i0, s0), (i1, s1) = sorted(nearest.items())
    slope = (s1 - s0) / (i1 - i0)
    if slope <= 0.0:
        return None
    return i0 - s0 / slope
