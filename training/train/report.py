"""What a run reports: validation MAE per codec, ``metrics.jsonl`` and the two plots.

SMR labels are missing (NaN) where too few machines could judge a crop; the
SMR MAE is taken over the labelled samples only and ``smr_samples`` says how
many those are (SUR is defined for every sample).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sursmr_core.outputs import atomic_write_bytes
from training.train.data import SplitData


def mae_report(pred: Tensor, data: SplitData) -> dict[str, Any]:
    """MAE of SUR and SMR, overall and per codec (SMR over the ``smr_samples`` where it is defined)."""

    def one(mask: Tensor) -> dict[str, Any]:
        sur_err = (pred[mask, 0] - data.sur[mask]).abs()
        smr_mask = mask & ~torch.isnan(data.smr)
        smr_err = (pred[smr_mask, 1] - data.smr[smr_mask]).abs()
        return {
            "samples": int(mask.sum()),
            "smr_samples": int(smr_mask.sum()),
            "mae_sur": float(sur_err.mean()) if sur_err.numel() else None,
            "mae_smr": float(smr_err.mean()) if smr_err.numel() else None,
        }

    codecs = np.array([m["codec"] for m in data.meta])
    report = {"overall": one(torch.ones(len(data.meta), dtype=torch.bool))}
    for codec in sorted(set(codecs)):
        report[codec] = one(torch.from_numpy(codecs == codec))
    return report


def score(report: Mapping[str, Any]) -> float:
    """The number ``best.pt`` minimises: the mean of the overall SUR and SMR MAE (those defined)."""
    overall = report["overall"]
    values = [v for v in (overall["mae_sur"], overall["mae_smr"]) if v is not None]
    return float(np.mean(values)) if values else math.inf


def epoch_line(entry: Mapping[str, Any]) -> str:
    """One line of the log on stderr for an epoch of ``metrics.jsonl``."""
    overall = entry["val"]["overall"]
    smr = overall["mae_smr"]
    return (
        f"epoch {entry['epoch'] + 1}: loss {entry['train_loss']:.4f}  val MAE SUR {overall['mae_sur']:.4f}  "
        f"SMR {smr if smr is None else round(smr, 4)} ({overall['smr_samples']} labelled)"
    )


def append_metrics(path: Path, entry: Mapping[str, Any]) -> None:
    """Add one epoch to ``metrics.jsonl`` (called after the epoch's checkpoint is saved)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def write_metrics(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` from the epochs a checkpoint holds (drops lines of epochs it does not)."""
    atomic_write_bytes(path, "".join(json.dumps(entry) + "\n" for entry in history).encode())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot(run: Path, history: list[dict[str, Any]], pred: Tensor, data: SplitData) -> None:
    """``loss.png`` (train loss and validation MAE per epoch) and ``pred_vs_label.png``."""
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


__all__ = ["append_metrics", "epoch_line", "mae_report", "plot", "read_metrics", "score", "write_metrics"]
