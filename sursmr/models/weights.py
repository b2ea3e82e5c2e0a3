"""Weights files: ``<name>.safetensors`` plus a ``<name>.json`` model card beside it.

The card holds everything needed to rebuild and judge the network offline:
the full :class:`NetConfig` (so the registry may change without breaking old
files), the label sources and training recipe, and measured errors. Any
field except ``name`` and ``config`` may be null. Shipped weights live in
:data:`WEIGHTS_DIR` (``sursmr/weights/``) and are found by name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sursmr.models.backbones import BACKBONES
from sursmr.models.config import NetConfig
from sursmr_core.errors import InputError, ModelError, WeightsNotFoundError
from sursmr_core.outputs import atomic_write_bytes

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CARD_FORMAT = "sursmr-model-card/1"
HOW_TO_GET_WEIGHTS = (
    "train one with `sursmr-train train ...` or pass --model PATH (a .safetensors file with its .json card)"
)


@dataclass(frozen=True)
class ModelCard:
    """What a weights file is, how it was made and how well it did.

    Attributes:
        name: the weights' name (file stem).
        config: the network configuration the weights belong to.
        label_sources: where the training labels came from, e.g.
            ``{"sur": "proxy: IQA ensemble (Eq. 3) ...", "smr": "proxy: machine zoo ..."}``.
        training: the recipe (data, epochs, optimiser, backbone init, seed...).
        metrics: measured results, e.g. ``{"mae_sur": 0.05, "mae_smr": 0.04, "split": "test"}``.
        notes: free text (licences, caveats).
        weights_dtype: dtype the tensors are stored in (``float32`` or ``float16``).
        weights_sha256: digest of the ``.safetensors`` file, written by :func:`save_weights`.
    """

    name: str
    config: NetConfig
    label_sources: Mapping[str, Any] | None = None
    training: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] | None = None
    notes: str | None = None
    weights_dtype: str | None = None
    weights_sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready card; ``backbone`` and ``input_mode`` are repeated at top level for readers."""
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "architecture": self.config.name,
            "backbone": self.config.backbone,
            "input_mode": self.config.input_mode,
            "config": self.config.to_dict(),
            "label_sources": dict(self.label_sources) if self.label_sources is not None else None,
            "training": dict(self.training) if self.training is not None else None,
            "metrics": dict(self.metrics) if self.metrics is not None else None,
            "notes": self.notes,
            "weights_dtype": self.weights_dtype,
            "weights_sha256": self.weights_sha256,
            **dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "model card") -> ModelCard:
        if not isinstance(data, Mapping) or not isinstance(data.get("config"), Mapping):
            raise ModelError(f"{source}: not a sursmr model card (no 'config' object)")
        fmt = data.get("format", CARD_FORMAT)
        if fmt != CARD_FORMAT:
            raise ModelError(f"{source}: card format {fmt!r} is not {CARD_FORMAT!r}; upgrade sursmr")
        config = NetConfig.from_dict(data["config"])
        derived = {"format", "architecture", "backbone", "input_mode"}
        known = {"name", "config", "label_sources", "training", "metrics", "notes", "weights_dtype", "weights_sha256"}
        return cls(
            name=str(data.get("name") or config.name),
            config=config,
            label_sources=data.get("label_sources"),
            training=data.get("training"),
            metrics=data.get("metrics"),
            notes=data.get("notes"),
            weights_dtype=data.get("weights_dtype"),
            weights_sha256=data.get("weights_sha256"),
            extra={k: v for k, v in data.items() if k not in known | derived},
        )


def card_path(weights: Path) -> Path:
    """The card that belongs to a ``.safetensors`` file: same stem, ``.json``."""
    return weights.with_suffix(".json")


def resolve_weights(name_or_path: str | os.PathLike[str], weights_dir: Path | None = None) -> Path:
    """A name (file stem in ``weights_dir``, default :data:`WEIGHTS_DIR`) or a path → existing ``.safetensors``.

    Raises :class:`WeightsNotFoundError` saying how to get weights.
    """
    text = os.fspath(name_or_path)
    directory = weights_dir or WEIGHTS_DIR
    looks_like_path = text.endswith(".safetensors") or os.sep in text or (os.altsep or os.sep) in text
    path = Path(text) if looks_like_path else directory / f"{text}.safetensors"
    if not path.is_file():
        where = f"{path}" if looks_like_path else f"no weights named {text!r} in {directory}"
        raise WeightsNotFoundError(f"{where}: not found; {HOW_TO_GET_WEIGHTS}")
    if not card_path(path).is_file():
        raise WeightsNotFoundError(f"{path} has no model card {card_path(path).name} beside it; {HOW_TO_GET_WEIGHTS}")
    return path


def read_card(weights: Path) -> ModelCard:
    """The model card beside ``weights``."""
    path = card_path(weights)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model card ({exc})") from None
    try:
        card = ModelCard.from_dict(data, source=str(path))
        BACKBONES.get(card.config.backbone)
    except InputError as exc:  # a bad card is a broken model (exit 6), not bad user input
        raise ModelError(f"{path}: the model card does not describe a network this sursmr can build: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: malformed model card ({exc})") from None
    return card


def list_weights(weights_dir: Path | None = None) -> list[tuple[Path, ModelCard | None]]:
    """Every ``.safetensors`` in the directory with its card (``None`` when missing or unreadable)."""
    directory = weights_dir or WEIGHTS_DIR
    found: list[tuple[Path, ModelCard | None]] = []
    for path in sorted(directory.glob("*.safetensors")):
        try:
            found.append((path, read_card(path)))
        except ModelError:
            found.append((path, None))
    return found


def save_weights(module: nn.Module, card: ModelCard, path: str | os.PathLike[str], *, fp16: bool = False) -> ModelCard:
    """Write ``module``'s state dict as safetensors (optionally float16) and the card beside it.

    With ``fp16`` only the parameters are halved: buffers (BatchNorm statistics,
    input standardisation) are few and stay float32, since a float16 mean of
    about 18 is off by up to 0.008, a whole standard deviation of a feature
    whose spread is that small. Both files are written atomically; returns the
    card as written (dtype and digest filled in).
    """
    from safetensors.torch import save

    target = Path(path)
    if target.suffix != ".safetensors":
        raise ModelError(f"{target}: weights files must end in .safetensors")
    dtype = torch.float16 if fp16 else torch.float32
    parameters = {name for name, _ in module.named_parameters()}
    tensors = {
        key: (value.to(dtype if key in parameters else torch.float32) if value.is_floating_point() else value)
        .detach()
        .cpu()
        .contiguous()
        for key, value in module.state_dict().items()
    }
    blob = save(tensors, metadata={"format": CARD_FORMAT, "architecture": card.config.name})
    atomic_write_bytes(target, blob)
    written = ModelCard(
        name=card.name,
        config=card.config,
        label_sources=card.label_sources,
        training=card.training,
        metrics=card.metrics,
        notes=card.notes,
        weights_dtype="float16" if fp16 else "float32",
        weights_sha256=hashlib.sha256(blob).hexdigest(),
        extra=card.extra,
    )
    text = json.dumps(written.to_dict(), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(card_path(target), text.encode("utf-8"))
    return written


def load_state_into(module: nn.Module, weights: Path) -> None:
    """Load a ``.safetensors`` file into ``module`` (cast to its dtypes); any mismatch is a :class:`ModelError`."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelError(f"{weights}: cannot read weights ({exc})") from None
    target = module.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise ModelError(
            f"{weights}: does not fit its card's architecture "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelError(
                f"{weights}: tensor {key} holds NaN or infinite values; the weights are damaged (export them again)"
            )
        if value.shape != target[key].shape:
            raise ModelError(
                f"{weights}: does not fit its card's architecture: {key} has shape {tuple(value.shape)}, "
                f"the card's config needs {tuple(target[key].shape)}"
            )
    module.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()})
