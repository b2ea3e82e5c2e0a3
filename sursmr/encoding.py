"""Encoding one image at many levels, in parallel worker processes.

Used by ``sursmr sweep``, the rate controller and the dataset builder: each
candidate is encoded *and* decoded in the worker, so the parent receives
ready-to-score pixels.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, TypeVar

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S, CodecAdapter
from sursmr import fidelity
from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from sursmr_core.toolrun import die_with_parent, signals_deferred

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
CacheKey = tuple[str, str, int, str]


@dataclass(frozen=True)
class CandidateEncode:
    """One encode of an image: bitstream, its decoded pixels and what it cost."""

    codec: str
    level: int
    data: bytes = field(repr=False)
    decoded: RGBImage = field(repr=False)
    encode_seconds: float
    decode_seconds: float
    fidelity: Mapping[str, float] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the bitstream."""
        height, width = self.decoded.shape[:2]
        return 8.0 * len(self.data) / float(height * width)


def encode_candidate(
    adapter: CodecAdapter,
    rgb: RGBImage,
    level: int,
    options: Mapping[str, Any] | None = None,
    with_fidelity: bool = False,
) -> CandidateEncode:
    """Encode ``rgb`` at ``level`` with ``adapter`` and decode it back (in this process)."""
    start = time.perf_counter()
    data = adapter.encode(rgb, level, **dict(options or {}))
    encoded = time.perf_counter()
    decoded = adapter.decode(data)
    done = time.perf_counter()
    scores: dict[str, float] = {}
    if with_fidelity:
        scores = {"psnr": fidelity.psnr(rgb, decoded), "ssim": fidelity.ssim(rgb, decoded)}
    return CandidateEncode(adapter.name, level, data, decoded, encoded - start, done - encoded, scores)


def encode_and_decode(
    rgb: RGBImage,
    codec: str,
    level: int,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    with_fidelity: bool = False,
) -> CandidateEncode:
    """Encode ``rgb`` at ``level`` and decode it back (in this process), with a fresh adapter for ``codec``."""
    return encode_candidate(codec_adapters.create(codec, timeout=timeout), rgb, level, options, with_fidelity)


class EncodeCache:
    """In-memory LRU of bitstreams keyed by (image digest, codec, level, resolved options).

    Bounded by ``max_bytes`` of bitstream (≥ 0). Decoded pixels are not kept:
    a hit is decoded again, which costs far less than the encode it saves.
    Each entry remembers what its encode and decode took (seconds), so a
    search over cached levels plans its parallelism as the first one did.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise InputError(f"cache size must be ≥ 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[bytes, float]] = OrderedDict()
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
        return found[0]

    def seconds(self, key: CacheKey) -> float | None:
        """Seconds the entry's encode and decode took (None when not cached); not counted as a hit."""
        found = self._entries.get(key)
        return None if found is None else found[1]

    def put(self, key: CacheKey, data: bytes, seconds: float = 0.0) -> None:
        if key in self._entries or len(data) > self.max_bytes:
            return
        self._entries[key] = (data, seconds)
        self.nbytes += len(data)
        while self.nbytes > self.max_bytes:
            _, (old, _) = self._entries.popitem(last=False)
            self.nbytes -= len(old)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


# Worker-process state: the image and one adapter per worker, not one per level.
_WORKER: dict[str, Any] = {}


def _init_worker(rgb: RGBImage, codec: str, options: Mapping[str, Any], timeout: float, with_fidelity: bool) -> None:
    # parallel workers must not each spawn a thread pool per core
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    die_with_parent()  # a killed or crashed parent must not leave workers behind
    adapter = codec_adapters.create(codec, timeout=timeout)
    _WORKER.update(rgb=rgb, adapter=adapter, options=options, with_fidelity=with_fidelity)


T = TypeVar("T")


class _WorkerPool(ProcessPoolExecutor):
    """A pool whose workers start with SIGINT/SIGTERM held back in the owner.

    Workers are started by ``submit``, which writes each new worker its whole
    start-up message (with the image); a signal handled in the middle would
    cut it short and the half-started worker would print a traceback.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with signals_deferred():
            return super().submit(fn, *args, **kwargs)


def encoder_pool(
    rgb: RGBImage,
    codec: str,
    *,
    jobs: int,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    with_fidelity: bool = False,
) -> ProcessPoolExecutor:
    """Worker processes that hold ``rgb`` once each; submit :func:`encode_in_worker` with a level.

    The caller owns the pool (use it as a context manager or call ``shutdown``).
    """
    # the fork server (and its resource tracker) must start with no signal held back: workers inherit its mask
    multiprocessing.forkserver.ensure_running()
    return _WorkerPool(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=_init_worker,
        initargs=(rgb, codec, dict(options or {}), timeout, with_fidelity),
    )


def encode_in_worker(level: int) -> CandidateEncode:
    """Encode and decode the pool's image at ``level`` (runs in a worker of :func:`encoder_pool`)."""
    return encode_candidate(_WORKER["adapter"], _WORKER["rgb"], level, _WORKER["options"], _WORKER["with_fidelity"])


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def iter_encodes(
    rgb: RGBImage,
    codec: str,
    levels: Iterable[int],
    *,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    with_fidelity: bool = False,
) -> Iterator[CandidateEncode]:
    """Yield encodes of ``rgb`` at each level as they finish (any order).

    ``jobs`` > 1 runs them in that many worker processes. The codec and its
    options are checked once up front, so a bad option fails before any work.
    """
    wanted = list(dict.fromkeys(levels))
    adapter = codec_adapters.create(codec, timeout=timeout)
    adapter.resolve_options(dict(options or {}))
    for level in wanted:
        adapter.levels.check(level, codec)
    adapter.require_available()
    if jobs <= 1 or len(wanted) <= 1:
        for level in wanted:
            yield encode_candidate(adapter, rgb, level, options, with_fidelity)
        return
    with encoder_pool(
        rgb, codec, jobs=min(jobs, len(wanted)), options=options, timeout=timeout, with_fidelity=with_fidelity
    ) as pool:
        futures: list[Future[CandidateEncode]] = [pool.submit(encode_in_worker, level) for level in wanted]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def encode_levels(
    rgb: RGBImage,
    codec: str,
    levels: Iterable[int],
    *,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    with_fidelity: bool = False,
    on_done: Callable[[CandidateEncode], None] | None = None,
) -> list[CandidateEncode]:
    """All encodes of :func:`iter_encodes`, returned in the order of ``levels``."""
    order = {level: i for i, level in enumerate(dict.fromkeys(levels))}
    results: list[CandidateEncode] = []
    for candidate in iter_encodes(
        rgb, codec, order, jobs=jobs, options=options, timeout=timeout, with_fidelity=with_fidelity
    ):
        results.append(candidate)
        if on_done is not None:
            on_done(candidate)
    return sorted(results, key=lambda c: order[c.level])


def parse_levels(spec: str | None, lo: int, hi: int) -> list[int]:
    """Parse ``LO:HI[:STEP]`` (inclusive, either order) or ``A,B,C``; ``None`` means all of ``lo..hi``."""
    if spec is None or spec.strip() in ("", "all"):
        return list(range(lo, hi + 1))
    try:
        if "," in spec:
            levels = [int(part) for part in spec.split(",") if part.strip()]
        else:
            parts = [int(part) for part in spec.split(":")]
            if len(parts) == 1:
                levels = parts
            elif len(parts) in (2, 3):
                start, stop = parts[0], parts[1]
                step = parts[2] if len(parts) == 3 else 1
                if step <= 0:
                    raise InputError(f"level step must be positive, got {step}")
                first, last = min(start, stop), max(start, stop)
                levels = list(range(first, last + 1, step))
            else:
                raise ValueError(spec)
    except ValueError:
        raise InputError(f"cannot read levels {spec!r}; use LO:HI, LO:HI:STEP or a comma list") from None
    outside = [level for level in levels if not lo <= level <= hi]
    if outside:
        raise InputError(f"levels {outside} are outside this codec's range {lo}..{hi}")
    if not levels:
        raise InputError(f"levels {spec!r} select nothing")
    return levels
