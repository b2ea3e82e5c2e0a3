"""Training the SUR/SMR predictor (paper §III, Eq. 4) on a built dataset.

Two paths share one loop:

* **frozen** (``freeze_backbone=True``, the CPU path): backbone features of
  every reference and candidate are computed once and cached as difference
  features F0 − Fq (fp16, in memory); only the head (DFRL, MHAAP, Mixer, MLP)
  trains. The paper's flips are applied to the cached difference maps, an
  approximation of flipping the input images (conv features are close to,
  but not exactly, flip-equivariant).
* **full** (``freeze_backbone=False``, the GPU path): end-to-end training on
  image pairs with random horizontal and vertical flips, mixed precision on
  CUDA.

Stages: ``pretrain`` uses the simple head on the paper's Eq. 3 pseudo-SUR
(``label_kind="eq3"``); ``finetune`` uses the mixer head on the absolute
JND-calibrated SUR proxy (``label_kind="jnd"``), optionally starting from a
pre-trained run's backbone. Both learn SMR from the machine-zoo proxy. The
loss is α·|ΔSUR| + β·|ΔSMR| with α = β = 0.5 (Eq. 4); samples whose SMR is
undefined (no machine could judge) contribute only to the SUR term.

A run directory holds ``config.json``, ``metrics.jsonl`` (one line per
epoch: train loss, validation MAE per codec), ``checkpoint.pt`` (resume),
``best.pt`` (lowest validation MAE), and ``loss.png`` / ``pred_vs_label.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from sursmr.models import create_model
from sursmr.models.inputs import aggregate_tiles, tensor_to_input
from sursmr.models.network import SurSmrNet
from sursmr.predictor import resolve_device
from sursmr_core.errors import InputError, ModelError
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.torch_dataset import SurSmrDataset

Stage = Literal["pretrain", "finetune"]
LabelKind = Literal["eq3", "jnd"]

DEFAULT_LABELS: dict[str, LabelKind] = {"pretrain": "eq3", "finetune": "jnd"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; written to ``config.json``.

    Attributes:
        data: directory of a dataset built by ``sursmr-train build``.
        out: run directory (created; an existing one is resumed with ``resume``).
        model: registered network configuration (``sursmr models``).
        stage: ``pretrain`` or ``finetune`` (see the module docstring).
        label_kind: SUR label to learn; default ``eq3`` for pretrain, ``jnd`` for finetune.
        init: a run directory or ``.pt`` checkpoint whose backbone starts this run.
        backbone_weights: ``shipped`` (the offline ImageNet weights when the backbone
            has them, e.g. efficientnet_lite0; random otherwise), ``random``, or a
            timm checkpoint file. Ignored when ``init`` is given.
        freeze_backbone: the CPU path (cached features, head-only training).
        epochs, batch_size, lr: Adam at ``lr`` (paper: 1e-4), batches of samples.
        alpha, beta: weights of the SUR and SMR L1 terms (paper: 0.5, 0.5).
        flip: random horizontal and vertical flips (the paper's only augmentation).
        seed: seeds Python, NumPy and torch; runs are repeatable on one machine.
        device: ``auto``, ``cpu`` or ``cuda``; mixed precision is used on CUDA when ``amp``.
        limit: use only the first N samples of each split (smoke tests).
        threads: torch CPU threads (0: torch's default).
        ema_decay: when > 0, validation, ``best.pt`` and the exported weights use an
            exponential moving average of the weights (decay per step), which
            steadies a head trained on few source photos; 0 turns it off.
        weight_decay: decoupled weight decay (AdamW); 0 is the paper's plain Adam.
        identity_share: extra training samples, as a share of the train split, that pair an
            image with itself, labelled SUR = SMR = 1 by definition (datasets hold only
            compressed versions, so without them the network never sees a zero difference).
    """

    data: str
    out: str
    model: str = "sursmr_effnet_lite0"
    stage: Stage = "finetune"
    label_kind: LabelKind | None = None
    init: str | None = None
    backbone_weights: str = "shipped"
    freeze_backbone: bool = True
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    alpha: float = 0.5
    beta: float = 0.5
    flip: bool = True
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    limit: int | None = None
    threads: int = 0
    identity_share: float = 0.05
    ema_decay: float = 0.0
    weight_decay: float = 0.0
    model_overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in DEFAULT_LABELS:
            raise InputError(f"stage must be pretrain or finetune, got {self.stage!r}")
        if self.label_kind not in (None, "eq3", "jnd"):
            raise InputError(f"label_kind must be eq3 or jnd, got {self.label_kind!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError("epochs and batch_size must be ≥ 1 and lr > 0")
        if min(self.alpha, self.beta) < 0 or self.alpha + self.beta == 0:
            raise InputError("alpha and beta must be ≥ 0 and not both 0")
        if not 0 <= self.ema_decay < 1 or self.weight_decay < 0:
            raise InputError("ema_decay must lie in [0, 1) and weight_decay must be ≥ 0")

    @property
    def labels(self) -> LabelKind:
        return self.label_kind or DEFAULT_LABELS[self.stage]

    @property
    def head(self) -> str:
        return "pretrain" if self.stage == "pretrain" else "mixer"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model_overrides"] = dict(self.model_overrides)
        return data


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def masked_l1(pred: Tensor, sur: Tensor, smr: Tensor, alpha: float, beta: float) -> Tensor:
    """Eq. 4: α·mean|ΔSUR| + β·mean|ΔSMR| over samples whose SMR is defined (not NaN)."""
    sur_term = (pred[:, 0] - sur).abs().mean()
    known = ~torch.isnan(smr)
    smr_term = (pred[known, 1] - smr[known]).abs().mean() if bool(known.any()) else pred.new_zeros(())
    return alpha * sur_term + beta * smr_term


# --- samples as network input ---------------------------------------------------


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
) -> SplitData:
    """Turn a dataset split into :class:`SplitData` (backbone features cached when ``frozen``)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise InputError(f"split {dataset!r} of {dataset.root} has no labelled samples")
    config = model.config
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
    if data.pairs is not None:
        ref = data.pairs[0][donors]
        extra.pairs = (torch.cat([data.pairs[0], ref]), torch.cat([data.pairs[1], ref]))
    return extra


def _flip(tensors: Sequence[Tensor], generator: torch.Generator) -> list[Tensor]:
    """The same random horizontal and vertical flip for every tensor, per sample."""
    batch = tensors[0].shape[0]
    horizontal = torch.rand(batch, generator=generator) < 0.5
    vertical = torch.rand(batch, generator=generator) < 0.5
    out = []
    for t in tensors:
        t = t.clone()
        t[horizontal] = t[horizontal].flip(-1)
        t[vertical] = t[vertical].flip(-2)
        out.append(t)
    return out


def forward_tiles(
    model: SurSmrNet, data: SplitData, tiles: Tensor, device: torch.device, flip: torch.Generator | None
) -> Tensor:
    """Network outputs (len(tiles), 2) for the given tile indices."""
    if data.diffs is not None:
        diffs = [d[tiles] for d in data.diffs]
        if flip is not None:
            diffs = _flip(diffs, flip)
        out: Tensor = model.head([d.to(device).float() for d in diffs])
        return out
    if data.pairs is None:
        raise ModelError("split data holds neither cached features nor image pairs")
    ref, dist = data.pairs[0][tiles], data.pairs[1][tiles]
    if flip is not None:
        ref, dist = _flip([ref, dist], flip)
    return model(ref.to(device).float() / 255.0, dist.to(device).float() / 255.0)  # type: ignore[no-any-return]


def predict_split(model: SurSmrNet, data: SplitData, device: torch.device, batch_size: int = 64) -> Tensor:
    """(N, 2) predictions per sample (tiles aggregated with the model's rule)."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, data.tiles, batch_size):
            tiles = torch.arange(start, min(start + batch_size, data.tiles))
            outputs.append(forward_tiles(model, data, tiles, device, None).float().cpu())
    per_tile = torch.cat(outputs)
    if data.tiles == len(data.meta):
        return per_tile
    result = torch.empty(len(data.meta), 2)
    for sample in range(len(data.meta)):
        result[sample] = aggregate_tiles(per_tile[data.owner == sample], model.config.patch_aggregate)
    return result


def mae_report(pred: Tensor, data: SplitData) -> dict[str, Any]:
    """MAE of SUR and SMR, overall and per codec (SMR over samples where it is defined)."""

    def one(mask: Tensor) -> dict[str, Any]:
        sur_err = (pred[mask, 0] - data.sur[mask]).abs()
        smr_mask = mask & ~torch.isnan(data.smr)
        smr_err = (pred[smr_mask, 1] - data.smr[smr_mask]).abs()
        return {
            "samples": int(mask.sum()),
            "mae_sur": float(sur_err.mean()) if sur_err.numel() else None,
            "mae_smr": float(smr_err.mean()) if smr_err.numel() else None,
        }

    codecs = np.array([m["codec"] for m in data.meta])
    report = {"overall": one(torch.ones(len(data.meta), dtype=torch.bool))}
    for codec in sorted(set(codecs)):
        report[codec] = one(torch.from_numpy(codecs == codec))
    return report


def _score(report: Mapping[str, Any]) -> float:
    overall = report["overall"]
    values = [v for v in (overall["mae_sur"], overall["mae_smr"]) if v is not None]
    return float(np.mean(values)) if values else math.inf


# --- run directory ------------------------------------------------------------------


def _checkpoint(
    model: SurSmrNet, optimizer: torch.optim.Optimizer, epoch: int, best: float, ema: SurSmrNet | None = None
) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "config": model.config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "best": best,
        "torch_rng": torch.get_rng_state(),
    }


def _save(path: Path, payload: Mapping[str, Any]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A run's ``best.pt`` / ``checkpoint.pt`` (or a run directory, meaning its ``best.pt``)."""
    target = Path(path)
    if target.is_dir():
        target = target / "best.pt"
    if not target.is_file():
        raise ModelError(f"{target}: no checkpoint there; train one with `sursmr-train train`")
    payload: dict[str, Any] = torch.load(target, map_location="cpu", weights_only=False)
    return payload


def model_from_checkpoint(path: str | Path) -> SurSmrNet:
    """Rebuild the network saved in a checkpoint, with its weights."""
    from sursmr.models.config import NetConfig

    payload = load_checkpoint(path)
    model = SurSmrNet(NetConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["model"])
    return model


def _plot(run: Path, history: list[dict[str, Any]], pred: Tensor, data: SplitData) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss (Eq. 4)")
    ax.plot(epochs, [h["val"]["overall"]["mae_sur"] for h in history], label="val MAE SUR")
    smr_curve = [h["val"]["overall"]["mae_smr"] for h in history]
    if all(v is not None for v in smr_curve):
        ax.plot(epochs, smr_curve, label="val MAE SMR")
    ax.set_xlabel("epoch")
    ax.legend()
    ax.set_title("training (proxy labels)")
    fig.tight_layout()
    fig.savefig(run / "loss.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, column, label, truth in ((axes[0], 0, "SUR", data.sur), (axes[1], 1, "SMR", data.smr)):
        known = ~torch.isnan(truth)
        ax.scatter(truth[known].numpy(), pred[known, column].numpy(), s=6, alpha=0.5)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=1)
        ax.set_xlabel(f"{label} proxy label")
        ax.set_ylabel(f"predicted {label}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    fig.suptitle("validation: predicted vs proxy label")
    fig.tight_layout()
    fig.savefig(run / "pred_vs_label.png", dpi=100)
    plt.close(fig)


def feature_cache_path(config: TrainConfig, model: SurSmrNet, split: str) -> Path:
    """Where the frozen-backbone features of ``split`` are kept between runs (inside the dataset folder).

    The key covers everything the cached tensors depend on: the manifest, the
    backbone and its weights, the stages and input pipeline, labels and limit.
    """
    import hashlib

    from sursmr.models.backbones import BACKBONES

    manifest = Path(config.data) / "manifest.jsonl"
    net = model.config
    # a randomly initialised backbone depends on the seed
    random_backbone = config.backbone_weights == "random" or (
        config.backbone_weights == "shipped" and BACKBONES.get(net.backbone).shipped_weights is None
    )
    key = json.dumps(
        {
            "manifest": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
            "backbone": net.backbone,
            "backbone_weights": config.backbone_weights,
            "init": config.init,
            "stages": list(net.stages),
            "input": [net.input_mode, net.input_size, list(net.mean), list(net.std)],
            "feature_norm": net.feature_norm,
            "labels": config.labels,
            "limit": config.limit,
            "split": split,
            "seed": config.seed if random_backbone and not config.init else None,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(config.data) / ".feature-cache" / f"{split}-{digest}.pt"


class _EmaWeights:
    """An exponential moving average of a model's floating-point weights and buffers."""

    def __init__(self, model: SurSmrNet, decay: float) -> None:
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: SurSmrNet) -> None:
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if average.dtype.is_floating_point:
                average.lerp_(current.detach(), 1.0 - self.decay)
            else:
                average.copy_(current)


@dataclass
class TrainResult:
    run: Path
    best_epoch: int
    val: dict[str, Any]
    seconds: float


def build_model(config: TrainConfig) -> SurSmrNet:
    """The network of a run: the registered config with the stage's head, backbone from ``init`` if given."""
    from sursmr.models.backbones import BACKBONES
    from sursmr.models.registry import get_config

    overrides = {"head": config.head, **dict(config.model_overrides)}
    spec = BACKBONES.get(get_config(config.model, **overrides).backbone)
    if config.backbone_weights == "shipped":
        model = create_model(config.model, pretrained_backbone=spec.shipped_weights is not None, **overrides)
    elif config.backbone_weights == "random":
        model = create_model(config.model, **overrides)
    else:
        model = create_model(config.model, backbone_weights=config.backbone_weights, **overrides)
    if config.init:
        source = model_from_checkpoint(config.init)
        from sursmr.models.network import transfer_backbone

        transfer_backbone(source, model)
    return model


def train(
    config: TrainConfig,
    *,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Run (or resume) one training run; returns the best validation MAE and where it lives."""
    say = log or (lambda _message: None)
    started = time.perf_counter()
    run = Path(config.out)
    run.mkdir(parents=True, exist_ok=True)
    config_path = run / "config.json"
    if config_path.exists() and resume:
        previous = json.loads(config_path.read_text())
        # more epochs is a legitimate resume; anything else would mix two experiments
        current = json.loads(json.dumps(config.to_dict()))
        if {k: v for k, v in previous.items() if k != "epochs"} != {k: v for k, v in current.items() if k != "epochs"}:
            raise InputError(f"{run} holds a run with a different config; choose another --out or delete it")
    atomic_write_bytes(config_path, json.dumps(config.to_dict(), indent=2).encode())
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    model = build_model(config).to(device)
    frozen = config.freeze_backbone
    if frozen:
        for parameter in model.backbone.parameters():
            parameter.requires_grad_(False)

    splits = {}
    for split in ("train", "val"):
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
            dataset, model, frozen=frozen, device=device, limit=config.limit, progress=features_progress
        )
        if cache is not None:
            _save(cache, dataclasses.asdict(splits[split]))
    train_data, val_data = with_identity(splits["train"], config.identity_share), splits["val"]

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer = (
        torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        if config.weight_decay
        else torch.optim.Adam(trainable, lr=config.lr)
    )
    ema = _EmaWeights(model, config.ema_decay) if config.ema_decay else None
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best, best_epoch = 0, math.inf, -1
    history: list[dict[str, Any]] = []
    checkpoint_path = run / "checkpoint.pt"
    metrics_path = run / "metrics.jsonl"
    if resume and checkpoint_path.exists():
        payload = load_checkpoint(checkpoint_path)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if ema is not None and payload.get("ema") is not None:
            ema.model.load_state_dict(payload["ema"])
        torch.set_rng_state(payload["torch_rng"])
        start_epoch, best = int(payload["epoch"]) + 1, float(payload["best"])
        history = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        history = history[:start_epoch]
        best_epoch = min(history, key=lambda h: h["score"])["epoch"] if history else -1
        say(f"resumed at epoch {start_epoch}")
    generator = torch.Generator().manual_seed(config.seed)
    generator.manual_seed(config.seed + start_epoch)

    for epoch in range(start_epoch, config.epochs):
        model.train()
        if frozen:
            model.backbone.eval()  # frozen BatchNorm statistics stay the ImageNet ones
        order = torch.randperm(train_data.tiles, generator=generator)
        losses = []
        batches = range(0, train_data.tiles, config.batch_size)
        for step, start in enumerate(batches):
            tiles = order[start : start + config.batch_size]
            owners = train_data.owner[tiles]
            with torch.autocast(device.type, enabled=use_amp):
                pred = forward_tiles(model, train_data, tiles, device, generator if config.flip else None)
            loss = masked_l1(
                pred.float(),
                train_data.sur[owners].to(device),
                train_data.smr[owners].to(device),
                config.alpha,
                config.beta,
            )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(f"epoch {epoch + 1}/{config.epochs}", step + 1, len(batches))
        scored = model if ema is None else ema.model
        val_pred = predict_split(scored, val_data, device)
        report = mae_report(val_pred, val_data)
        score = _score(report)
        entry = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val": report, "score": score}
        history.append(entry)
        with metrics_path.open("a" if epoch else "w", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if score < best:
            best, best_epoch = score, epoch
            # best.pt holds the weights that were scored (the average when ema_decay > 0)
            _save(run / "best.pt", _checkpoint(scored, optimizer, epoch, best))
        _save(checkpoint_path, _checkpoint(model, optimizer, epoch, best, None if ema is None else ema.model))
        overall = report["overall"]
        say(
            f"epoch {epoch + 1}: loss {entry['train_loss']:.4f}  val MAE SUR {overall['mae_sur']:.4f}  "
            f"SMR {overall['mae_smr'] if overall['mae_smr'] is None else round(overall['mae_smr'], 4)}"
        )

    best_model = model_from_checkpoint(run / "best.pt").to(device)
    val_pred = predict_split(best_model, val_data, device)
    report = mae_report(val_pred, val_data)
    _plot(run, history, val_pred, val_data)
    return TrainResult(run, best_epoch, report, time.perf_counter() - started)


__all__ = [
    "SplitData",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "load_checkpoint",
    "mae_report",
    "masked_l1",
    "model_from_checkpoint",
    "predict_split",
    "prepare_split",
    "train",
]
