"""Choose the codec too: the smallest bitstream meeting the targets across several codecs.

>>> from sursmr.codec_choice import compress_any_codec
>>> choice = compress_any_codec("photo.png", codecs="jpeg,bpg")   # or "auto": every available codec
>>> choice.best.codec, choice.best.nbytes

``sursmr compress --codec auto`` (or ``--codec jpeg,bpg``) is this, through
:class:`ChoiceSettings` (one :class:`~sursmr.compress.CompressSettings` per
codec, all checked before any work). Two ways to search (``codec_search``):

``verify`` (default)
    One codec, the *primary* (the listed codec with the lowest declared
    :attr:`~codec_adapters.base.CodecAdapter.choice_rank`), gets the full
    search (``strategy`` as for :func:`~sursmr.compress.compress_to_target`).
    Where its result sits against its own prior curve, in the curve's
    transition widths (:func:`sursmr.anchoring.relative_shift`), is how much
    harder or easier this image is than the population; every other codec
    encodes exactly one level: the lowest its prior curve
    (``predictor.curve``) says meets the targets, moved by that much
    (:func:`sursmr.anchoring.shifted_guess`), and keeps it only when the
    predictor says it passes. So ≤ 1 encode per extra codec; a failing
    check is never the result. When the primary finds no level, the next
    codec by rank is searched in full instead; a codec without a prior curve
    is searched in full too.
``full``
    One full search per codec, in the order given.

The fewest bytes win (ties: the codec listed first). The image is read once
and the predictor loaded once for every codec; the reference's features are
cached by the predictor, so later codecs pay only for their candidates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import codec_adapters
from sursmr.anchoring import curves_on_axis, relative_shift, shifted_guess
from sursmr.compress import (
    DEFAULT_TARGET_SMR,
    DEFAULT_TARGET_SUR,
    CompressResult,
    CompressSettings,
    compress_image,
)
from sursmr.encoding import EncodeCache
from sursmr.rate_control import Prior, Targets
from sursmr.scoring import QualityPredictor
from sursmr_core.errors import InputError, TargetUnreachable
from sursmr_core.imaging import RGBImage, load_image

CODEC_SEARCHES = ("verify", "full")
"""How :func:`choose_codec` searches: ``verify`` (one codec in full, one checked level per other codec) or ``full``."""

DEFAULT_CODEC_SEARCH = "verify"


def resolve_codecs(codecs: str | Sequence[str]) -> list[str]:
    """``"auto"``: every codec whose tools are available here; else a comma list or sequence of known names."""
    names = [c.strip() for c in codecs.split(",")] if isinstance(codecs, str) else [str(c) for c in codecs]
    names = [n for n in names if n]
    if names == ["auto"]:
        chosen = [n for n in codec_adapters.list() if codec_adapters.get(n).availability().available]
        if not chosen:
            raise InputError("--codec auto: no codec is available on this machine; see `sursmr codecs`")
        return chosen
    if not names or "auto" in names:
        raise InputError(f"codecs {codecs!r}: give 'auto' alone or a comma list such as jpeg,bpg")
    for name in names:
        codec_adapters.get(name)  # unknown names raise the registry's error listing the known ones
    return list(dict.fromkeys(names))


def is_choice(codec: str | Sequence[str]) -> bool:
    """True when ``codec`` asks for a choice between codecs: ``auto``, a comma list or a sequence."""
    return not isinstance(codec, str) or codec.strip() == "auto" or "," in codec


def search_order(names: Sequence[str]) -> list[str]:
    """``names`` by declared :attr:`~codec_adapters.base.CodecAdapter.choice_rank` (ties keep their order).

    The first is the primary codec of a ``verify`` search; the next ones take
    its place, in this order, when it finds no level.
    """
    return sorted(names, key=lambda name: codec_adapters.get(name).choice_rank)


@dataclass(frozen=True)
class ChoiceSettings:
    """The settings of a search across codecs: one checked :class:`CompressSettings` per codec, in order.

    Built with :meth:`create`, which refuses unknown or unavailable codecs and
    bad targets before any work. ``search``: one of :data:`CODEC_SEARCHES`.
    Picklable, like the settings of one codec, so batch workers receive it whole.
    """

    per_codec: tuple[CompressSettings, ...]
    search: str = DEFAULT_CODEC_SEARCH

    @classmethod
    def create(
        cls, *, codecs: str | Sequence[str], codec_search: str = DEFAULT_CODEC_SEARCH, **kwargs: Any
    ) -> ChoiceSettings:
        """``codecs``: ``auto`` or a list; ``codec_search``: ``verify`` or ``full``; ``kwargs``: those of
        :meth:`CompressSettings.create` but ``codec``.

        Codec ``options`` apply to every codec, so they are refused with more than one codec.
        """
        if codec_search not in CODEC_SEARCHES:
            raise InputError(f"codec search {codec_search!r}: use one of {', '.join(CODEC_SEARCHES)}")
        names = resolve_codecs(codecs)
        if kwargs.get("options") and len(names) > 1:
            raise InputError("codec options apply to one codec; give options with a single --codec")
        return cls(tuple(CompressSettings.create(codec=name, **kwargs) for name in names), codec_search)

    @property
    def codecs(self) -> list[str]:
        return [s.codec for s in self.per_codec]

    @property
    def codec(self) -> str:
        """The codecs as a comma list (what a manifest line says when no codec won)."""
        return ",".join(self.codecs)

    @property
    def strict(self) -> bool:
        return self.per_codec[0].strict

    @property
    def extensions(self) -> list[str]:
        return [codec_adapters.get(name).extension for name in self.codecs]

    def identity(self) -> dict[str, Any]:
        """As :meth:`CompressSettings.identity`, with ``codecs`` (the list) for ``codec``, and ``codec_search``."""
        identity = self.per_codec[0].identity()
        del identity["codec"]
        identity["codecs"] = self.codecs
        identity["codec_search"] = self.search
        identity["options"] = {s.codec: s.identity()["options"] for s in self.per_codec}
        return identity


@dataclass(frozen=True)
class CodecChoice:
    """``best``: the smallest passing encode; ``results``: each codec's passing result; ``unreachable``: codecs
    that found no passing level (a failed search, or a checked level that missed the targets).

    ``searches``: per codec, in the order the codecs were listed, ``full`` (searched) or ``verify`` (one level checked).
    """

    best: CompressResult
    results: dict[str, CompressResult] = field(default_factory=dict)
    unreachable: dict[str, TargetUnreachable] = field(default_factory=dict)
    searches: dict[str, str] = field(default_factory=dict)

    @property
    def encodes(self) -> int:
        """Encodes of every codec together (fresh ones; cached levels are not counted)."""
        done = sum(r.encodes for r in self.results.values())
        return done + sum(e.encodes or 0 for e in self.unreachable.values())

    def summary(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, per codec: how it was searched, level, bytes, probes, encodes, predicted SUR/SMR, seconds;
        or the error with the probes and encodes it cost and the closest attempt."""
        out: dict[str, dict[str, Any]] = {}
        for name in [*self.searches, *(n for n in [*self.results, *self.unreachable] if n not in self.searches)]:
            how = self.searches.get(name, "full")
            result = self.results.get(name)
            if result is not None:
                out[name] = {"search": how, **result.outcome(), "seconds": round(result.seconds, 3)}
                continue
            exc = self.unreachable[name]
            closest = exc.best
            out[name] = {
                "search": how,
                "error": "predicted level misses the targets" if how == "verify" else "target unreachable",
                "probes": len(exc.probes),
                "encodes": exc.encodes,
                "closest": None
                if closest is None
                else {"level": closest.level, "bytes": closest.nbytes, "sur": closest.sur, "smr": closest.smr},
            }
        return out


class _SearchAndLearn:
    """A :data:`~sursmr.compress.LevelGuess` that asks for the usual search and keeps what it was shown.

    After the search, :meth:`shift` says where the result sits against the
    codec's prior (:func:`~sursmr.anchoring.relative_shift`; None without a prior).
    """

    def __init__(self) -> None:
        self.seen: tuple[Sequence[int], Targets, Prior] | None = None

    def __call__(self, order: Sequence[int], targets: Targets, prior: Prior | None) -> None:
        self.seen = None if prior is None else (order, targets, prior)

    def shift(self, level: int) -> float | None:
        if self.seen is None:
            return None
        order, targets, prior = self.seen
        return relative_shift(curves_on_axis(prior, order), targets.required, list(order).index(level))


class _CarriedGuess:
    """A :data:`~sursmr.compress.LevelGuess`: the codec's prior guess moved by the searched codec's ``shift``.

    ``shift`` None (the searched codec's prior said nothing): the prior's own
    guess. ``used`` tells afterwards whether a level was guessed (False: the
    codec has no prior, so it was searched).
    """

    def __init__(self, shift: float | None) -> None:
        self.shift = shift
        self.used = False

    def __call__(self, order: Sequence[int], targets: Targets, prior: Prior | None) -> list[int] | None:
        if prior is None:
            return None
        index = shifted_guess(curves_on_axis(prior, order), targets.required, self.shift or 0.0)
        self.used = True
        return [order[index]]


def choose_codec(
    image: str | os.PathLike[str] | RGBImage,
    settings: ChoiceSettings,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    cache: EncodeCache | None = None,
) -> CodecChoice:
    """The fewest bytes meeting the targets over the codecs of ``settings``, searched as ``settings.search`` says.

    Ties go to the codec listed first. Raises :class:`TargetUnreachable` (with
    the closest attempt of all codecs and every probe) when no codec meets the targets.
    """
    names = settings.codecs
    rgb = load_image(image, strict=settings.strict) if isinstance(image, str | os.PathLike) else image
    results: dict[str, CompressResult] = {}
    unreachable: dict[str, TargetUnreachable] = {}
    searches: dict[str, str] = {}
    by_name = {one.codec: one for one in settings.per_codec}
    verifying = settings.search == "verify"
    shift: float | None = None
    found = False  # verify: until one codec's search finds a level, the next codec by rank is searched
    for name in search_order(names) if verifying else names:
        guess = _CarriedGuess(shift) if found else _SearchAndLearn()
        try:
            result = compress_image(
                rgb, by_name[name], predictor, device=device, cache=cache, guess=guess if verifying else None
            )
        except TargetUnreachable as exc:
            unreachable[name] = exc
        else:
            results[name] = result
            if verifying and isinstance(guess, _SearchAndLearn):
                found, shift = True, guess.shift(result.level)
        searches[name] = "verify" if isinstance(guess, _CarriedGuess) and guess.used else "full"
    searches = {name: searches[name] for name in names}
    if not results:
        closest = [e for e in unreachable.values() if e.best is not None]
        raise TargetUnreachable(
            f"no codec of {', '.join(names)} meets the targets; lower the targets or the margin",
            best=min(closest, key=lambda e: e.best.nbytes if e.best is not None else 0).best if closest else None,
            probes=[p for e in unreachable.values() for p in e.probes],
            encodes=sum(e.encodes or 0 for e in unreachable.values()),
        )
    best = min(results.values(), key=lambda r: (r.nbytes, names.index(r.codec)))
    return CodecChoice(best=best, results=results, unreachable=unreachable, searches=searches)


def compress_any_codec(
    image: str | os.PathLike[str] | RGBImage,
    *,
    codecs: str | Sequence[str] = "auto",
    target_sur: float | None = DEFAULT_TARGET_SUR,
    target_smr: float | None = DEFAULT_TARGET_SMR,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    device: str = "auto",
    cache: EncodeCache | None = None,
    options: Mapping[str, Any] | None = None,
    codec_search: str = DEFAULT_CODEC_SEARCH,
    **kwargs: Any,
) -> CodecChoice:
    """:func:`~sursmr.compress.compress_to_target` for every codec in ``codecs``; the fewest bytes win.

    ``kwargs``: the other arguments of ``compress_to_target`` (margin,
    confidence, strategy, max_probes, jobs, timeout, strict); ``codec_search``:
    ``verify`` (one codec searched, one level checked per other codec) or
    ``full`` (one search per codec), see the module docstring. Raises
    :class:`TargetUnreachable` (with the closest attempt of all codecs) when no
    codec meets the targets, :class:`InputError` on an unknown codec or when ``auto`` finds none available.
    """
    settings = ChoiceSettings.create(
        codecs=codecs,
        codec_search=codec_search,
        target_sur=target_sur,
        target_smr=target_smr,
        options=options,
        **kwargs,
    )
    return choose_codec(image, settings, predictor, device=device, cache=cache)


__all__ = [
    "CODEC_SEARCHES",
    "DEFAULT_CODEC_SEARCH",
    "ChoiceSettings",
    "CodecChoice",
    "choose_codec",
    "compress_any_codec",
    "is_choice",
    "resolve_codecs",
    "search_order",
]
