"""Choose the codec too: the smallest bitstream meeting the targets across several codecs.

>>> from sursmr.codec_choice import compress_any_codec
>>> choice = compress_any_codec("photo.png", codecs="jpeg,bpg")   # or "auto": every available codec
>>> choice.best.codec, choice.best.nbytes

Today this is one search per codec (``strategy`` as for
:func:`~sursmr.compress.compress_to_target`; with a prior, ``predicted``
verifies each codec's guess in a few encodes). The image is read once and the
predictor loaded once for every codec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import codec_adapters
from sursmr.compress import CompressResult, compress_to_target
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


@dataclass(frozen=True)
class CodecChoice:
    """``best``: the smallest passing encode; ``results``: each codec's result; ``unreachable``: codecs that failed."""

    best: CompressResult
    results: dict[str, CompressResult] = field(default_factory=dict)
    unreachable: dict[str, TargetUnreachable] = field(default_factory=dict)


def compress_any_codec(
    image: str | os.PathLike[str] | RGBImage,
    *,
    codecs: str | Sequence[str] = "auto",
    strict: bool = False,
    **kwargs: Any,
) -> CodecChoice:
    """Run :func:`compress_to_target` (``kwargs``) for every codec in ``codecs``; the fewest bytes win.

    Raises :class:`TargetUnreachable` (with the closest attempt of all codecs) when no codec meets the targets.
    """
    names = resolve_codecs(codecs)
    rgb = load_image(image, strict=strict) if isinstance(image, str | os.PathLike) else image
    results: dict[str, CompressResult] = {}
    unreachable: dict[str, TargetUnreachable] = {}
    for name in names:
        try:
            results[name] = compress_to_target(rgb, codec=name, strict=strict, **kwargs)
        except TargetUnreachable as exc:
            unreachable[name] = exc
    if not results:
        closest = [e for e in unreachable.values() if e.best is not None]
        raise TargetUnreachable(
            f"no codec of {', '.join(names)} meets the targets; lower the targets or the margin",
            best=closest[0].best if closest else None,
            probes=[p for e in unreachable.values() for p in e.probes],
        )
    best = min(results.values(), key=lambda r: (r.nbytes, names.index(r.codec)))
    return CodecChoice(best=best, results=results, unreachable=unreachable)
