"""A dataset split as the training loop consumes it, and the frozen-backbone feature cache.

In the frozen path (``freeze_backbone=True``, the CPU path) backbone
features of every reference and candidate are computed once and kept as
difference features F0 − Fq (fp16, in memory and in a cache beside the
dataset); only the head trains. In the full path the split holds image pairs
(uint8) for end-to-end training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sursmr.models.inputs import image_to_input, tensor_to_input
from sursmr.models.network import SurSmrNet
from sursmr_core.errors import InputError
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.torch_dataset import SurSmrDataset
from training.train.config import TrainConfig

SPLITS = ("train", "val")


@dataclass
class SplitData:
    """A split as the loop consumes it: inputs per tile and labels per sample.

    ``owner[t]`` is the sample of tile ``t`` (one tile per sample in
    ``resize224`` mode). In the frozen path ``diffs`` holds cached F0 − Fq per
    stage (fp16); in the full path ``pairs`` holds (reference, distorted)
    network inputs (uint8, to keep memory small).
    """

    sur: Tensor  # (N,)
    smr: Tensor  # (N,), NaN where undefined
    meta: list[dict[str, Any]]
    owner: Tensor  # (T,)
    diffs: list[Tensor] | None = None
    pairs: tuple[Tensor, Tensor] | None = None
    pooled: Tensor | None = None  # (T, D) stats-head vectors (frozen path of the ``stats`` head)
    identity: Tensor | None = None  # (R, D) stats-head vectors of each reference against itself

    @property
    def tiles(self) -> int:
        return int(self.owner.shape[0])


def _to_uint8(x: Tensor) -> Tensor:
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def prepare_split(
    dataset: SurSmrDataset,
    model: SurSmrNet,
    *,
    frozen: bool,
    device: torch.device,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    item_cache: Path | None = None,
) -> SplitData:
    """Turn a dataset split into :class:`SplitData` (backbone features cached when ``frozen``).

    ``item_cache``: per-item vector cache of the frozen ``stats`` head (see :func:`item_cache_dir`).
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise InputError(f"split {dataset!r} of {dataset.root} has no labelled samples")
    config = model.config
    if frozen and config.head == "stats":
        return _prepare_stats_split(dataset, model, device, count, progress, item_cache)
    sur, smr, meta, owner = [], [], [], []
    stage_chunks: list[list[Tensor]] = []
    refs: list[Tensor] = []
    dists: list[Tensor] = []
    last_item: str | None = None
    ref_features: list[Tensor] = []
    model.eval()
    with torch.inference_mode():
        for i in range(count):
            reference, distorted, sur_label, smr_label, info = dataset[i]
            ref_in = tensor_to_input(reference, config)
            dist_in = tensor_to_input(distorted, config)
            if frozen:
                if info["item_id"] != last_item:  # references repeat over an item's levels
                    ref_features = model.reference_features(ref_in.to(device))
                    last_item = info["item_id"]
                dist_features = model.reference_features(dist_in.to(device))
                stage_chunks.append([(r - d).half().cpu() for r, d in zip(ref_features, dist_features, strict=True)])
            else:
                refs.append(_to_uint8(ref_in))
                dists.append(_to_uint8(dist_in))
            owner.extend([i] * ref_in.shape[0])
            sur.append(float(sur_label))
            smr.append(float(smr_label))
            meta.append(info)
            if progress is not None:
                progress(i + 1, count)
    data = SplitData(
        sur=torch.tensor(sur, dtype=torch.float32),
        smr=torch.tensor(smr, dtype=torch.float32),
        meta=meta,
        owner=torch.tensor(owner, dtype=torch.long),
    )
    if frozen:
        data.diffs = [torch.cat([chunk[s] for chunk in stage_chunks]) for s in range(len(stage_chunks[0]))]
    else:
        data.pairs = (torch.cat(refs), torch.cat(dists))
    return data


STATS_BATCH = 16
"""Candidates per backbone pass when caching stats-head vectors (the levels of one item share a reference)."""


def _prepare_stats_split(
    dataset: SurSmrDataset,
    model: SurSmrNet,
    device: torch.device,
    count: int,
    progress: Callable[[int, int], None] | None,
    item_cache: Path | None = None,
) -> SplitData:
    """The frozen path of the ``stats`` head: one vector per tile, plus each reference against itself.

    Nothing before the head's MLPs has parameters, so the vectors are exactly
    what the network computes at prediction time. Samples of one item are
    scored in batches of :data:`STATS_BATCH` against one reference pass.
    ``item_cache``: a folder keeping each item's vectors (keyed by the item's
    npz digest and :func:`feature_signature`), so a relabelled copy, a holdout
    view or a larger snapshot of the same build computes only items it has
    not seen (unused with flip augmentation).
    """
    signature = feature_signature(model)
    use_cache = item_cache is not None and not dataset.flip
    sur, smr, meta, owner = [], [], [], []
    pooled: list[Tensor] = []
    identity: list[Tensor] = []
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(dataset.index[i][0], []).append(i)
    done = 0
    model.eval()
    with torch.inference_mode():
        for number, samples in groups.items():
            record = dataset.records[number]
            path = None
            if use_cache and item_cache is not None and record.get("npz_sha256"):
                path = item_cache / f"{record['npz_sha256'][:32]}-{signature}.pt"
            stored = _load_item_vectors(path)
            wanted = [dataset.index[i][1] for i in samples]
            if stored is None or any(level not in stored["levels"] for level in wanted):
                stored = _item_vectors(dataset, model, device, samples, stored)
                if path is not None:
                    save_torch(path, stored)
            identity.append(stored["identity"])
            for i in samples:
                _, level_index, sur_label, smr_label, info = dataset.sample(i)
                vectors = stored["levels"][level_index]
                pooled.append(vectors)
                owner.extend([i] * vectors.shape[0])
                sur.append(sur_label)
                smr.append(smr_label)
                meta.append(info)
            done += len(samples)
            if progress is not None:
                progress(done, count)
    return SplitData(
        sur=torch.tensor(sur, dtype=torch.float32),
        smr=torch.tensor(smr, dtype=torch.float32),
        meta=meta,
        owner=torch.tensor(owner, dtype=torch.long),
        pooled=torch.cat(pooled),
        identity=torch.cat(identity),
    )


def _load_item_vectors(path: Path | None) -> dict[str, Any] | None:
    """An item's cached stats-head vectors, or None (no cache, missing or unreadable file: computed again)."""
    if path is None or not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=True)
    except Exception:  # a damaged cache file is recomputed, never trusted
        return None
    if not isinstance(stored, dict) or "identity" not in stored or "levels" not in stored:
        return None
    return stored


def _item_vectors(
    dataset: SurSmrDataset,
    model: SurSmrNet,
    device: torch.device,
    samples: list[int],
    stored: dict[str, Any] | None,
) -> dict[str, Any]:
    """Stats-head vectors of one item's ``samples`` (and its identity), merged into ``stored``."""
    config = model.config
    reference, _ = dataset.images(samples[0])
    ref_features = model.reference_features(image_to_input(reference, config).to(device))
    levels: dict[int, Tensor] = dict(stored["levels"]) if stored is not None else {}
    for start in range(0, len(samples), STATS_BATCH):
        chunk = samples[start : start + STATS_BATCH]
        tiles = [image_to_input(dataset.images(i)[1], config) for i in chunk]
        batch = torch.cat(tiles).to(device)
        per_tile = batch.shape[0] // len(chunk)
        shared = [f.repeat(len(chunk), *([1] * (f.ndim - 1))) for f in ref_features]
        vectors = model.head.pool(shared, model.reference_features(batch)).cpu()
        for j, i in enumerate(chunk):
            levels[dataset.index[i][1]] = vectors[j * per_tile : (j + 1) * per_tile].clone()
    return {"identity": model.head.pool(ref_features, ref_features).cpu(), "levels": levels}


def with_identity(data: SplitData, share: float) -> SplitData:
    """``data`` plus ``share`` × N samples of an image against itself (zero difference, SUR = SMR = 1).

    The identity samples copy existing references (full path) or are zero
    difference features (frozen path), so they cost no backbone pass.
    """
    count = round(share * len(data.meta))
    if count == 0:
        return data
    first = len(data.meta)
    donors = torch.arange(count) % data.tiles
    owner = torch.cat([data.owner, torch.arange(first, first + count)])
    extra = SplitData(
        sur=torch.cat([data.sur, torch.ones(count)]),
        smr=torch.cat([data.smr, torch.ones(count)]),
        meta=[*data.meta, *({"item_id": "identity", "codec": "identity", "level": -1} for _ in range(count))],
        owner=owner,
    )
    if data.diffs is not None:
        extra.diffs = [torch.cat([d, torch.zeros_like(d[donors])]) for d in data.diffs]
    if data.pooled is not None and data.identity is not None:
        extra.pooled = torch.cat([data.pooled, data.identity[torch.arange(count) % data.identity.shape[0]]])
        extra.identity = data.identity
    if data.pairs is not None:
        ref = data.pairs[0][donors]
        extra.pairs = (torch.cat([data.pairs[0], ref]), torch.cat([data.pairs[1], ref]))
    return extra


def _model_key(model: SurSmrNet) -> dict[str, Any]:
    """What the backbone features and stats-head vectors of ``model`` depend on, besides the weights."""
    net = model.config
    return {
        "backbone": net.backbone,
        "stages": list(net.stages),
        "input": [net.input_mode, net.input_size, list(net.mean), list(net.std)],
        "feature_norm": net.feature_norm,
        "stats_head": [net.pixel_scales, 1, sorted(set(net.stats_streams) | set(net.smr_streams or ()))]
        if net.head == "stats"
        else None,
    }


def feature_signature(model: SurSmrNet) -> str:
    """A short digest of the backbone's weights and what the cached vectors depend on (item cache key)."""
    digest = hashlib.sha256(json.dumps(_model_key(model), sort_keys=True).encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def item_cache_dir(data: str | Path) -> Path:
    """Where per-item stats-head vectors are kept: ``$SURSMR_FEATURE_CACHE`` or ``<data>/.feature-cache/items``."""
    chosen = os.environ.get("SURSMR_FEATURE_CACHE")
    return Path(chosen) if chosen else Path(data) / ".feature-cache" / "items"


def feature_cache_path(config: TrainConfig, model: SurSmrNet, split: str) -> Path:
    """Where the frozen-backbone features of ``split`` are kept between runs (inside the dataset folder).

    The key covers everything the cached tensors depend on: the manifest, the
    backbone and its weights, the stages and input pipeline, labels and limit.
    """
    from sursmr.models.backbones import BACKBONES

    manifest = Path(config.data) / "manifest.jsonl"
    net = model.config
    # a randomly initialised backbone depends on the seed
    random_backbone = config.backbone_weights == "random" or (
        config.backbone_weights == "shipped" and BACKBONES.get(net.backbone).shipped_weights is None
    )
    key = json.dumps(
        {
            **_model_key(model),
            "manifest": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
            "backbone_weights": config.backbone_weights,
            "init": config.init,
            "labels": config.labels,
            "limit": config.limit,
            "split": split,
            "seed": config.seed if random_backbone and not config.init else None,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(config.data) / ".feature-cache" / f"{split}-{digest}.pt"


def save_torch(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` written atomically (a killed run never leaves half a file)."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_splits(
    config: TrainConfig,
    model: SurSmrNet,
    device: torch.device,
    *,
    say: Callable[[str], None],
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, SplitData]:
    """The train and val splits of ``config.data``, from the feature cache when it holds them (frozen path)."""
    frozen = config.freeze_backbone
    splits = {}
    for split in SPLITS:
        dataset = SurSmrDataset(config.data, split, label_kind=config.labels)
        say(f"{split}: {len(dataset)} samples; preparing {'cached features' if frozen else 'image pairs'}")

        def features_progress(done: int, total: int, name: str = split) -> None:
            if progress is not None:
                progress(f"features {name}", done, total)

        cache = feature_cache_path(config, model, split) if frozen else None
        if cache is not None and cache.is_file():
            splits[split] = SplitData(**torch.load(cache, weights_only=False))
            say(f"{split}: cached features from {cache}")
            continue
        splits[split] = prepare_split(
            dataset,
            model,
            frozen=frozen,
            device=device,
            limit=config.limit,
            progress=features_progress,
            item_cache=item_cache_dir(config.data) if frozen else None,
        )
        if cache is not None:
            save_torch(cache, dataclasses.asdict(splits[split]))
    return splits


__all__ = [
    "SplitData",
    "feature_cache_path",
    "feature_signature",
    "item_cache_dir",
    "load_splits",
    "prepare_split",
    "save_torch",
    "with_identity",
]
