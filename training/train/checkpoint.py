"""A run directory's files and the state that makes a resumed run equal an uninterrupted one.

``checkpoint.pt`` holds, after each finished epoch, everything the next epoch
depends on: the weights, the optimiser, the weight average, the AMP scaler,
every random state (Python, NumPy, torch CPU and CUDA, and the generator of
the shuffle and flips) and the epochs' metrics. It is written before the
epoch's line is appended to ``metrics.jsonl``; a resumed run rewrites that
file from the checkpoint, so a crash at any point never duplicates an epoch.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils.model_ema import ModelEmaV3

from sursmr.models.network import SurSmrNet
from sursmr_core.errors import InputError, ModelError
from sursmr_core.outputs import atomic_write_bytes
from training.train.config import TrainConfig
from training.train.data import save_torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainState:
    """What changes from step to step of a run; ``epoch`` is the next epoch to train."""

    model: SurSmrNet
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the shuffle and the flips
    ema: ModelEmaV3 | None = None
    epoch: int = 0
    best: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def scored(self) -> SurSmrNet:
        """The weights that are validated and kept as ``best.pt``: the average when there is one."""
        return self.model if self.ema is None else self.ema.module

    def payload(self) -> dict[str, Any]:
        """``checkpoint.pt`` after epoch ``self.epoch - 1``."""
        return {
            **weights_payload(self.model, self.optimizer, self.epoch - 1, self.best),
            "ema": None if self.ema is None else self.ema.module.state_dict(),
            "best_epoch": self.best_epoch,
            "history": self.history,
            "scaler": self.scaler.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "shuffle": self.generator.get_state(),
            },
        }

    def restore(self, payload: dict[str, Any], seed: int) -> None:
        """Continue from a checkpoint written by :meth:`payload` (or by an older version of it)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.ema is not None and payload.get("ema") is not None:
            self.ema.module.load_state_dict(payload["ema"])
        if payload.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(payload["scaler"])
        self.epoch, self.best = int(payload["epoch"]) + 1, float(payload["best"])
        torch.set_rng_state(payload["torch_rng"])
        states = payload.get("rng")
        if states is None:  # checkpoints before resume was exact re-seeded the shuffle
            self.generator.manual_seed(seed + self.epoch)
        else:
            random.setstate(states["python"])
            np.random.set_state(states["numpy"])
            if states["cuda"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])
            self.generator.set_state(states["shuffle"])
        self.history = list(payload.get("history") or [])
        self.best_epoch = int(payload.get("best_epoch", -1))

    def restore_history(self, metrics: list[dict[str, Any]]) -> None:
        """Old checkpoints kept no history: take the first epochs of ``metrics.jsonl``, once each."""
        by_epoch = {int(entry["epoch"]): entry for entry in metrics}
        self.history = [by_epoch[e] for e in range(self.epoch) if e in by_epoch]
        self.best_epoch = min(self.history, key=lambda h: h["score"])["epoch"] if self.history else -1


def weights_payload(model: SurSmrNet, optimizer: torch.optim.Optimizer, epoch: int, best: float) -> dict[str, Any]:
    """The part of a checkpoint that ``best.pt`` also holds (``model`` and ``config`` rebuild the net)."""
    return {
        "model": model.state_dict(),
        "ema": None,
        "config": model.config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "best": best,
        "torch_rng": torch.get_rng_state(),
    }


def save_checkpoint(path: Path, state: TrainState) -> None:
    save_torch(path, state.payload())


def save_best(path: Path, state: TrainState, epoch: int) -> None:
    """``best.pt``: the weights that were scored (the average when ``ema_decay`` > 0)."""
    save_torch(path, weights_payload(state.scored, state.optimizer, epoch, state.best))


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


def open_run(config: TrainConfig, resume: bool) -> Path:
    """Create the run directory and write ``config.json``; refuse to resume a different experiment there."""
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
    return run


__all__ = [
    "TrainState",
    "load_checkpoint",
    "model_from_checkpoint",
    "open_run",
    "save_best",
    "save_checkpoint",
    "seed_everything",
    "weights_payload",
]
