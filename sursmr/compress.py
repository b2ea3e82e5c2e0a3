"""``compress_to_target``: the library API that encoding pipelines call.

It wires the pieces together: load the image (input policy), encode
candidate levels (cached; parallel worker processes for slow codecs), score
each batch of candidates with one predictor call (the predictor keeps the
reference's features) and let :mod:`sursmr.rate_control` choose the level.

>>> from sursmr.compress import compress_to_target
>>> result = compress_to_target("photo.png", codec="jpeg", target_sur=0.75, target_smr=0.9)
>>> Path("photo.jpg").write_bytes(result.data)

Who decides what, once per call: :class:`CompressSettings` (codec, targets,
search and codec options, checked before any work; in
:mod:`sursmr.compress_settings`, re-exported here), :class:`LevelEncoder`
(the one codec adapter, the cache and how many encoder processes run, hence
how many levels the search asks for per round).

The SUR and SMR in the result are *predictions* of the model, not measurements.
"""

from __future__ import annotations

import io
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S
from sursmr.compress_settings import (
    CARD_DEFAULT,
    DEFAULT_TARGET_SMR,
    DEFAULT_TARGET_SUR,
    CompressSettings,
    resolve_targets,
)
from sursmr.encoding import (
    CacheKey,
    CandidateEncode,
    EncodeCache,
    default_jobs,
    encode_candidate,
    encode_in_worker,
    encoder_pool,
)
from sursmr.rate_control import (
    DEFAULT_SETTLE_MARGIN,
    DEFAULT_STRATEGY,
    Prior,
    Probe,
    SearchResult,
    Targets,
    opening_level,
    search,
    verify,
)
from sursmr.scoring import QualityPredictor
from sursmr_core.errors import ModelError, TargetUnreachable, UnsupportedImageError
from sursmr_core.imaging import MIN_SIDE, RGBImage, check_rgb, image_digest, load_image

# an encode+decode faster than this is cheaper in this process than shipping it to a worker
FAST_ENCODE_S = 0.05


if TYPE_CHECKING:
    from PIL import Image


_DEFAULT_CACHE = EncodeCache()

LevelGuess = Callable[[Sequence[int], Targets, Prior | None], Sequence[int] | None]
"""``guess(levels worst to best, resolved targets, prior or None)``: the levels to verify, or None to search instead."""


class LevelEncoder:
    """Encodes and decodes the levels of one image for the search; the one place that decides parallelism.

    It holds the call's one codec adapter and the bitstream cache. ``workers``
    (decided by :meth:`plan`, before the search starts) is 1 when the codec
    declares itself fast or declares a ``threads_option`` (then each encode
    runs on ``jobs`` threads instead), when one job is asked for, or when the search's
    first probe (:func:`~sursmr.rate_control.opening_level`, encoded here to
    time it) took under :data:`FAST_ENCODE_S`; otherwise ``jobs``. The search
    then asks for ``workers`` levels per round, so rounds match the processes
    that really run. Worker processes start once and serve every round.
    """

    def __init__(self, rgb: RGBImage, settings: CompressSettings, cache: EncodeCache) -> None:
        self.rgb, self.settings, self.cache = rgb, settings, cache
        self.adapter = settings.adapter()
        self.digest = image_digest(rgb)
        self.jobs = settings.jobs or default_jobs()
        # a codec whose encoder threads leave the bitstream alone gets the cores as threads of one encode at a time:
        # on 2 cores a round of 2 worker encodes cost more than 2 threaded ones (pool start-up; measured, BPG 768x512)
        threaded = self.adapter.threads_option is not None
        self.workers = 1 if self.adapter.fast or self.jobs <= 1 or threaded else 0  # 0: not decided yet
        self.count = 0
        self._fresh: dict[int, CandidateEncode] = {}
        self._pool: ProcessPoolExecutor | None = None

    def _key(self, level: int) -> CacheKey:
        return EncodeCache.key(self.digest, self.settings.codec, level, self.settings.options)

    def _encode_here(self, level: int) -> CandidateEncode:
        options = self.settings.options
        threads = self.adapter.threads_option
        if threads is not None and self.jobs > 1:
            # one encode at a time here: it may use the cores the worker processes would (same bitstream)
            options = {**options, threads: self.jobs}
        candidate = encode_candidate(self.adapter, self.rgb, level, options)
        self.count += 1
        spent = candidate.encode_seconds + candidate.decode_seconds
        self.cache.put(self._key(level), candidate.data, spent)
        self._fresh[level] = candidate
        return candidate

    def plan(self, first_level: int) -> int:
        """Decide the worker count (timing ``first_level`` if needed) and return it: the search's batch size."""
        if not self.workers:
            spent = self.cache.seconds(self._key(first_level))
            if spent is None:
                candidate = self._encode_here(first_level)
                spent = candidate.encode_seconds + candidate.decode_seconds
            self.workers = 1 if spent < FAST_ENCODE_S else self.jobs
        return self.workers

    def __call__(self, levels: Sequence[int]) -> dict[int, tuple[bytes, RGBImage]]:
        """Bitstream and decoded pixels of each level: from this call's encodes, the cache, or encoded now."""
        found: dict[int, tuple[bytes, RGBImage]] = {}
        missing: list[int] = []
        for level in levels:
            fresh = self._fresh.pop(level, None)
            hit = None if fresh is not None else self.cache.get(self._key(level))
            if fresh is not None:
                found[level] = (fresh.data, fresh.decoded)
            elif hit is not None:
                found[level] = (hit, self.adapter.decode(hit))
            else:
                missing.append(level)
        if len(missing) > 1 and self.workers > 1:
            if self._pool is None:
                self._pool = encoder_pool(
                    self.rgb,
                    self.settings.codec,
                    jobs=self.workers,
                    options=self.settings.options,
                    timeout=self.settings.timeout,
                )
            done = list(self._pool.map(encode_in_worker, missing))
            self.count += len(done)
            for candidate in done:
                self.cache.put(
                    self._key(candidate.level), candidate.data, candidate.encode_seconds + candidate.decode_seconds
                )
        else:
            done = [self._encode_here(level) for level in missing]
            for level in missing:
                self._fresh.pop(level, None)
        for candidate in done:
            found[candidate.level] = (candidate.data, candidate.decoded)
        return found

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
    ``seconds``: wall time of the whole call; ``width``/``height`` in pixels;
    ``model_sha256``: digest of the predictor's weights file (None when unknown).
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
    model_sha256: str | None = None
    confidence: float | None = None

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the chosen bitstream."""
        return 8.0 * len(self.data) / float(self.width * self.height)

    def outcome(self) -> dict[str, Any]:
        """What the search found: level, bytes, probes, encodes, predicted SUR and SMR (JSON-ready)."""
        return {
            "level": self.level,
            "bytes": self.nbytes,
            "probes": len(self.probes),
            "encodes": self.encodes,
            "sur": round(self.sur, 4),
            "smr": round(self.smr, 4),
        }

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
            "margin": round(self.targets.margin, 4),
            "confidence": self.confidence,
        }


_PREDICTORS: OrderedDict[tuple[str | None, str, str, int | None], QualityPredictor] = OrderedDict()
_KEPT_PREDICTORS = 2


def cached_predictor(spec: str | os.PathLike[str] | None = None, device: str = "auto") -> QualityPredictor:
    """:func:`sursmr.predictor.load` for ``spec`` on ``device``, kept for later calls (the last few).

    torch is imported only here, on first use. Raises
    :class:`~sursmr_core.errors.ModelError` when the model cannot be loaded.
    """
    import sursmr.predictor
    from sursmr.models.onnx_backbone import resolve_runtime
    from sursmr.tiling import max_tiles_from_env

    # the runtime (sursmr.predictor.load's default, from the environment) and the tile sample
    # ($SURSMR_MAX_TILES, what --max-tiles sets) are part of what was loaded
    max_tiles = max_tiles_from_env()
    key = (None if spec is None else os.fspath(spec), device, resolve_runtime(None), max_tiles)
    found = _PREDICTORS.get(key)
    if found is None:
        found = _PREDICTORS[key] = sursmr.predictor.load(spec, device, max_tiles=max_tiles)
        while len(_PREDICTORS) > _KEPT_PREDICTORS:
            _PREDICTORS.popitem(last=False)
    _PREDICTORS.move_to_end(key)
    return found


def compress_image(
    image: str | os.PathLike[str] | RGBImage,
    settings: CompressSettings,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    cache: EncodeCache | None = None,
    guess: LevelGuess | None = None,
) -> CompressResult:
    """:func:`compress_to_target` with its settings made already (batches make them once for every image).

    ``guess``: instead of searching, encode and check only the levels it
    returns (:func:`sursmr.rate_control.verify`, in this process: no encoder
    is spent on timing); it gets the axis, the targets with their margin and
    the predictor's prior (None when the predictor has no curve) and may
    return None to search as usual. A level that fails is never the result:
    :class:`~sursmr_core.errors.TargetUnreachable` then, as when a search finds nothing.
    The exception carries ``encodes``, as the result does.
    """
    start = time.perf_counter()
    adapter_type = codec_adapters.get(settings.codec)
    if isinstance(image, str | os.PathLike):
        rgb = load_image(image, strict=settings.strict)
    else:
        rgb = check_rgb(image, name="image", min_side=max(MIN_SIDE, adapter_type.min_side))
    # the model loads only once the image is known to be usable
    scorer = (
        cached_predictor(predictor, device)
        if predictor is None or isinstance(predictor, str | os.PathLike)
        else predictor
    )
    targets, confidence = resolve_targets(settings, scorer)
    axis = adapter_type.levels
    # a scorer that is also a sursmr.curves.CurveSource guesses the curve before any encode
    curve = getattr(scorer, "curve", None) if settings.strategy == "predicted" or guess is not None else None
    prior = curve(rgb, settings.codec) if callable(curve) else None
    wanted = None if guess is None else guess(axis.worst_to_best(), targets, prior)
    encoder = LevelEncoder(rgb, settings, _DEFAULT_CACHE if cache is None else cache)
    bitstreams: dict[int, bytes] = {}

    def evaluate(levels: Sequence[int]) -> list[Probe]:
        began = time.perf_counter()
        encoded = encoder(levels)
        for level, (data, _) in encoded.items():
            bitstreams[level] = data
        predictions = scorer.predict(rgb, [encoded[level][1] for level in levels])
        if len(predictions) != len(levels):
            raise ModelError(f"predictor {scorer.name!r} returned {len(predictions)} scores for {len(levels)} images")
        share = (time.perf_counter() - began) / len(levels)
        return [
            Probe(level, len(bitstreams[level]), float(p.sur), float(p.smr), share)
            for level, p in zip(levels, predictions, strict=True)
        ]

    outcome: SearchResult
    try:
        if wanted is not None:
            # no encoder.plan: the given levels are encoded in this process, none is spent timing encoders
            outcome = verify(axis, evaluate, targets, wanted)
        else:
            outcome = search(
                axis,
                evaluate,
                targets,
                strategy=settings.strategy,
                max_probes=settings.max_probes,
                batch=encoder.plan(opening_level(axis, targets, settings.strategy, prior)),
                prior=prior,
                settle_margin=None if settings.thorough else DEFAULT_SETTLE_MARGIN,
            )
    except TargetUnreachable as exc:
        raise TargetUnreachable(str(exc), exc.best, exc.probes, encodes=encoder.count) from None
    finally:
        encoder.close()
    best = outcome.best
    return CompressResult(
        codec=settings.codec,
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
        extension=adapter_type.extension,
        encodes=encoder.count,
        model_sha256=getattr(scorer, "weights_sha256", None),
        confidence=confidence,
    )


def compress_to_target(
    image: str | os.PathLike[str] | RGBImage,
    *,
    codec: str,
    target_sur: float | None = DEFAULT_TARGET_SUR,
    target_smr: float | None = DEFAULT_TARGET_SMR,
    margin: float | None = None,
    confidence: float | None = None,
    predictor: QualityPredictor | str | os.PathLike[str] | None = None,
    device: str = "auto",
    strategy: str = DEFAULT_STRATEGY,
    max_probes: int | None = None,
    thorough: bool = False,
    jobs: int | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    strict: bool = False,
    cache: EncodeCache | None = None,
) -> CompressResult:
    """Encode ``image`` with ``codec`` at the smallest size whose predicted SUR/SMR meet the targets.

    ``image``: a path (loaded with the input policy; ``strict`` refuses
    conversions) or a uint8 (H, W, 3) RGB array. Targets are in [0, 1]
    (``None``: unconstrained; at least one is needed). ``confidence`` P: the
    margin added to each target is the one with which a share ≥ P of images
    like the predictor's validation split truly met the targets (read from
    the model card, see :mod:`sursmr.confidence`); ``margin``: a margin of
    your own instead (not both). With neither, the card's default confidence
    applies (no margin for a card without calibration). ``predictor``: a :class:`~sursmr.scoring.QualityPredictor`, a
    model name or weights path, or ``None`` for the shipped default (loaded on
    ``device`` by :func:`sursmr.predictor.load` after the image is read, and
    kept for later calls). ``strategy``: a name in
    :data:`sursmr.rate_control.STRATEGIES`; ``max_probes`` caps the levels
    evaluated; ``thorough`` makes the ``predicted`` search encode the chosen
    level's cheaper neighbour even when the image's probes say it fails. ``jobs``:
    parallel encoder processes (default: the usable cores); codecs whose
    encode+decode takes milliseconds are always encoded in this process,
    and the search asks for as many levels per round as
    processes encode them. ``options``: codec options (see ``sursmr codecs``);
    ``timeout``: seconds per encode/decode. ``cache``: where bitstreams are
    remembered across calls (default: one per process, 64 MiB).

    Raises :class:`~sursmr_core.errors.TargetUnreachable` (with the closest probe
    and all probes) when no level passes, :class:`~sursmr_core.errors.InputError`
    on bad arguments or images, codec and model errors as their own types.
    """
    settings = CompressSettings.create(
        codec=codec,
        target_sur=target_sur,
        target_smr=target_smr,
        margin=margin,
        confidence=confidence,
        strategy=strategy,
        max_probes=max_probes,
        jobs=jobs,
        options=options,
        timeout=timeout,
        strict=strict,
        thorough=thorough,
    )
    return compress_image(image, settings, predictor, device=device, cache=cache)


def pillow_to_rgb(image: Image.Image, *, strict: bool = False) -> RGBImage:
    """A Pillow image as a uint8 RGB array, under the input policy of :func:`~sursmr_core.imaging.load_image`."""
    import numpy as np

    if image.mode == "RGB":
        return check_rgb(np.ascontiguousarray(np.asarray(image, dtype=np.uint8)), name="image", min_side=MIN_SIDE)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")  # lossless; load_image then applies the policy (alpha, modes, depth)
    except (OSError, ValueError, KeyError) as exc:
        raise UnsupportedImageError(f"a Pillow image in mode {image.mode}: {exc}; convert it to RGB first") from None
    return load_image(buffer.getvalue(), strict=strict)


__all__ = [
    "CARD_DEFAULT",
    "DEFAULT_TARGET_SMR",
    "DEFAULT_TARGET_SUR",
    "CompressResult",
    "CompressSettings",
    "EncodeCache",
    "LevelEncoder",
    "cached_predictor",
    "compress_image",
    "compress_to_target",
    "pillow_to_rgb",
    "resolve_targets",
]
