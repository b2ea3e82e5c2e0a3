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
the reference's backbone features are computed once per call and kept for
the last reference seen (keyed by a digest of its pixels); candidates are
scored in batches of ``batch_size`` network inputs. Predictions are
deterministic: eval mode, ``torch.inference_mode``, no dropout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sursmr.model_sources import OpenedModel, source_for
from sursmr.models.config import NetConfig
from sursmr.models.inputs import aggregate_tiles, image_to_input
from sursmr.models.network import SurSmrNet
from sursmr.models.weights import ModelCard, load_state_into, read_card, resolve_weights, save_weights
from sursmr.scoring import Prediction
from sursmr_core.errors import InputError, ModelError
from sursmr_core.imaging import RGBImage, check_rgb, image_digest

DEFAULT_MODEL = "sursmr-effnet-lite0"
"""Name of the weights shipped in ``sursmr/weights/`` and used when no model is given."""

DEFAULT_BATCH_SIZE = 8


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; other strings as torch spells them (``cpu``, ``cuda:1``)."""
    if isinstance(device, torch.device):
        chosen = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device} requested but CUDA is not available here; use --device cpu")
    return chosen


class Predictor:
    """Scores compressed candidates of a reference image with a :class:`SurSmrNet`.

    Build with :func:`load` (files) or :meth:`from_model` (a network in
    memory, e.g. during training; it is put in eval mode and moved to ``device``).
    ``weights_sha256`` identifies the weights (None when unknown, e.g. in memory).
    """

    def __init__(
        self,
        model: SurSmrNet,
        card: ModelCard,
        *,
        device: str | torch.device = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        weights_sha256: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.card = card
        self.name = card.name
        self.batch_size = batch_size
        self.weights_sha256 = weights_sha256 or card.weights_sha256
        self._reference_key: str | None = None
        self._reference_features: list[Tensor] | None = None

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
    ) -> Predictor:
        """Wrap an in-memory network; the card defaults to one named after its config with no provenance."""
        return cls(
            model, card or ModelCard(name=model.config.name, config=model.config), device=device, batch_size=batch_size
        )

    def save(self, path: str | os.PathLike[str], *, fp16: bool = False) -> ModelCard:
        """Write ``path`` (``.safetensors``, float16 with ``fp16``) and its ``.json`` card; returns the card written."""
        self.card = save_weights(self.model, self.card, path, fp16=fp16)
        return self.card

    def clear_cache(self) -> None:
        """Forget the cached reference features (needed only if the network's weights change)."""
        self._reference_key = None
        self._reference_features = None

    def _features_for(self, reference: RGBImage) -> list[Tensor]:
        key = image_digest(reference)
        if self._reference_key != key or self._reference_features is None:
            inputs = image_to_input(reference, self.config, self.device)
            self._reference_features = self.model.reference_features(inputs)
            self._reference_key = key
        return self._reference_features

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        """One :class:`Prediction` per candidate, in order.

        ``reference`` and every candidate are uint8 (H, W, 3) arrays of the same size.
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
        with torch.inference_mode():
            ref_features = self._features_for(reference)
            tiles = int(ref_features[0].shape[0])
            rows: list[Tensor] = []
            scored = 0
            pending: list[Tensor] = []
            for candidate in candidates:
                pending.extend(image_to_input(candidate, self.config, self.device).unbind(0))
                while len(pending) >= self.batch_size:
                    rows.append(self._score_tiles(ref_features, pending[: self.batch_size], scored))
                    scored += self.batch_size
                    del pending[: self.batch_size]
            if pending:
                rows.append(self._score_tiles(ref_features, pending, scored))
            scores = torch.cat(rows).view(len(candidates), tiles, 2)
            per_image = torch.stack([aggregate_tiles(s, self.config.patch_aggregate) for s in scores])
            values = per_image.clamp(0.0, 1.0).double().cpu().numpy()
        return [Prediction(sur=float(sur), smr=float(smr)) for sur, smr in values]

    def _score_tiles(self, ref_features: list[Tensor], batch: list[Tensor], first_item: int) -> Tensor:
        """(b, 2) scores of candidate tiles; item k of the flat candidate×tile sequence is tile k mod P."""
        tiles = int(ref_features[0].shape[0])
        distorted = torch.stack(batch)
        if tiles == 1:
            matched = ref_features  # batch 1 broadcasts over the candidates
        else:
            index = torch.arange(first_item, first_item + len(batch), device=self.device) % tiles
            matched = [f.index_select(0, index) for f in ref_features]
        return self.model.forward_from_features(matched, distorted)

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
            ref_features = self.model.reference_features(reference.to(self.device)) if shared else None
            for start in range(0, distorted.shape[0], self.batch_size):
                stop = start + self.batch_size
                dist = distorted[start:stop].to(self.device)
                feats = ref_features or self.model.reference_features(reference[start:stop].to(self.device))
                out.append(self.model.forward_from_features(feats, dist).float().cpu())
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
    **overrides: Any,
) -> Predictor:
    """The predictor in ``spec``: a weights name (in ``sursmr/weights/`` or ``weights_dir``), a ``.safetensors``
    path with its card, or a file a registered model source claims (a training run or checkpoint); None: the
    shipped :data:`DEFAULT_MODEL`.

    ``overrides`` change the input pipeline the network scores with (``input_mode``,
    ``input_size``, ``patch_aggregate``; see :meth:`NetConfig.for_inference`)
    before the network is built. Raises :class:`~sursmr_core.errors.WeightsNotFoundError`
    (exit code 6) when the file or its card is missing, :class:`~sursmr_core.errors.ModelError`
    when they do not fit each other, :class:`~sursmr_core.errors.InputError` on an unknown
    override or device.
    """
    unknown = sorted(set(overrides) - INFERENCE_OVERRIDES)
    if unknown:
        raise InputError(f"cannot override {unknown} when loading a predictor; allowed: {sorted(INFERENCE_OVERRIDES)}")
    target = resolve_device(device)  # a bad device fails before the weights are read
    text = DEFAULT_MODEL if spec is None else os.fspath(spec)
    source = source_for(text)
    opened = source.open(text) if source is not None else _open_weights(text, weights_dir)
    config = opened.card.config.for_inference(**{k: v for k, v in overrides.items() if v is not None})
    try:
        network = SurSmrNet(config)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{text}: cannot build the network its card describes ({exc})") from None
    opened.fill(network)
    return Predictor(network, opened.card, device=target, batch_size=batch_size, weights_sha256=opened.sha256)
