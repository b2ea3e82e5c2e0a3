"""The training loop (paper §III, Eq. 4): one epoch, validation, and :func:`train`, which runs or resumes a run.

The loss is α·|ΔSUR| + β·|ΔSMR| with α = β = 0.5 (Eq. 4); samples whose SMR
proxy is missing (NaN: too few machines could judge the crop) contribute only
to the SUR term. The paper's flips are applied to the cached difference maps
in the frozen path, an approximation of flipping the input images (conv
features are close to, but not exactly, flip-equivariant), and to the image
pairs in the full path, which trains end to end with mixed precision on CUDA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils.model_ema import ModelEmaV3
from torch import Tensor

from sursmr.models import create_model
from sursmr.models.inputs import aggregate_tiles
from sursmr.models.network import SurSmrNet
from sursmr.predictor import resolve_device
from sursmr_core.errors import ModelError
from training.train import report
from training.train.checkpoint import (
    TrainState,
    load_checkpoint,
    model_from_checkpoint,
    open_run,
    save_best,
    save_checkpoint,
    seed_everything,
)
from training.train.config import TrainConfig
from training.train.data import SplitData, load_splits, with_identity

Progress = Callable[[str, int, int], None]


def masked_l1(pred: Tensor, sur: Tensor, smr: Tensor, alpha: float, beta: float) -> Tensor:
    """Eq. 4: α·mean|ΔSUR| + β·mean|ΔSMR|, the SMR term over samples whose SMR is defined (not NaN)."""
    sur_term = (pred[:, 0] - sur).abs().mean()
    known = ~torch.isnan(smr)
    smr_term = (pred[known, 1] - smr[known]).abs().mean() if bool(known.any()) else pred.new_zeros(())
    return alpha * sur_term + beta * smr_term


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
    if data.pooled is not None:  # stats head: flips are not applied (its statistics are nearly flip-invariant)
        pooled_out: Tensor = model.head.forward_pooled(data.pooled[tiles].to(device).float())
        return pooled_out
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


def build_model(config: TrainConfig) -> SurSmrNet:
    """The network of a run: the registered config with the stage's head, backbone from ``init`` if given."""
    from sursmr.models.backbones import BACKBONES
    from sursmr.models.network import transfer_backbone
    from sursmr.models.registry import get_config

    # a config whose head is ``stats`` keeps it in both stages (it has no pre-training network)
    head = "stats" if get_config(config.model).head == "stats" else config.head
    overrides = {"head": head, **dict(config.model_overrides)}
    spec = BACKBONES.get(get_config(config.model, **overrides).backbone)
    if config.backbone_weights == "shipped":
        model = create_model(config.model, pretrained_backbone=spec.shipped_weights is not None, **overrides)
    elif config.backbone_weights == "random":
        model = create_model(config.model, **overrides)
    else:
        model = create_model(config.model, backbone_weights=config.backbone_weights, **overrides)
    if config.init:
        transfer_backbone(model_from_checkpoint(config.init), model)
    return model


def start_state(config: TrainConfig, model: SurSmrNet, device: torch.device) -> TrainState:
    """Optimiser, weight average, AMP scaler and shuffle generator of a new run."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer = (
        torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        if config.weight_decay
        else torch.optim.Adam(trainable, lr=config.lr)
    )
    # a fixed decay from the first step: the average starts at the initial weights
    ema = ModelEmaV3(model, decay=config.ema_decay) if config.ema_decay else None
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
    return TrainState(model, optimizer, scaler, torch.Generator().manual_seed(config.seed), ema)


def train_epoch(
    config: TrainConfig, state: TrainState, data: SplitData, device: torch.device, progress: Progress | None
) -> float:
    """One pass over the shuffled train tiles; the mean loss (Eq. 4)."""
    model = state.model
    model.train()
    if config.freeze_backbone:
        model.backbone.eval()  # frozen BatchNorm statistics stay the ImageNet ones
    order = torch.randperm(data.tiles, generator=state.generator)
    losses = []
    batches = range(0, data.tiles, config.batch_size)
    for step, start in enumerate(batches):
        tiles = order[start : start + config.batch_size]
        owners = data.owner[tiles]
        sur, smr = data.sur[owners].to(device), data.smr[owners].to(device)
        if data.pooled is not None:  # stats head: every ensemble member learns from its own output
            members = model.head.member_outputs(data.pooled[tiles].to(device).float())
            loss = torch.stack([masked_l1(m, sur, smr, config.alpha, config.beta) for m in members]).mean()
        else:
            with torch.autocast(device.type, enabled=state.scaler.is_enabled()):
                pred = forward_tiles(model, data, tiles, device, state.generator if config.flip else None)
            loss = masked_l1(pred.float(), sur, smr, config.alpha, config.beta)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if state.ema is not None:
            state.ema.update(model)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(f"epoch {state.epoch + 1}/{config.epochs}", step + 1, len(batches))
    return float(np.mean(losses))


def _split_head(model: SurSmrNet) -> bool:
    return bool(getattr(model.head, "split", False))


def save_target_bests(run: Path, state: TrainState, epoch: int) -> None:
    """A split stats head (separate SUR and SMR ensembles): keep the best epoch of each target apart.

    ``best_sur.pt`` / ``best_smr.pt`` hold the weights of the epoch with the
    lowest validation MAE of that target so far (ties keep the earlier one);
    the choice reads only the logged history, so a resumed run makes the same.
    """
    for target in ("sur", "smr"):
        values = [entry["val"]["overall"][f"mae_{target}"] for entry in state.history]
        if values[-1] is None or any(v is not None and v <= values[-1] for v in values[:-1]):
            continue
        save_best(run / f"best_{target}.pt", state, epoch)


def compose_target_bests(run: Path) -> None:
    """``best.pt`` = the SUR ensemble of ``best_sur.pt`` with the SMR ensemble of ``best_smr.pt``.

    The two ensembles share no parameters (the standardisation buffers are
    fixed before training), so each target keeps the weights of its own best
    validation epoch; SMR overfits its few, noisy labels within a few epochs
    while SUR keeps improving. Without a ``best_smr.pt`` (no SMR labels) the
    SUR epoch is used whole.
    """
    from training.train.data import save_torch

    sur_path, smr_path = run / "best_sur.pt", run / "best_smr.pt"
    if not sur_path.is_file():
        return
    payload = load_checkpoint(sur_path)
    epochs = {"sur": int(payload["epoch"]), "smr": int(payload["epoch"])}
    if smr_path.is_file():
        smr = load_checkpoint(smr_path)
        for key, value in smr["model"].items():
            if key.startswith("head.smr_members."):
                payload["model"][key] = value
        epochs["smr"] = int(smr["epoch"])
    payload["target_epochs"] = epochs
    save_torch(run / "best.pt", payload)


@dataclass
class TrainResult:
    run: Path
    best_epoch: int
    val: dict[str, Any]
    seconds: float


def train(
    config: TrainConfig,
    *,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Run (or resume) one training run; returns the best validation MAE and where it lives."""
    say = log or (lambda _message: None)
    started = time.perf_counter()
    run = open_run(config, resume)
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    model = build_model(config).to(device)
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    splits = load_splits(config, model, device, say=say, progress=progress)
    train_data, val_data = with_identity(splits["train"], config.identity_share), splits["val"]
    if train_data.pooled is not None:  # a resumed run restores the same buffers from its checkpoint
        model.head.set_standardisation(train_data.pooled)
    state = start_state(config, model, device)
    checkpoint_path, metrics_path = run / "checkpoint.pt", run / "metrics.jsonl"
    if resume and checkpoint_path.exists():
        state.restore(load_checkpoint(checkpoint_path), config.seed)
        if not state.history:
            state.restore_history(report.read_metrics(metrics_path))
        say(f"resumed at epoch {state.epoch}")
    report.write_metrics(metrics_path, state.history)
    while state.epoch < config.epochs:
        epoch = state.epoch
        loss = train_epoch(config, state, train_data, device, progress)
        val = report.mae_report(predict_split(state.scored, val_data, device), val_data)
        score = report.score(val)
        entry = {"epoch": epoch, "train_loss": loss, "val": val, "score": score}
        state.history.append(entry)
        state.epoch = epoch + 1
        if score < state.best:
            state.best, state.best_epoch = score, epoch
            save_best(run / "best.pt", state, epoch)
        if _split_head(model):
            save_target_bests(run, state, epoch)
        save_checkpoint(checkpoint_path, state)
        report.append_metrics(metrics_path, entry)  # after the checkpoint: a crash never logs an epoch twice
        say(report.epoch_line(entry))

    if _split_head(model):
        compose_target_bests(run)
    best_model = model_from_checkpoint(run / "best.pt").to(device)
    val_pred = predict_split(best_model, val_data, device)
    report.plot(run, state.history, val_pred, val_data)
    return TrainResult(run, state.best_epoch, report.mae_report(val_pred, val_data), time.perf_counter() - started)


__all__ = ["TrainResult", "build_model", "forward_tiles", "masked_l1", "predict_split", "train", "train_epoch"]
