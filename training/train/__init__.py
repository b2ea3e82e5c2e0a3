"""Training the SUR/SMR predictor (paper §III, Eq. 4) on a built dataset.

Modules, in the order a run uses them:

* :mod:`~training.train.config`: :class:`TrainConfig`, every setting with its
  help and range (the command line is derived from it; imports no torch);
* :mod:`~training.train.data`: a split as tensors, identity samples, the
  frozen-backbone feature cache;
* :mod:`~training.train.checkpoint`: the run directory, ``checkpoint.pt``
  (exact resume) and ``best.pt``;
* :mod:`~training.train.loop`: the loss, one epoch, validation, :func:`train`;
* :mod:`~training.train.report`: validation MAE, ``metrics.jsonl``, plots.

Two paths share one loop: **frozen** (``freeze_backbone=True``, the CPU
path: cached difference features, head-only training) and **full** (the GPU
path: end-to-end on image pairs). Stages: ``pretrain`` (simple head, Eq. 3
pseudo-SUR) and ``finetune`` (mixer head, JND-calibrated SUR proxy). Both
learn SMR from the machine-zoo proxy.

A run directory holds ``config.json``, ``metrics.jsonl`` (one line per
epoch: train loss, validation MAE per codec), ``checkpoint.pt`` (resume),
``best.pt`` (lowest validation MAE), and ``loss.png`` / ``pred_vs_label.png``.
A run resumed at any epoch ends with the same weights and metrics as one that
was never interrupted.

The names below are imported on first use, so ``from training.train import
TrainConfig`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from training.train.config import DEFAULT_LABELS, LabelKind, Stage, TrainConfig

if TYPE_CHECKING:
    from training.train.checkpoint import load_checkpoint, model_from_checkpoint
    from training.train.data import SplitData, feature_cache_path, prepare_split, with_identity
    from training.train.loop import TrainResult, build_model, masked_l1, predict_split, train
    from training.train.report import mae_report

_LAZY = {
    "load_checkpoint": "checkpoint",
    "model_from_checkpoint": "checkpoint",
    "SplitData": "data",
    "feature_cache_path": "data",
    "prepare_split": "data",
    "with_identity": "data",
    "TrainResult": "loop",
    "build_model": "loop",
    "masked_l1": "loop",
    "predict_split": "loop",
    "train": "loop",
    "mae_report": "report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_LABELS",
    "LabelKind",
    "SplitData",
    "Stage",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "feature_cache_path",
    "load_checkpoint",
    "mae_report",
    "masked_l1",
    "model_from_checkpoint",
    "predict_split",
    "prepare_split",
    "train",
    "with_identity",
]
