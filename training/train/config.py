"""The settings of a training run (:class:`TrainConfig`), declared once.

Each field carries its own help text and valid range in its metadata
(:func:`setting`); :meth:`TrainConfig.__post_init__` checks the ranges and
``sursmr-train train`` builds its options from the same fields, so a default,
a range or a help text is written in one place. This module imports no torch:
the command line reads it at start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sursmr_core.errors import InputError

Stage = Literal["pretrain", "finetune"]
LabelKind = Literal["eq3", "jnd"]

DEFAULT_LABELS: dict[str, LabelKind] = {"pretrain": "eq3", "finetune": "jnd"}


def setting(
    help: str,  # noqa: A002 - the name click uses
    *,
    flag: str | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    negated: bool = False,
    directory: bool = False,
    metavar: str | None = None,
) -> dict[str, Any]:
    """Metadata of one :class:`TrainConfig` field.

    ``help``: one sentence for ``--help``. ``flag``: the option's spelling when
    it is not ``--field-name``. ``low`` / ``high``: the valid range (open ends
    with ``low_open`` / ``high_open``), checked here and on the command line.
    ``negated``: the flag sets the field to False (``--full`` turns
    ``freeze_backbone`` off). ``directory``: the value is a folder path.
    """
    return {
        "help": help,
        "flag": flag,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "negated": negated,
        "directory": directory,
        "metavar": metavar,
    }


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; written to ``config.json``.

    Each field's meaning, range and command-line flag are in its metadata
    (``dataclasses.fields(TrainConfig)``, shown by ``sursmr-train train --help``).
    Stages: ``pretrain`` uses the simple head on the paper's Eq. 3 pseudo-SUR;
    ``finetune`` the mixer head on the JND-calibrated SUR proxy. Runs are
    repeatable on one machine for a given ``seed``, resumed or not.
    """

    data: str = field(metadata=setting("Dataset built by `sursmr-train build`.", directory=True))
    out: str = field(metadata=setting("Run directory (resumed when it exists).", directory=True))
    model: str = field(default="sursmr_effnet_lite0", metadata=setting("Network config (`sursmr models`)."))
    stage: Stage = field(
        default="finetune",
        metadata=setting("pretrain: simple head on Eq. 3 pseudo-SUR; finetune: mixer head on the JND SUR proxy."),
    )
    label_kind: LabelKind | None = field(
        default=None, metadata=setting("SUR label [default: eq3 for pretrain, jnd for finetune].", flag="--labels")
    )
    init: str | None = field(default=None, metadata=setting("Run directory or .pt whose backbone starts this run."))
    backbone_weights: str = field(
        default="shipped",
        metadata=setting(
            "'shipped' (the offline ImageNet weights when the backbone has them, random otherwise), "
            "'random', or a timm checkpoint file; ignored with --init."
        ),
    )
    freeze_backbone: bool = field(
        default=True,
        metadata=setting(
            "Train the backbone too (GPU path); default caches frozen features.", flag="--full", negated=True
        ),
    )
    epochs: int = field(default=30, metadata=setting("Passes over the train split.", low=1))
    batch_size: int = field(default=32, metadata=setting("Samples (tiles) per optimiser step.", low=1))
    lr: float = field(default=1e-4, metadata=setting("Adam learning rate (paper: 1e-4).", low=0, low_open=True))
    alpha: float = field(default=0.5, metadata=setting("Weight of the SUR L1 term (paper Eq. 4: 0.5).", low=0))
    beta: float = field(default=0.5, metadata=setting("Weight of the SMR L1 term (paper Eq. 4: 0.5).", low=0))
    flip: bool = field(default=True, metadata=setting("Random horizontal and vertical flips (the paper's only one)."))
    seed: int = field(default=0, metadata=setting("Seeds Python, NumPy and torch; the shuffle and flips follow it."))
    device: str = field(default="auto", metadata=setting("auto, cpu or cuda."))
    amp: bool = field(default=True, metadata=setting("Mixed precision on CUDA."))
    limit: int | None = field(default=None, metadata=setting("Only the first N samples per split.", low=1))
    threads: int = field(default=0, metadata=setting("torch CPU threads (0: default).", low=0))
    identity_share: float = field(
        default=0.05,
        metadata=setting(
            "Extra image-vs-itself samples (SUR = SMR = 1), share of the train split "
            "(datasets hold only compressed versions: without them the net never sees a zero difference).",
            low=0,
        ),
    )
    ema_decay: float = field(
        default=0.0,
        metadata=setting(
            "Score and keep an exponential moving average of the weights with this decay per step (0: off).",
            flag="--ema",
            low=0,
            high=1,
            high_open=True,
        ),
    )
    weight_decay: float = field(
        default=0.0, metadata=setting("Decoupled weight decay (AdamW); 0 is the paper's Adam.", low=0)
    )
    model_overrides: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=setting(
            "Override a network config field, e.g. --set fuse_size=[14,14] (repeatable).",
            flag="--set",
            metavar="FIELD=JSON",
        ),
    )

    def __post_init__(self) -> None:
        if self.stage not in DEFAULT_LABELS:
            raise InputError(f"stage must be pretrain or finetune, got {self.stage!r}")
        if self.label_kind not in (None, "eq3", "jnd"):
            raise InputError(f"label_kind must be eq3 or jnd, got {self.label_kind!r}")
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None and not in_range(value, item.metadata):
                raise InputError(f"{item.name} must lie in {range_text(item.metadata)}, got {value!r}")
        if self.alpha + self.beta == 0:
            raise InputError("alpha and beta must not both be 0")

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


def in_range(value: Any, metadata: Mapping[str, Any]) -> bool:
    """Whether ``value`` lies in the range declared by a field's :func:`setting` (no range: always)."""
    low, high = metadata.get("low"), metadata.get("high")
    if low is not None and (value < low or (metadata["low_open"] and value == low)):
        return False
    return high is None or not (value > high or (metadata["high_open"] and value == high))


def range_text(metadata: Mapping[str, Any]) -> str:
    low, high = metadata.get("low"), metadata.get("high")
    left = "(-inf" if low is None else ("(" if metadata["low_open"] else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if metadata["high_open"] else "]")
    return f"{left}, {right}"


__all__ = ["DEFAULT_LABELS", "LabelKind", "Stage", "TrainConfig", "in_range", "range_text", "setting"]
