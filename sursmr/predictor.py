"""The trained SUR/SMR network behind the :class:`~sursmr.scoring.QualityPredictor` protocol.

>>> import sursmr.predictor
>>> predictor = sursmr.predictor.load()                  # shipped weights, offline
>>> predictor.predict(reference, [candidate_a, candidate_b])
[Prediction(sur=0.81, smr=0.97), Prediction(sur=0.42, smr=0.88)]

:func:`load` is the one way to build a predictor from files: weights are
``<name>.safetensors`` + ``<name>.json`` (model card) in ``sursmr/weights/``,
or any path to such a pair, or any other kind of file a package registered in
:data:`sursmr.model_sources.MODEL_SOURCES` (training checkpoints). Nothing is
ever downloaded.

Scoring many candidates of one reference is the controller's pattern, so
the reference's features (and reference-only statistics) are computed once per call and kept for
the last reference seen (keyed by a digest of its pixels) when they fit in
``REFERENCE_CACHE_BYTES``; candidates are scored in batches of
``batch_size`` network inputs. Tiles are streamed ``TILE_CHUNK`` at a time,
so memory stays bounded whatever the image size. An image with more than
``max_tiles`` tiles (:data:`DEFAULT_MAX_TILES`; a 12 MP photo has 192) is
scored on a deterministic, content-aware sample of that many
(:func:`sample_tiles`), so the cost per candidate is bounded too; the score
is then an estimate of the mean over every tile. Predictions are
deterministic: eval mode, ``torch.inference_mode``, no dropout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sursmr.curve_model import CurveModel, curve_model, image_features
from sursmr.curves import card_prior
from sursmr.model_sources import OpenedModel, source_for
from sursmr.models.config import NetConfig
from sursmr.models.fuse import fold_batchnorm
from sursmr.models.inputs import aggregate_tiles, image_to_input, tile_origins
from sursmr.models.network import SurSmrNet
from sursmr.models.onnx_backbone import resolve_runtime, use_runtime
from sursmr.models.stats_head import StatsHead
from sursmr.models.weights import ModelCard, load_state_into, read_card, resolve_weights, save_weights
from sursmr.rate_control import Prior
from sursmr.scoring import Prediction
from sursmr.tiling import DEFAULT_MAX_TILES
from sursmr_core.errors import InputError, ModelError
from sursmr_core.imaging import RGBImage, check_rgb, image_digest

DEFAULT_MODEL = "sursmr-v2-lite0"
"""Name of the weights shipped in ``sursmr/weights/`` and used when no model is given."""

_UNREAD = object()  # the card's curve model not parsed yet

DEFAULT_BATCH_SIZE = 8
TILE_CHUNK = 32
"""Reference tiles whose features are held at once while scoring (``native`` mode); bounds memory."""
REFERENCE_CACHE_BYTES = 400 * 2**20
"""The last reference's prepared features (:meth:`SurSmrNet.prepare_reference`: for ``sursmr-v2-lite0`` its
features and reference statistics, ~7.8 MB a 256² tile, so ~50 tiles; a ``max_tiles`` sample of 16 always
fits) are kept between calls when they fit here; a larger image's are recomputed per call."""


SUPPORTED_DEVICE_TYPES = ("cpu", "cuda")
"""Where the predictor runs; others (meta, mps, xpu...) are refused up front with an InputError."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; other strings as torch spells them (``cpu``, ``cuda:1``)."""
    if isinstance(device, torch.device):
        chosen = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            chosen = torch.device(device)
        except (RuntimeError, ValueError, TypeError):
            raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if chosen.type not in SUPPORTED_DEVICE_TYPES:
        raise InputError(f"device {str(device)!r} is not supported by sursmr; use auto, cpu, cuda or cuda:N")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device} requested but CUDA is not available here; use --device cpu")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return chosen


def tile_activity(image: RGBImage, origins: Sequence[tuple[int, int]], side: int) -> list[float]:
    """Standard deviation of the luma (every 4th pixel each way) of each ``side``² tile at ``origins``."""
    luma = image[::4, ::4].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    step = max(1, side // 4)
    return [float(luma[top // 4 : top // 4 + step, left // 4 : left // 4 + step].std()) for top, left in origins]


def sample_tiles(image: RGBImage, origins: Sequence[tuple[int, int]], side: int, count: int) -> list[tuple[int, int]]:
    """A deterministic, content-aware sample of ``count`` tile origins (all of them when there are no more).

    The rule: rank the tiles by :func:`tile_activity` (ties by position, row-major),
    cut the ranking into ``count`` strata of equal size and take the middle tile of
    each; return them in row-major order. Flat and busy regions are therefore
    represented in proportion to their area, so the mean over the sample estimates
    the mean over every tile (the ``mean`` aggregate) from flat sky to fine texture.
    """
    if count < 1:
        raise InputError(f"count must be at least 1, got {count}")
    if len(origins) <= count:
        return list(origins)
    activity = tile_activity(image, origins, side)
    ranked = sorted(range(len(origins)), key=lambda i: (activity[i], i))
    picked = sorted(ranked[int((j + 0.5) * len(origins) / count)] for j in range(count))
    return [origins[i] for i in picked]


class Predictor:
    """Scores compressed candidates of a reference image with a :class:`SurSmrNet`.

    Build with :func:`load` (files) or :meth:`from_model` (a network in
    memory, e.g. during training; it is put in eval mode and moved to ``device``).
    ``weights_sha256`` identifies the weights (None when unknown, e.g. in memory).
    ``max_tiles`` (``native`` mode): an image with more tiles is scored on the
    :func:`sample_tiles` sample of that many, the same for the reference and
    every candidate (None: every tile, whatever the cost).
    ``runtime`` (:data:`~sursmr.models.onnx_backbone.RUNTIMES`; None: ``$SURSMR_RUNTIME`` or ``auto``): a fused
    predictor on the CPU runs its backbone with ONNX Runtime (:mod:`sursmr.models.onnx_backbone`); ``self.runtime``
    says which runs it.
    """

    def __init__(
        self,
        model: SurSmrNet,
        card: ModelCard,
        *,
        device: str | torch.device = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        weights_sha256: str | None = None,
        channels_last: bool = False,
        max_tiles: int | None = DEFAULT_MAX_TILES,
        fuse: bool = False,
        runtime: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if max_tiles is not None and max_tiles < 1:
            raise InputError(f"max_tiles must be at least 1 (or None: every tile), got {max_tiles}")
        self.max_tiles = max_tiles
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.fused = fuse and fold_batchnorm(self.model.backbone) > 0  # changes the weights: never while training
        if fuse and isinstance(self.model.head, StatsHead):
            self.model.head.stack_members()  # the MLP ensembles as batched products (a copy of their weights)
        if channels_last:
            # tiles arrive as NHWC uint8 permuted to NCHW, i.e. already channels-last; a channels-last network
            # skips a layout conversion per convolution (same outputs; measured ~1.26x faster on 2 CPU threads)
            self.model = self.model.to(memory_format=torch.channels_last)
        self.runtime = use_runtime(self.model, runtime, self.device, inference=self.fused)
        self.card = card
        self.name = card.name
        self.batch_size = batch_size
        self.weights_sha256 = weights_sha256 or card.weights_sha256
        self._reference_key: str | None = None
        self._reference_features: list[Tensor] | None = None
        self._origins: tuple[tuple[str, int | None], list[tuple[int, int]]] | None = None
        self._curve_model: CurveModel | object | None = _UNREAD
        self._curve_features: tuple[str, dict[str, float]] | None = None

    @property
    def config(self) -> NetConfig:
        return self.model.config

    @classmethod
    def from_model(
        cls,
        model: SurSmrNet,
        card: ModelCard | None = None,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        channels_last: bool = False,
        max_tiles: int | None = DEFAULT_MAX_TILES,
        fuse: bool = False,
        runtime: str | None = None,
    ) -> Predictor:
        """Wrap an in-memory network; the card defaults to one named after its config with no provenance.

        ``channels_last`` converts the network's layout in place and ``fuse`` folds the backbone's
        BatchNorms into its convolutions in place (:func:`~sursmr.models.fuse.fold_batchnorm`) and runs a
        ``stats`` head's MLP ensembles as batched products (:meth:`StatsHead.stack_members`), as
        :func:`load` does (faster on CPU, outputs equal to float rounding); both off by default so a
        network being trained is left as it is. A fused predictor cannot :meth:`save`; on the CPU it runs its
        backbone with ``runtime`` (ONNX Runtime by default).
        """
        return cls(
            model,
            card or ModelCard(name=model.config.name, config=model.config),
            device=device,
            batch_size=batch_size,
            channels_last=channels_last,
            max_tiles=max_tiles,
            fuse=fuse,
            runtime=runtime,
        )

    def save(self, path: str | os.PathLike[str], *, fp16: bool = False) -> ModelCard:
        """Write ``path`` (``.safetensors``, float16 with ``fp16``) and its ``.json`` card; returns the card written."""
        if self.fused:
            raise ModelError(
                f"{self.name}: a predictor with folded BatchNorms cannot be saved; build it with fuse=False"
            )
        self.card = save_weights(self.model, self.card, path, fp16=fp16)
        return self.card

    def curve(self, reference: RGBImage | None, codec: str, *, per_image: bool = True) -> Prior | None:
        """A prior for the ``predicted`` search: ``{level: (sur, smr)}`` of ``codec``, or None (then bisect).

        The card's population curve (:func:`sursmr.curves.card_prior`); with a
        curve model in the card (:mod:`sursmr.curve_model`) and a ``reference``
        (unless ``per_image=False``), that curve moved along the level axis to
        where the model guesses this image's curves cross.
        """
        population = card_prior(self.card, codec)
        if per_image and reference is not None and population is not None:
            if self._curve_model is _UNREAD:
                self._curve_model = curve_model(self.card.extra, f"model card {self.card.name!r}")
            model = self._curve_model
            if isinstance(model, CurveModel) and codec in model.codecs:
                key = image_digest(reference)
                if self._curve_features is None or self._curve_features[0] != key:
                    self._curve_features = (key, image_features(reference))
                return model.prior(self._curve_features[1], codec, population) or population
        return population

    def clear_cache(self) -> None:
        """Forget the cached reference features (needed only if the network's weights change)."""
        self._reference_key = None
        self._reference_features = None

    def _tile_origins(self, height: int, width: int) -> list[tuple[int, int]]:
        """(top, left) of every network input tile; one (0, 0) standing for the whole image in ``resize224``."""
        if self.config.input_mode == "resize224":
            return [(0, 0)]
        side = self.config.input_size
        return [(top, left) for top in tile_origins(height, side) for left in tile_origins(width, side)]

    def scored_tiles(self, reference: RGBImage, key: str | None = None) -> list[tuple[int, int]]:
        """(top, left) of the tiles scored for ``reference``: every tile, or its sample beyond ``max_tiles``."""
        origins = self._tile_origins(reference.shape[0], reference.shape[1])
        if self.max_tiles is None or len(origins) <= self.max_tiles:
            return origins
        wanted = (key or image_digest(reference), self.max_tiles)
        if self._origins is None or self._origins[0] != wanted:
            self._origins = (wanted, sample_tiles(reference, origins, self.config.input_size, self.max_tiles))
        return self._origins[1]

    def _inputs(self, image: RGBImage, origins: Sequence[tuple[int, int]]) -> Tensor:
        """(n, 3, S, S) network inputs for the tiles at ``origins``, cut from the uint8 pixels.

        The same values as :func:`~sursmr.models.inputs.image_to_input` (the
        trainer's path), but only these tiles become float: a 64 MP image
        never exists as a whole float tensor (768 MB) in ``native`` mode.
        """
        if self.config.input_mode == "resize224":
            return image_to_input(image, self.config, self.device)
        side = self.config.input_size
        height, width = image.shape[:2]
        if height < side or width < side:  # edge replication, as image_to_input pads
            image = np.pad(image, ((0, max(0, side - height)), (0, max(0, side - width)), (0, 0)), mode="edge")
        tiles = np.stack([image[top : top + side, left : left + side] for top, left in origins])
        raw = torch.from_numpy(tiles).to(self.device)
        return raw.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)

    def _reference_features_of(self, reference: RGBImage, origins: Sequence[tuple[int, int]]) -> list[Tensor]:
        """:meth:`SurSmrNet.prepare_reference` of the tiles at ``origins``, ``batch_size`` tiles at a time."""
        out: list[Tensor] = []
        for start in range(0, len(origins), self.batch_size):
            inputs = self._inputs(reference, origins[start : start + self.batch_size])
            part = self.model.prepare_reference(self.model.reference_features(inputs))
            if not out:
                out = [torch.empty((len(origins), *f.shape[1:]), dtype=f.dtype, device=f.device) for f in part]
            for whole, piece in zip(out, part, strict=True):
                whole[start : start + piece.shape[0]] = piece
        return out

    def _reference_chunks(
        self, reference: RGBImage, origins: Sequence[tuple[int, int]], digest: str
    ) -> Iterator[tuple[int, int, list[Tensor]]]:
        """(first tile, end tile, reference features of those tiles), ``TILE_CHUNK`` tiles at a time.

        The controller scores many candidates against one reference, so the
        features of the last reference are kept (keyed by a digest of its
        pixels) when they fit in ``REFERENCE_CACHE_BYTES``; a larger image's
        are computed again chunk by chunk on each call, which keeps memory
        bounded whatever the image size.
        """
        count = len(origins)
        chunk = max(TILE_CHUNK, self.batch_size)
        key = f"{digest}:{count}:{hash(tuple(origins))}"
        cached = self._reference_features if self._reference_key == key else None
        if cached is not None:
            for start in range(0, count, chunk):
                yield start, min(start + chunk, count), [f[start : start + chunk] for f in cached]
            return
        self.clear_cache()  # free the previous reference's features before computing new ones
        keep: list[Tensor] | None = None
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            features = self._reference_features_of(reference, origins[start:stop])
            if start == 0:
                per_tile = sum(f[0].numel() * f.element_size() for f in features)
                if count * per_tile <= REFERENCE_CACHE_BYTES:
                    keep = (
                        features
                        if stop == count
                        else [torch.empty((count, *f.shape[1:]), dtype=f.dtype, device=f.device) for f in features]
                    )
            if keep is not None and keep is not features:
                for whole, piece in zip(keep, features, strict=True):
                    whole[start:stop] = piece
            yield start, stop, features
        if keep is not None:
            self._reference_key, self._reference_features = key, keep

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        """One :class:`Prediction` per candidate, in order.

        ``reference`` and every candidate are uint8 (H, W, 3) arrays of the same size.
        Raises :class:`~sursmr_core.errors.ModelError` when the network's output
        is not finite (damaged weights).
        """
        check_rgb(reference, name="reference")
        for index, candidate in enumerate(candidates):
            check_rgb(candidate, name=f"candidate {index}")
            if candidate.shape != reference.shape:
                raise InputError(
                    f"candidate {index} is {candidate.shape[1]}x{candidate.shape[0]}, "
                    f"the reference {reference.shape[1]}x{reference.shape[0]}; they must match"
                )
        if not candidates:
            return []
        digest = image_digest(reference)
        origins = self.scored_tiles(reference, digest)
        with torch.inference_mode():
            scores = torch.empty((len(candidates), len(origins), 2), dtype=torch.float32, device=self.device)
            for start, stop, ref_features in self._reference_chunks(reference, origins, digest):
                rows = [
                    self.model.forward_from_prepared(refs, self._inputs_of(candidates[first:last], tiles))
                    for first, last, tiles, refs in self._batches(len(candidates), origins[start:stop], ref_features)
                ]
                scores[:, start:stop] = torch.cat(rows).view(len(candidates), stop - start, 2).float()
            per_image = torch.stack([aggregate_tiles(s, self.config.patch_aggregate) for s in scores])
            if not bool(torch.isfinite(per_image).all()):
                raise ModelError(
                    f"model {self.name!r} gave non-finite scores (NaN or infinity): its weights are damaged; "
                    "export or train them again, or use another --model"
                )
            values = per_image.clamp(0.0, 1.0).double().cpu().numpy()
        return [Prediction(sur=float(sur), smr=float(smr)) for sur, smr in values]

    def _batches(
        self, count: int, origins: Sequence[tuple[int, int]], ref_features: list[Tensor]
    ) -> Iterator[tuple[int, int, Sequence[tuple[int, int]], list[Tensor]]]:
        """(first candidate, end candidate, tiles, their reference features) of each network batch.

        Whole candidates when their tiles fit in ``batch_size`` (the references' features are shared by
        the group, see :meth:`SurSmrNet.forward_from_prepared`), else ``batch_size`` tiles of one
        candidate at a time against views of the matching reference features: nothing is copied.
        """
        tiles = len(origins)
        if tiles <= self.batch_size:
            group = self.batch_size // tiles
            for first in range(0, count, group):
                yield first, min(first + group, count), origins, ref_features
            return
        for index in range(count):
            for a in range(0, tiles, self.batch_size):
                b = min(a + self.batch_size, tiles)
                yield index, index + 1, origins[a:b], [f[a:b] for f in ref_features]

    def _inputs_of(self, candidates: Sequence[RGBImage], origins: Sequence[tuple[int, int]]) -> Tensor:
        """Network inputs of the tiles at ``origins`` of each candidate, candidate after candidate."""
        if len(candidates) == 1:
            return self._inputs(candidates[0], origins)
        return torch.cat([self._inputs(candidate, origins) for candidate in candidates])

    def predict_tensors(self, reference: Tensor, distorted: Tensor) -> Tensor:
        """(N, 2) float (SUR, SMR) for prepared network inputs, in batches of ``batch_size``; no tile aggregation.

        ``reference``: (1 or N, 3, S, S) in [0, 1] (1: shared by all rows);
        ``distorted``: (N, 3, S, S) in [0, 1], e.g. from
        :func:`sursmr.models.inputs.image_to_input`. Returned on the CPU.
        """
        if reference.ndim != 4 or distorted.ndim != 4 or reference.shape[0] not in (1, distorted.shape[0]):
            raise InputError(
                f"reference {tuple(reference.shape)} must be (1 or N, 3, S, S) for distorted {tuple(distorted.shape)}"
            )
        out: list[Tensor] = []
        with torch.inference_mode():
            shared = reference.shape[0] == 1
            net = self.model
            ref_features = net.prepare_reference(net.reference_features(reference.to(self.device))) if shared else None
            for start in range(0, distorted.shape[0], self.batch_size):
                stop = start + self.batch_size
                dist = distorted[start:stop].to(self.device)
                refs = reference[start:stop].to(self.device)
                feats = ref_features or net.prepare_reference(net.reference_features(refs))
                out.append(net.forward_from_prepared(feats, dist).float().cpu())
        return torch.cat(out) if out else torch.empty(0, 2)


INFERENCE_OVERRIDES = frozenset(f.name for f in dataclasses.fields(NetConfig)) & {
    "input_mode",
    "input_size",
    "patch_aggregate",
}
"""Config fields :func:`load` may override: the input pipeline, which the weights do not depend on."""


def _open_weights(spec: str, weights_dir: Path | None) -> OpenedModel:
    path = resolve_weights(spec, weights_dir)
    card = read_card(path)
    sha256 = card.weights_sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    return OpenedModel(card, lambda network: load_state_into(network, path), sha256)


def load(
    spec: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    weights_dir: Path | None = None,
    max_tiles: int | None = DEFAULT_MAX_TILES,
    runtime: str | None = None,
    **overrides: Any,
) -> Predictor:
    """The predictor in ``spec``: a weights name (in ``sursmr/weights/`` or ``weights_dir``), a ``.safetensors``
    path with its card, or a file a registered model source claims (a training run or checkpoint); None: the
    shipped :data:`DEFAULT_MODEL`.

    ``overrides`` change the input pipeline the network scores with (``input_mode``,
    ``input_size``, ``patch_aggregate``; see :meth:`NetConfig.for_inference`)
    before the network is built. ``max_tiles``: tiles scored per image beyond which a sample is
    scored (:func:`sample_tiles`; None: every tile). ``runtime``: ``auto`` (None: ``$SURSMR_RUNTIME``, else auto)
    runs the backbone with ONNX Runtime on the CPU when onnx and onnxruntime are installed, ``torch`` never,
    ``onnx`` always (:class:`~sursmr.models.onnx_backbone.RuntimeUnavailableError` when it cannot).
    Raises :class:`~sursmr_core.errors.WeightsNotFoundError` (exit code 6) when the file or its card is
    missing, :class:`~sursmr_core.errors.ModelError` when they do not fit each other,
    :class:`~sursmr_core.errors.InputError` on an unknown override, device or runtime.
    """
    unknown = sorted(set(overrides) - INFERENCE_OVERRIDES)
    if unknown:
        raise InputError(f"cannot override {unknown} when loading a predictor; allowed: {sorted(INFERENCE_OVERRIDES)}")
    target = resolve_device(device)  # a bad device or runtime fails before the weights are read
    runtime = resolve_runtime(runtime)
    text = DEFAULT_MODEL if spec is None else os.fspath(spec)
    source = source_for(text)
    opened = source.open(text) if source is not None else _open_weights(text, weights_dir)
    config = opened.card.config.for_inference(**{k: v for k, v in overrides.items() if v is not None})
    try:
        network = SurSmrNet(config)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{text}: cannot build the network its card describes ({exc})") from None
    opened.fill(network)
    return Predictor(
        network,
        opened.card,
        device=target,
        batch_size=batch_size,
        weights_sha256=opened.sha256,
        channels_last=True,
        max_tiles=max_tiles,
        fuse=True,
        runtime=runtime,
    )


def identify(spec: str | os.PathLike[str] | None = None, *, weights_dir: Path | None = None) -> tuple[str, str | None]:
    """(name, weights SHA-256) of the predictor :func:`load` would build from ``spec``, without building it."""
    text = DEFAULT_MODEL if spec is None else os.fspath(spec)
    source = source_for(text)
    opened = source.open(text) if source is not None else _open_weights(text, weights_dir)
    return opened.card.name, opened.sha256
