"""``compress_to_target``: the library API that encoding pipelines call.

It wires the pieces together: load the image (input policy), encode
candidate levels (cached; parallel worker processes for slow codecs), score
them with the predictor (reference features computed once, candidates in
batches) and let :mod:`sursmr.rate_control` choose.

>>> from sursmr.compress import compress_to_target
>>> result = compress_to_target("photo.png", codec="jpeg", target_sur=0.75, target_smr=0.9)
>>> open("photo.jpg", "wb").write(result.data)
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S
from sursmr.encoding import CandidateEncode, default_jobs, encode_levels
from sursmr.imaging import RGBImage, check_rgb, image_digest, load_image
from sursmr.rate_control import Probe, Targets, search
from sursmr.scoring import QualityPredictor

DEFAULT_TARGET_SUR = 0.75
DEFAULT_TARGET_SMR = 0.9
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class EncodeCache:
    """In-memory LRU of candidate encodes keyed by (image digest, codec, level, options), bounded in bytes.

    The size counted is the bitstream plus its decoded pixels.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, int, str], CandidateEncode] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(digest: str, codec: str, level: int, options: Mapping[str, Any]) -> tuple[str, str, int, str]:
        return digest, codec, level, json.dumps(dict(options), sort_keys=True, default=str)

    @staticmethod
    def _size(candidate: CandidateEncode) -> int:
        return candidate.nbytes + int(candidate.decoded.nbytes)

    def get(self, key: tuple[str, str, int, str]) -> CandidateEncode | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, int, str], candidate: CandidateEncode) -> None:
        if key in self._entries:
            return
        self._entries[key] = candidate
        self._bytes += self._size(candidate)
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._bytes -= self._size(old)

    def __len__(self) -> int:
        return len(self._entries)


_DEFAULT_CACHE = EncodeCache()


@dataclass(frozen=True)
class CompressResult:
    """The chosen encode and how it was found.

    ``sur``/``smr`` are the *predicted* ratios of the chosen level; ``probes``
    lists every level evaluated, in evaluation order; ``seconds`` is wall time.
    """

    codec: str
    level: int
    data: bytes = field(repr=False)
    sur: float
    smr: float
    probes: list[Probe]
    seconds: float
    width: int
    height: int
    model: str
    strategy: str
    targets: Targets
    extension: str

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8.0 * len(self.data) / float(self.width * self.height)

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields (no bitstream)."""
        return {
            "codec": self.codec,
            "level": self.level,
            "bytes": self.nbytes,
            "bpp": round(self.bpp, 5),
            "sur": round(self.sur, 4),
            "smr": round(self.smr, 4),
            "probes": len(self.probes),
            "seconds": round(self.seconds, 3),
            "model": self.model,
            "strategy": self.strategy,
        }


def load_predictor(name: str | os.PathLike[str] | None = None, device: str = "auto") -> QualityPredictor:
    """The shipped predictor by name or weights path (torch is imported only here)."""
    from sursmr.predictor import DEFAULT_MODEL, Predictor

    return Predictor.load(name or DEFAULT_MODEL, device=device)


def compress_to_target(
    image: str | os.PathLike[str] | RGBImage,
    *,
    codec: str,
    target_sur: float | None = DEFAULT_TARGET_SUR,
    target_smr: float | None = DEFAULT_TARGET_SMR,
    margin: float = 0.0,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    device: str = "auto",
    strategy: str = "bisect",
    max_probes: int | None = None,
    jobs: int | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    strict: bool = False,
    cache: EncodeCache | None = None,
) -> CompressResult:
    """Encode ``image`` with ``codec`` at the smallest size whose predicted SUR/SMR meet the targets.

    ``image`` is a path (loaded with the input policy) or a uint8 (H, W, 3)
    array. ``predictor`` is a :class:`~sursmr.scoring.QualityPredictor`, a
    weights name/path, or ``None`` for the shipped default. ``jobs``
    parallel encoders (default: the cores; fast codecs encode in-process).
    Raises :class:`~sursmr.errors.TargetUnreachable` when no level passes,
    with the closest probe and all probes.
    """
    start = time.perf_counter()
    targets = Targets(target_sur, target_smr, margin)
    adapter_cls = codec_adapters.get(codec)
    adapter = adapter_cls(timeout=timeout)
    resolved_options = adapter.resolve_options(dict(options or {}))
    adapter.require_available()
    rgb = (
        check_rgb(image, min_side=16) if not isinstance(image, str | os.PathLike) else load_image(image, strict=strict)
    )
    scorer = predictor if isinstance(predictor, QualityPredictor) else load_predictor(predictor, device)
    workers = 1 if adapter_cls.fast else (jobs or default_jobs())
    store = cache if cache is not None else _DEFAULT_CACHE
    digest = image_digest(rgb)
    chosen: dict[int, CandidateEncode] = {}

    def evaluate(levels: Sequence[int]) -> list[Probe]:
        began = time.perf_counter()
        found: dict[int, CandidateEncode] = {}
        missing = []
        for level in levels:
            hit = store.get(EncodeCache.key(digest, codec, level, resolved_options))
            if hit is None:
                missing.append(level)
            else:
                found[level] = hit
        for cand in encode_levels(rgb, codec, missing, jobs=workers, options=resolved_options, timeout=timeout):
            store.put(EncodeCache.key(digest, codec, cand.level, resolved_options), cand)
            found[cand.level] = cand
        predictions = scorer.predict(rgb, [found[level].decoded for level in levels])
        share = (time.perf_counter() - began) / max(1, len(levels))
        chosen.update(found)
        return [
            Probe(level, found[level].nbytes, float(p.sur), float(p.smr), share)
            for level, p in zip(levels, predictions, strict=True)
        ]

    outcome = search(
        adapter_cls.levels, evaluate, targets, strategy=strategy, max_probes=max_probes, batch=max(1, workers)
    )
    best = outcome.best
    return CompressResult(
        codec=codec,
        level=best.level,
        data=chosen[best.level].data,
        sur=best.sur,
        smr=best.smr,
        probes=outcome.probes,
        seconds=time.perf_counter() - start,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        model=str(getattr(scorer, "name", type(scorer).__name__)),
        strategy=outcome.strategy,
        targets=targets,
        extension=adapter_cls.extension,
    )


def output_path(source: Path, out_dir: Path | None, extension: str) -> Path:
    """``DIR/<stem>.<ext>`` with ``-o DIR``, else ``<stem>.sursmr.<ext>`` beside the input."""
    if out_dir is not None:
        return out_dir / f"{source.stem}.{extension}"
    return source.with_name(f"{source.stem}.sursmr.{extension}")
