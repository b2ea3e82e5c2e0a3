"""Search a codec's level axis for the smallest bitstream whose predicted SUR and SMR meet targets.

Pure logic: no codecs, no model, no I/O. The caller supplies ``evaluate``,
which turns a list of levels into :class:`Probe` objects (encode, decode,
predict); the search decides which levels to ask for, keeps every probe and
returns the passing probe with the fewest bytes — never merely the last one
tried (the flaw of jpeg-recompress's bisection).

Strategies (registered in :data:`STRATEGIES`; the CLI lists its names):

``bisect``
    Predicted SUR is monotone in the level, so a k-ary bisection over the
    axis (``batch`` levels per round, so encodes can run in parallel and
    predictions are batched) finds the most compressed level that still
    meets the SUR target. SMR is not monotone: when that level misses the
    SMR target, the ``batch`` levels just above it are probed (SMR curves are
    jagged, a dip is usually local), then a bisection on "meets every
    target" runs between them and the best level. Without a SUR target the
    bisection runs on SMR directly. With SUR, SMR and bytes all monotone the
    answer equals the exhaustive one. When the best level itself misses a
    target the search stops: the target is reported unreachable (use
    ``exhaustive`` to try every level of a jagged curve).
``interpolate`` (experimental)
    The same walk, but probing where the line through the bracketing probes
    crosses the target on the logit scale (right for S-shaped SUR curves),
    then the level next to that guess; a bisection step follows whenever a
    guess fails to halve the bracket. It probes the worst and best levels
    together first. Exact S-curves take 4 probes instead of bisect's 8; on
    other shapes it can take a few more than bisect.
``exhaustive``
    Every level in one batch (or as many as the budget allows, best first).
``predicted`` (default)
    Starts from a *prior*: SUR/SMR predicted for every level before any
    encode (a curve model; :mod:`sursmr.curves`). It encodes the lowest level
    the prior says meets every target, moves the prior along the level axis
    until it passes through what that probe scored (:mod:`sursmr.anchoring`),
    encodes where the moved prior says the boundary is; with two probes on
    one side it follows the image's own slope (a secant on the logit slack)
    instead of the population's, and once a pass and a failure bracket the
    boundary, regula falsi closes it; with a ``settle_margin`` it stops as
    soon as the image's own probes say the cheaper neighbour fails. When the
    prior's shape is right that takes 1–3 encodes (2.8–3.7 per image on the
    test split's real predictions, ``benchmarks/results/oneshot.md``). After
    three one-sided probes it gallops, so a wrong prior
    costs probes, never a wrong answer. SUR and SMR are treated alike
    here (both assumed to rise with quality). Without a prior it is ``bisect``.

``max_probes`` caps the number of distinct levels evaluated; when it runs
out the best passing probe so far is returned, or :class:`TargetUnreachable`
is raised with the closest attempt.

:func:`verify` is no search: it evaluates the levels it is given (``--codec
auto`` checks one level per codec that way, predicted from another codec's search).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from sursmr.anchoring import PriorCurve, anchored_guess, curves_on_axis, first_guess, logit, secant_crossing
from sursmr_core.errors import InputError, TargetUnreachable
from sursmr_core.levels import LevelAxis
from sursmr_core.registry import Registry


@dataclass(frozen=True)
class Probe:
    """One evaluated level.

    ``nbytes``: bitstream size in bytes; ``sur``/``smr``: predicted ratios in
    [0, 1]; ``seconds``: wall time spent on this level (encode, decode and its
    share of the batched prediction).
    """

    level: int
    nbytes: int
    sur: float
    smr: float
    seconds: float = 0.0


@dataclass(frozen=True)
class Targets:
    """Lower bounds on predicted SUR and SMR (each in [0, 1]; ``None``: no constraint).

    ``margin`` (≥ 0) is added to every target: a probe passes when
    ``sur ≥ target_sur + margin`` and ``smr ≥ target_smr + margin``.
    """

    sur: float | None = 0.75
    smr: float | None = None
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.sur is None and self.smr is None:
            raise InputError("give at least one target (SUR or SMR)")
        for name, value in (("SUR", self.sur), ("SMR", self.smr)):
            if value is not None and not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise InputError(f"target {name} must be a number in [0, 1], got {value!r}")
        if not (isinstance(self.margin, int | float) and 0.0 <= self.margin < 1.0):
            raise InputError(f"margin must be a number in [0, 1), got {self.margin!r}")
        for name, value in (("SUR", self.sur), ("SMR", self.smr)):
            if value is not None and value + self.margin > 1.0:
                raise InputError(
                    f"target {name} {value:g} plus margin {self.margin:g} exceeds 1: no prediction can meet it"
                )

    @property
    def required(self) -> dict[str, float]:
        """What a probe must reach, margin included: ``{"sur": 0.77, ...}`` (constrained ratios only)."""
        wanted = {"sur": self.sur, "smr": self.smr}
        return {name: value + self.margin for name, value in wanted.items() if value is not None}

    def slack(self, probe: Probe) -> float:
        """The smallest ``ratio - required`` over the targets: ≥ 0 exactly when ``probe`` passes."""
        return min(float(getattr(probe, name)) - need for name, need in self.required.items())

    def passes(self, probe: Probe) -> bool:
        """True when ``probe`` meets every target (with the margin)."""
        return self.slack(probe) >= 0.0

    def sur_slack(self, probe: Probe) -> float:
        """``sur - required SUR`` (+inf without a SUR target): ≥ 0 when the SUR target is met."""
        return math.inf if self.sur is None else probe.sur - (self.sur + self.margin)

    def meets_sur(self, probe: Probe) -> bool:
        return self.sur_slack(probe) >= 0.0

    def logit_slack(self, probe: Probe, *, sur_only: bool = False) -> float:
        """Like :meth:`slack` on the logit scale (ratios clipped to [0.001, 0.999]); only for interpolation.

        Predicted ratios are CDF-like in the level (S-shaped), which the logit
        makes close to straight, so a line through two probes lands near the crossing.
        """
        needs = {"sur": self.required["sur"]} if sur_only else self.required
        return min(logit(getattr(probe, name)) - logit(need) for name, need in needs.items())

    def shortfall(self, probe: Probe) -> float:
        """How far ``probe`` is from passing: the largest missing amount (0 when it passes)."""
        return max(0.0, -self.slack(probe))

    def describe(self) -> str:
        return ", ".join(f"{name.upper()} ≥ {need:.3f}" for name, need in self.required.items())


@dataclass(frozen=True)
class SearchResult:
    """The chosen probe and every probe tried, in the order they were evaluated."""

    best: Probe
    probes: list[Probe] = field(default_factory=list)
    strategy: str = "bisect"


Evaluate = Callable[[Sequence[int]], Sequence[Probe]]
"""``evaluate(levels) -> probes``: one :class:`Probe` per requested level (any order)."""

Prior = Mapping[int, tuple[float, float]]
"""``{level: (sur, smr)}``: ratios predicted before any encode (a curve model); any subset of the axis."""


def _falsi_point(lo: int, hi: int, below: float, above: float) -> float | None:
    """Where the line through ``(lo, below)`` and ``(hi, above)`` crosses zero; None unless ``below < 0 <= above``."""
    if below < 0.0 <= above and above > below:
        return lo + (hi - lo) * (-below) / (above - below)
    return None


class _Session:
    """Memoises probes, enforces the budget and answers questions by axis index (0 = worst quality)."""

    def __init__(
        self,
        axis: LevelAxis,
        evaluate: Evaluate,
        targets: Targets,
        max_probes: int | None,
        prior: Prior | None = None,
        settle_margin: float | None = None,
    ) -> None:
        self.prior = prior
        self.settle_margin = settle_margin
        self.order = axis.worst_to_best()
        self.index_of = {level: i for i, level in enumerate(self.order)}
        self.evaluate = evaluate
        self.targets = targets
        self.budget = len(self.order) if max_probes is None else max_probes
        self.probes: list[Probe] = []
        self.by_level: dict[int, Probe] = {}

    @property
    def top(self) -> int:
        return len(self.order) - 1

    def known(self, index: int) -> bool:
        return 0 <= index < len(self.order) and self.order[index] in self.by_level

    def probe(self, indices: Sequence[int]) -> bool:
        """Evaluate the levels at ``indices`` not seen yet, as many as the budget allows (in the given order).

        Returns True when every one of ``indices`` has a probe afterwards.
        """
        wanted = [self.order[i] for i in dict.fromkeys(indices) if not self.known(i)]
        wanted = wanted[: max(0, self.budget - len(self.by_level))]
        if wanted:
            results = list(self.evaluate(wanted))
            if sorted(p.level for p in results) != sorted(wanted):
                raise InputError(f"evaluate returned levels {[p.level for p in results]} for {wanted}")
            for p in results:
                self.by_level[p.level] = p
                self.probes.append(p)
        return all(self.known(i) for i in indices)

    def at(self, index: int) -> Probe:
        return self.by_level[self.order[index]]

    def lowest(
        self,
        lo: int,
        hi: int,
        passes: Callable[[Probe], bool],
        batch: int,
        shape: Callable[[Probe], float] | None = None,
    ) -> int | None:
        """Smallest index in (lo, hi] that ``passes``, assuming that is monotone; ``hi`` must pass.

        ``lo`` is an index known (or, at -1, assumed) to fail. ``shape``, when
        given, is a continuous score (≥ 0 roughly where ``passes``) whose
        straight-line crossing between the bracketing probes picks the next
        level (regula falsi) instead of the midpoint. Returns None when the
        budget runs out first.
        """
        mode = "bisect" if shape is None else "guess"
        guess, reference_width = 0, hi - lo
        while hi - lo > 1:
            width = hi - lo
            count = min(batch, width - 1)
            spaced = [lo + round((j + 1) * width / (count + 1)) for j in range(count)]
            if mode == "guess" and shape is not None and self.known(lo):
                cross = _falsi_point(lo, hi, shape(self.at(lo)), shape(self.at(hi)))
                if cross is not None:
                    # the first index predicted to pass, and the one below it that should fail
                    guess = min(hi - 1, max(lo + 1, math.ceil(cross - 1e-9)))
                    reference_width = width
                    spaced = [guess, guess - 1, *sorted(spaced, key=lambda i: abs(i - guess))][:count]
            elif mode == "confirm":
                # one level per round: check the guess's neighbour, which closes the bracket when the line was right
                step = guess - 1 if self.known(guess) and passes(self.at(guess)) else guess + 1
                spaced = [step] if lo < step < hi else spaced
            points = sorted(set(spaced) - {lo, hi})
            if not self.probe(points):
                return None
            for index in points:  # ascending: the first pass bounds hi, the last failure below it bounds lo
                if passes(self.at(index)):
                    hi = index
                    break
                lo = index
            if shape is None:
                continue
            if mode == "guess" and count == 1 and reference_width == width:
                mode = "confirm"
            elif mode in ("guess", "confirm"):
                # the line misled us (no halving since the guess): a bisection step bounds the cost
                mode = "guess" if (hi - lo) * 2 <= reference_width else "bisect"
            else:
                mode, reference_width = "guess", hi - lo
        return hi

    def result(self, strategy: str) -> SearchResult:
        passing = [p for p in self.probes if self.targets.passes(p)]
        if passing:
            best = min(passing, key=lambda p: (p.nbytes, self.index_of[p.level]))
            return SearchResult(best, list(self.probes), strategy)
        closest = min(self.probes, key=lambda p: (self.targets.shortfall(p), p.nbytes))
        raise TargetUnreachable(
            f"no probed level meets {self.targets.describe()}; closest: level {closest.level} "
            f"(SUR {closest.sur:.3f}, SMR {closest.smr:.3f}, {closest.nbytes} bytes) after {len(self.probes)} "
            "probes; lower the targets or the margin, or try another codec",
            closest,
            self.probes,
        )


Strategy = Callable[[_Session, int], None]
"""A search strategy: probes through the session; the session picks the result."""

STRATEGIES: Registry[Strategy] = Registry("strategy")

DEFAULT_STRATEGY = "predicted"
"""The strategy compress uses unless told otherwise (``bisect`` when the model has no prior curve)."""

DEFAULT_SETTLE_MARGIN = 0.0
"""The ``settle_margin`` compress gives the ``predicted`` search (``--thorough``: None): it settles as soon as
the image's own line says the cheaper neighbour fails. Chosen on the validation split with
``benchmarks/oneshot.py --settle-margin`` over 0, 0.25, 0.5, 1 and none (``benchmarks/results/oneshot_val``):
the fewest encodes (0.25-0.30 fewer per image than none), with bytes within 0.4 % of bisection's at every
target pair. Negative margins (settling while the neighbour is predicted to pass) saved more encodes there
but settle many levels high on an image whose curve is flat around the target, so they are refused."""


@STRATEGIES.register(name="exhaustive")
def _exhaustive(session: _Session, batch: int) -> None:
    # best quality first, so a small budget still covers the levels most likely to pass
    session.probe(list(range(session.top, -1, -1)))


def _gallop(session: _Session, start: int, test: Callable[[Probe], bool], batch: int) -> int | None:
    """Smallest passing index (``test`` monotone) found by galloping from ``start`` (already probed).

    Steps 2, 4, 8... away from ``start`` until the boundary is bracketed, then
    bisects inside the bracket. None when the budget runs out or nothing passes.
    """
    if test(session.at(start)):
        hi, step = start, 1
        while hi > 0:
            j = max(0, hi - step)
            if not session.probe([j]):
                return None
            if not test(session.at(j)):
                return session.lowest(j, hi, test, batch)
            hi, step = j, step * 2
        return 0
    lo, step = start, 1
    while lo < session.top:
        j = min(session.top, lo + step)
        if not session.probe([j]):
            return None
        if test(session.at(j)):
            return session.lowest(lo, j, test, batch)
        lo, step = j, step * 2
    return None  # the best level fails too: the target is unreachable


def _walk(session: _Session, batch: int, interpolate: bool) -> None:
    """Find the SUR boundary, then step up past SMR dips; see the module docstring."""
    targets, top = session.targets, session.top
    # without a SUR target the first bisection runs on SMR itself, treated as if it were monotone
    first_test = targets.meets_sur if targets.sur is not None else targets.passes
    first_shape = partial(targets.logit_slack, sur_only=targets.sur is not None) if interpolate else None
    session.probe([top, 0] if interpolate else [top])
    if not session.known(top) or not first_test(session.at(top)):
        return  # SUR is monotone: when the best level misses it, every level does
    k: int | None
    if session.known(0) and first_test(session.at(0)):
        k = 0
    else:
        k = session.lowest(0 if session.known(0) else -1, top, first_test, batch, first_shape)
    if k is None or targets.passes(session.at(k)):
        return
    neighbours = list(range(k + 1, min(top, k + batch) + 1))
    if not neighbours or not session.probe(neighbours):
        return
    if not session.probe([top]):
        return
    if any(targets.passes(session.at(i)) for i in neighbours) or not targets.passes(session.at(top)):
        return
    session.lowest(neighbours[-1], top, targets.passes, batch, targets.logit_slack if interpolate else None)


@STRATEGIES.register(name="bisect")
def _bisect(session: _Session, batch: int) -> None:
    _walk(session, batch, interpolate=False)


@STRATEGIES.register(name="interpolate")
def _interpolate(session: _Session, batch: int) -> None:
    _walk(session, batch, interpolate=True)


ANCHOR_ROUNDS = 3
"""Probes the ``predicted`` strategy places on one side of the boundary before it gallops."""

_SATURATED = 0.99
SATURATED_LOGIT = logit(_SATURATED)
"""Logit slack is clipped to ± this (a ratio of 0.99 against a target of 0.5) before lines are drawn through probes."""


def _clipped_slack(targets: Targets, probe: Probe) -> float:
    """:meth:`Targets.logit_slack` clipped to ±:data:`SATURATED_LOGIT`: saturated probes bound a line, no more."""
    return max(-SATURATED_LOGIT, min(SATURATED_LOGIT, targets.logit_slack(probe)))


def _settled(session: _Session, lo: int, hi: int) -> bool:
    """True when the passing index ``hi`` needs no probe of its cheaper neighbour: the image's probes say it fails.

    Only with ``settle_margin`` set (None: the search always closes the
    bracket by probing). The neighbour's logit slack (clipped) is predicted
    by a line through this image's own probes: through ``lo`` and ``hi``
    when a failing index below is known, else through ``hi`` and the nearest
    passing probe above it; it must fall below ``-settle_margin``. The prior
    curve's slope is never trusted for this (a curve of the wrong shape
    would settle many levels too high); with one probe there is no settling.
    A larger margin settles less often (more probes, fewer bytes left on the table).
    """
    margin = session.settle_margin
    if margin is None or hi <= 0 or session.known(hi - 1):
        return False
    targets = session.targets
    here = _clipped_slack(targets, session.at(hi))
    if lo >= 0 and session.known(lo):
        slope = (here - _clipped_slack(targets, session.at(lo))) / (hi - lo)
    else:
        above = [i for i in range(hi + 1, len(session.order)) if session.known(i)]
        if not above:
            return False
        slope = (_clipped_slack(targets, session.at(above[0])) - here) / (above[0] - hi)
    return slope > 0.0 and here - slope < -margin


def _one_sided_guess(session: _Session, curves: Mapping[str, PriorCurve], nearest: int) -> float:
    """Next continuous guess while every probe lies on one side of the boundary.

    Two or more probes: the image's own slope (secant through the two probes
    nearest the boundary, logit slack clipped at :data:`SATURATED_LOGIT`), but
    never a step longer than four times the population curve's or shorter than one
    index. One probe: the population curve moved through it (:func:`anchored_guess`).
    """
    targets = session.targets
    probe = session.at(nearest)
    # beyond 0.99 (or below 0.01) every ratio looks alike: a saturated probe moves the curve only that far
    observed = {name: min(_SATURATED, max(1.0 - _SATURATED, getattr(probe, name))) for name in ("sur", "smr")}
    moved = anchored_guess(curves, nearest, observed, targets.required)
    points = [(i, _clipped_slack(targets, session.at(i))) for i in range(len(session.order)) if session.known(i)]
    crossing = secant_crossing(points)
    if crossing is None:
        return float(moved)
    limit = 4 * max(1, abs(moved - nearest))
    return nearest + max(-limit, min(limit, crossing - nearest))


def _falsi(session: _Session, lo: int, hi: int, batch: int) -> None:
    """Close the bracket ``lo`` (fails) .. ``hi`` (passes) by regula falsi on the clipped logit slack.

    Each round probes where the line through the bracket's ends crosses zero
    (with ``batch`` > 1, also the level below it); a round that leaves the
    bracket wider than half of what it was two rounds before is followed by a
    midpoint probe, so a misleading line costs at most bisection's pace.
    """
    targets = session.targets
    widths = [hi - lo]
    while hi - lo > 1 and not _settled(session, lo, hi):
        cross = _falsi_point(lo, hi, _clipped_slack(targets, session.at(lo)), _clipped_slack(targets, session.at(hi)))
        if cross is None or (len(widths) >= 3 and 2 * (hi - lo) > widths[-3]):
            guess = (lo + hi) // 2
        else:
            guess = math.ceil(cross - 1e-9)
        guess = min(hi - 1, max(lo + 1, guess))
        wanted = [guess - 1, guess] if batch > 1 and guess - 1 > lo else [guess]
        if not session.probe(wanted):
            return
        for index in wanted:
            if targets.passes(session.at(index)):
                hi = index
                break
            lo = index
        widths.append(hi - lo)


def _anchored(session: _Session, batch: int, prior: Prior) -> None:
    """The ``predicted`` strategy with a prior: guess, probe, correct the guess by what the probes scored.

    Tracks ``lo`` (highest failing index below every pass) and ``hi`` (lowest
    passing index); stops when they are neighbours. While every probe lies on
    one side of the boundary the next guess comes from the population curve
    moved through the nearest probe, then from the image's own slope
    (:func:`_one_sided_guess`); with ``batch`` > 1 a moved guess and its lower
    neighbour are encoded together. Once a pass and a failure bracket the
    boundary, regula falsi on the clipped logit slack between them finishes
    (:func:`_falsi`).
    After :data:`ANCHOR_ROUNDS` one-sided probes it gallops instead.
    """
    targets = session.targets
    curves = curves_on_axis(prior, session.order)
    lo, hi = -1, None
    guess = first_guess(curves, targets.required)
    for round_ in range(ANCHOR_ROUNDS):
        # with parallel encoders a moved guess is encoded together with the neighbour that would confirm it
        wanted = [guess - 1, guess] if round_ and batch > 1 and guess - 1 > lo else [guess]
        if not session.probe(wanted):
            return
        for index in wanted:  # ascending: the first pass bounds hi, the failures below it bound lo
            if targets.passes(session.at(index)):
                hi = index if hi is None else min(hi, index)
                break
            lo = max(lo, index)
        if hi == 0 or lo == session.top or (hi is not None and hi - lo <= 1):
            return  # settled, or the best level fails too (the target is unreachable)
        if hi is not None and lo >= 0:
            _falsi(session, lo, hi, batch)  # settles or closes the bracket
            return
        if hi is not None and _settled(session, lo, hi):
            return  # passes only, and the image's own slope says the level below fails
        nearest = lo if hi is None else hi
        step = _one_sided_guess(session, curves, nearest)
        guess = math.ceil(step - 1e-9)
        guess = min(max(guess, lo + 1), session.top if hi is None else hi - 1)
    if hi is None:
        _gallop(session, lo, targets.passes, batch)
    else:
        _gallop(session, hi, targets.passes, batch)


@STRATEGIES.register(name="predicted")
def _predicted(session: _Session, batch: int) -> None:
    if session.prior is None:
        _walk(session, batch, interpolate=False)
    else:
        _anchored(session, batch, session.prior)


def opening_level(axis: LevelAxis, targets: Targets, strategy: str, prior: Prior | None = None) -> int:
    """The level :func:`search` with these arguments evaluates first, on its own.

    The ``predicted`` strategy with a prior opens at the prior's guess; every
    other search opens at the axis's best level. A caller that must time its
    encoder before the search (to choose its batch) times it on this level, so
    that encode is the search's first probe and is not spent on timing alone.
    """
    order = axis.worst_to_best()
    if prior is not None and STRATEGIES.get(strategy) is _predicted:
        return order[first_guess(curves_on_axis(prior, order), targets.required)]
    return order[-1]


def search(
    axis: LevelAxis,
    evaluate: Evaluate,
    targets: Targets,
    *,
    strategy: str = "bisect",
    max_probes: int | None = None,
    batch: int = 1,
    prior: Prior | None = None,
    settle_margin: float | None = None,
) -> SearchResult:
    """Find the passing probe with the fewest bytes on ``axis``; see the module docstring.

    ``evaluate(levels)`` must return one :class:`Probe` per requested level.
    ``batch`` (≥ 1) levels are requested per round (use the number of
    parallel encoders). ``max_probes`` (≥ 1 or None: no cap) bounds the
    distinct levels evaluated. ``prior`` (``{level: (sur, smr)}`` predicted
    without encoding) steers the ``predicted`` strategy; with it,
    ``settle_margin`` (logit units, ≥ 0; None: off) lets that strategy stop
    at a pass whose cheaper neighbour the image's probes predict to fail by
    more than the margin instead of encoding the neighbour to make sure. Raises :class:`TargetUnreachable` (``best``:
    the closest probe, ``probes``: all of them) when no probed level passes,
    :class:`InputError` on a bad strategy, budget or batch.
    """
    if max_probes is not None and max_probes < 1:
        raise InputError(f"max_probes must be at least 1, got {max_probes}")
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    if settle_margin is not None and not (
        isinstance(settle_margin, int | float) and math.isfinite(settle_margin) and settle_margin >= 0.0
    ):
        raise InputError(f"settle_margin must be a finite number ≥ 0 (logit units) or None, got {settle_margin!r}")
    run = STRATEGIES.get(strategy)
    session = _Session(axis, evaluate, targets, max_probes, prior, settle_margin)
    run(session, batch)
    return session.result(strategy)


def verify(axis: LevelAxis, evaluate: Evaluate, targets: Targets, levels: Sequence[int]) -> SearchResult:
    """Evaluate exactly ``levels`` (no search): the passing one with the fewest bytes, strategy ``verify``.

    For a level predicted beforehand (e.g. another codec's search carried
    over with :func:`sursmr.anchoring.shifted_guess`): one encode, and a
    failing level is never the answer. Raises :class:`TargetUnreachable`
    (``best``: the closest probe, ``probes``: all of them) when none passes,
    :class:`InputError` when ``levels`` is empty or holds a level off the axis.
    """
    if not levels:
        raise InputError("verify needs at least one level")
    for level in levels:
        axis.check(level, "verify")
    session = _Session(axis, evaluate, targets, None)
    session.probe([session.index_of[level] for level in levels])
    return session.result("verify")
