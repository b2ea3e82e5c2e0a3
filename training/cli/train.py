"""``sursmr-train train``: train (or resume) the predictor; its options are the fields of :class:`TrainConfig`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from sursmr.cli.app import emit_rows, json_option, progress, quiet_option
from sursmr_core.outputs import atomic_write_bytes
from training.cli import main
from training.cli._options import config_options
from training.train.config import TrainConfig


@main.command()
@config_options(TrainConfig)
@quiet_option
@json_option
def train(quiet: bool, as_json: bool, **settings: Any) -> None:
    """Train (or resume) the SUR/SMR predictor on a built dataset (L1 loss, Adam, flips).

    A resumed run (same --out, same options, more --epochs or after a crash)
    ends with the same weights and metrics as an uninterrupted one.

    \b
    Examples:
      sursmr-train train --data data/default --out runs/head --epochs 40
      sursmr-train train --data data/default --out runs/pre --stage pretrain --full --device cuda
      sursmr-train train --data data/default --out runs/fine --init runs/pre --full --device cuda
    """
    from training.train import train as run_training

    config = TrainConfig(**settings)
    out_dir = Path(config.out)
    bar = progress(desc="train", quiet=quiet)

    phase: dict[str, Any] = {"desc": None, "total": None}

    def step(desc: str, done: int, total: int) -> None:
        # a disabled (quiet, non-tty) bar keeps no description: track the phase here
        if (phase["desc"], phase["total"]) != (desc, total):
            phase.update(desc=desc, total=total)
            bar.set_description(desc)
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    out_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["sursmr-train", *sys.argv[1:]]) if sys.argv[0].endswith("sursmr-train") else None
    if command:
        # a resumed run appends: the file lists every command that shaped the weights, in order
        history = out_dir / "command.txt"
        previous = history.read_text(encoding="utf-8") if history.is_file() else ""
        atomic_write_bytes(history, (previous + command + "\n").encode())
    try:
        result = run_training(config, log=lambda message: bar.write(message, file=sys.stderr), progress=step)
    finally:
        bar.close()
    summary = {
        "run": str(result.run),
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 1),
        **{f"val_{k}": v for k, v in result.val["overall"].items()},
    }
    emit_rows([summary], list(summary), as_json)
