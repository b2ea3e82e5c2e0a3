"""``compress_to_target``: the library API that encoding pipelines call.

It wires the pieces together: load the image (input policy), encode
candidate levels (cached; parallel worker processes for slow codecs), score
each batch of candidates with one predictor call (the predictor keeps the
reference's features) and let :mod:`sursmr.rate_control` choose the level.

>>> from sursmr.compress import compress_to_target
>>> result = compress_to_target("photo.png", codec="jpeg", target_sur=0.75, target_smr=0.9)
>>> Path("photo.jpg").write_bytes(result.data)

The SUR and SMR in the result are *predictions* of the model, not measurements.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S
from sursmr.encoding import CandidateEncode, default_jobs, encode_and_decode, encode_in_worker, encoder_pool
from sursmr.rate_control import STRATEGIES, Probe, Targets, search
from sursmr.scoring import QualityPredictor
from sursmr_core.errors import InputError, ModelError
from sursmr_core.imaging import MIN_SIDE, RGBImage, check_rgb, image_digest, load_image

DEFAULT_TARGET_SUR = 0.75
DEFAULT_TARGET_SMR = 0.9
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
# an encode+decode faster than this is cheaper in this process than shipping it to a worker
FAST_ENCODE_S = 0.05

CacheKey = tuple[str, str, int, str]


class EncodeCache:
    """In-memory LRU of bitstreams keyed by (image digest, codec, level, resolved options).

    Bounded by ``max_bytes`` of bitstream (≥ 0). Decoded pixels are not kept:
    a hit is decoded again, which costs far less than the encode it saves.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise InputError(f"cache size must be ≥ 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(digest: str, codec: str, level: int, options: Mapping[str, Any]) -> CacheKey:
        return digest, codec, level, json.dumps(dict(options), sort_keys=True, default=repr)

    def get(self, key: CacheKey) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return found

    def put(self, key: CacheKey, data: bytes) -> None:
        if key in self._entries or len(data) > self.max_bytes:
            return
        self._entries[key] = data
        self.nbytes += len(data)
        while self.nbytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= len(old)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


_DEFAULT_CACHE = EncodeCache()


class _Encoder:
    """Encodes and decodes levels of one image: here, or in worker processes kept for the whole search.

    Starting a pool costs about 2 s on a small machine, so it starts on the
    first batch of several levels (never for a fast codec) and is reused by
    every later batch, unlike one :func:`sursmr.encoding.encode_levels` call per round.
    """

    def __init__(self, rgb: RGBImage, codec: str, options: dict[str, Any], timeout: float, jobs: int) -> None:
        self.rgb, self.codec, self.options, self.timeout, self.jobs = rgb, codec, options, timeout, jobs
        self.count = 0
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, levels: Sequence[int]) -> list[CandidateEncode]:
        self.count += len(levels)
        if self.jobs <= 1 or len(levels) <= 1:
            done = [encode_and_decode(self.rgb, self.codec, level, self.options, self.timeout) for level in levels]
            if done and max(c.encode_seconds + c.decode_seconds for c in done) < FAST_ENCODE_S:
                self.jobs = 1  # measured fast: worker processes would only add overhead
            return done
        if self._pool is None:
            self._pool = encoder_pool(self.rgb, self.codec, jobs=self.jobs, options=self.options, timeout=self.timeout)
        return list(self._pool.map(encode_in_worker, levels))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass(frozen=True)
class CompressResult:
    """The chosen encode and how it was found.

    ``sur``/``smr``: the *predicted* ratios (in [0, 1]) at ``level``;
    ``probes``: every level evaluated, in evaluation order; ``encodes``: how
    many of them were encoded afresh (the rest came from the cache);
    ``seconds``: wall time of the whole call; ``width``/``height`` in pixels.
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
    encodes: int

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the chosen bitstream."""
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


_PREDICTORS: dict[tuple[str, str], QualityPredictor] = {}


def load_predictor(name: str | os.PathLike[str] | None = None, device: str = "auto") -> QualityPredictor:
    """The predictor called ``name`` (a shipped model name or a ``.safetensors`` path; None: the default).

    Loaded once per (name, device) and kept; torch is imported only here.
    Raises :class:`~sursmr_core.errors.ModelError` when it cannot be loaded.
    """
    from sursmr.predictor import DEFAULT_MODEL, Predictor

    key = (os.fspath(name) if name is not None else DEFAULT_MODEL, device)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = Predictor.load(key[0], device=device)
    return _PREDICTORS[key]


def _check_knobs(strategy: str, max_probes: int | None, jobs: int | None) -> None:
    STRATEGIES.get(strategy)
    if max_probes is not None and max_probes < 1:
        raise InputError(f"max_probes must be at least 1, got {max_probes}")
    if jobs is not None and jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")


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

    ``image``: a path (loaded with the input policy; ``strict`` refuses
    conversions) or a uint8 (H, W, 3) RGB array. Targets are in [0, 1]
    (``None``: unconstrained; at least one is needed) and ``margin`` is added
    to each. ``predictor``: a :class:`~sursmr.scoring.QualityPredictor`, a
    model name or weights path, or ``None`` for the shipped default (loaded on
    ``device``). ``strategy``: a name in :data:`sursmr.rate_control.STRATEGIES`;
    ``max_probes`` caps the levels evaluated. ``jobs``: parallel encoder
    processes (default: the usable cores); codecs whose encode+decode takes
    milliseconds are always encoded in this process. ``options``: codec
    options (see ``sursmr codecs``); ``timeout``: seconds per encode/decode.
    ``cache``: where bitstreams are remembered across calls (default: one
    per process, 64 MiB).

    Raises :class:`~sursmr_core.errors.TargetUnreachable` (with the closest probe
    and all probes) when no level passes, :class:`~sursmr_core.errors.InputError`
    on bad arguments or images, codec and model errors as their own types.
    """
    start = time.perf_counter()
    targets = Targets(target_sur, target_smr, margin)
    _check_knobs(strategy, max_probes, jobs)
    adapter = codec_adapters.create(codec, timeout=timeout)
    resolved = adapter.resolve_options(dict(options or {}))
    adapter.require_available()
    if isinstance(image, str | os.PathLike):
        rgb = load_image(image, strict=strict)
    else:
        rgb = check_rgb(image, name="image", min_side=max(MIN_SIDE, adapter.min_side))
    scorer = (
        load_predictor(predictor, device)
        if predictor is None or isinstance(predictor, str | os.PathLike)
        else predictor
    )
    store = _DEFAULT_CACHE if cache is None else cache
    digest = image_digest(rgb)
    # a codec that declares itself fast never pays for worker processes; others are timed on their first probe
    workers = 1 if getattr(adapter, "fast", False) else (jobs or default_jobs())
    encoder = _Encoder(rgb, codec, resolved, timeout, workers)
    bitstreams: dict[int, bytes] = {}

    def evaluate(levels: Sequence[int]) -> list[Probe]:
        began = time.perf_counter()
        decoded: dict[int, RGBImage] = {}
        missing = []
        for level in levels:
            hit = store.get(EncodeCache.key(digest, codec, level, resolved))
            if hit is None:
                missing.append(level)
            else:
                bitstreams[level] = hit
                decoded[level] = adapter.decode(hit)
        for candidate in encoder(missing):
            store.put(EncodeCache.key(digest, codec, candidate.level, resolved), candidate.data)
            bitstreams[candidate.level] = candidate.data
            decoded[candidate.level] = candidate.decoded
        predictions = scorer.predict(rgb, [decoded[level] for level in levels])
        if len(predictions) != len(levels):
            raise ModelError(f"predictor {scorer.name!r} returned {len(predictions)} scores for {len(levels)} images")
        share = (time.perf_counter() - began) / len(levels)
        return [
            Probe(level, len(bitstreams[level]), float(p.sur), float(p.smr), share)
            for level, p in zip(levels, predictions, strict=True)
        ]

    # one level per round when encodes run here: each extra level in a round is an extra predictor call
    try:
        outcome = search(
            type(adapter).levels, evaluate, targets, strategy=strategy, max_probes=max_probes, batch=workers
        )
    finally:
        encoder.close()
    best = outcome.best
    return CompressResult(
        codec=codec,
        level=best.level,
        data=bitstreams[best.level],
        sur=best.sur,
        smr=best.smr,
        probes=outcome.probes,
        seconds=time.perf_counter() - start,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        model=str(getattr(scorer, "name", type(scorer).__name__)),
        strategy=outcome.strategy,
        targets=targets,
        extension=type(adapter).extension,
        encodes=encoder.count,
    )
