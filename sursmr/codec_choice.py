"""Choose the codec too: the smallest bitstream meeting the targets across several codecs.

>>> from sursmr.codec_choice import compress_any_codec
>>> choice = compress_any_codec("photo.png", codecs="jpeg,bpg")   # or "auto": every available codec
>>> choice.best.codec, choice.best.nbytes

``sursmr compress --codec auto`` (or ``--codec jpeg,bpg``) is this, through
:class:`ChoiceSettings` (one :class:`~sursmr.compress.CompressSettings` per
codec, all checked before any work). Today this is one search per codec
(``strategy`` as for :func:`~sursmr.compress.compress_to_target`; with a
prior, ``predicted`` verifies each codec's guess in a few encodes), in the
order given (``auto``: the registry's order). The image is read once and the
predictor loaded once for every codec; the reference's features are cached by
the predictor, so later codecs pay only for their candidates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import codec_adapters
from sursmr.compress import (
    DEFAULT_TARGET_SMR,
    DEFAULT_TARGET_SUR,
    CompressResult,
    CompressSettings,
    compress_image,
)
from sursmr.encoding import EncodeCache
from sursmr.scoring import QualityPredictor
from sursmr_core.errors import InputError, TargetUnreachable
from sursmr_core.imaging import RGBImage, load_image


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


@dataclass(frozen=True)
class ChoiceSettings:
    """The settings of a search across codecs: one checked :class:`CompressSettings` per codec, in order.

    Built with :meth:`create`, which refuses unknown or unavailable codecs and
    bad targets before any work. Picklable, like the settings of one codec, so
    batch workers receive it whole.
    """

    per_codec: tuple[CompressSettings, ...]

    @classmethod
    def create(cls, *, codecs: str | Sequence[str], **kwargs: Any) -> ChoiceSettings:
        """``codecs``: ``auto`` or a list; ``kwargs``: those of :meth:`CompressSettings.create` but ``codec``.

        Codec ``options`` apply to every codec, so they are refused with more than one codec.
        """
        names = resolve_codecs(codecs)
        if kwargs.get("options") and len(names) > 1:
            raise InputError("codec options apply to one codec; give options with a single --codec")
        return cls(tuple(CompressSettings.create(codec=name, **kwargs) for name in names))

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
        """As :meth:`CompressSettings.identity`, with ``codecs`` (the list) in place of ``codec``."""
        identity = self.per_codec[0].identity()
        del identity["codec"]
        identity["codecs"] = self.codecs
        identity["options"] = {s.codec: s.identity()["options"] for s in self.per_codec}
        return identity


@dataclass(frozen=True)
class CodecChoice:
    """``best``: the smallest passing encode; ``results``: each codec's result; ``unreachable``: codecs that failed."""

    best: CompressResult
    results: dict[str, CompressResult] = field(default_factory=dict)
    unreachable: dict[str, TargetUnreachable] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, per codec: level, bytes, probes, encodes, predicted SUR/SMR, seconds; or the error."""
        out: dict[str, dict[str, Any]] = {}
        for name, result in self.results.items():
            out[name] = {
                "level": result.level,
                "bytes": result.nbytes,
                "probes": len(result.probes),
                "encodes": result.encodes,
                "sur": round(result.sur, 4),
                "smr": round(result.smr, 4),
                "seconds": round(result.seconds, 3),
            }
        for name, exc in self.unreachable.items():
            closest = exc.best
            out[name] = {
                "error": "target unreachable",
                "probes": len(exc.probes),
                "closest": None
                if closest is None
                else {"level": closest.level, "bytes": closest.nbytes, "sur": closest.sur, "smr": closest.smr},
            }
        return out


def choose_codec(
    image: str | os.PathLike[str] | RGBImage,
    settings: ChoiceSettings,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    cache: EncodeCache | None = None,
) -> CodecChoice:
    """One search per codec of ``settings`` (:func:`~sursmr.compress.compress_image`); the fewest bytes win.

    Ties go to the codec listed first. Raises :class:`TargetUnreachable` (with
    the closest attempt of all codecs and every probe) when no codec meets the targets.
    """
    names = settings.codecs
    rgb = load_image(image, strict=settings.strict) if isinstance(image, str | os.PathLike) else image
    results: dict[str, CompressResult] = {}
    unreachable: dict[str, TargetUnreachable] = {}
    for one in settings.per_codec:
        try:
            results[one.codec] = compress_image(rgb, one, predictor, device=device, cache=cache)
        except TargetUnreachable as exc:
            unreachable[one.codec] = exc
    if not results:
        closest = [e for e in unreachable.values() if e.best is not None]
        raise TargetUnreachable(
            f"no codec of {', '.join(names)} meets the targets; lower the targets or the margin",
            best=min(closest, key=lambda e: e.best.nbytes if e.best is not None else 0).best if closest else None,
            probes=[p for e in unreachable.values() for p in e.probes],
        )
    best = min(results.values(), key=lambda r: (r.nbytes, names.index(r.codec)))
    return CodecChoice(best=best, results=results, unreachable=unreachable)


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
    **kwargs: Any,
) -> CodecChoice:
    """:func:`~sursmr.compress.compress_to_target` for every codec in ``codecs``; the fewest bytes win.

    ``kwargs``: the other arguments of ``compress_to_target`` (margin,
    confidence, strategy, max_probes, jobs, timeout, strict). Raises
    :class:`TargetUnreachable` (with the closest attempt of all codecs) when no
    codec meets the targets, :class:`InputError` on an unknown codec or when ``auto`` finds none available.
    """
    settings = ChoiceSettings.create(
        codecs=codecs, target_sur=target_sur, target_smr=target_smr, options=options, **kwargs
    )
    return choose_codec(image, settings, predictor, device=device, cache=cache)


__all__ = ["ChoiceSettings", "CodecChoice", "choose_codec", "compress_any_codec", "is_choice", "resolve_codecs"]
