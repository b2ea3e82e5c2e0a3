"""Deep full-reference metrics of the paper (LPIPS-VGG/Alex, DISTS, PieAPP), local weights only.

No weights ship with sursmr and nothing is downloaded: each metric reads its
weights from files the user names in environment variables, and is
unavailable (with the variables to set as its reason) until they point to
existing files. Files are read with ``torch.load(weights_only=True)``.

=============  ==================================================  ============================================
metric         variables                                           expected content
=============  ==================================================  ============================================
lpips_vgg      SURSMR_LPIPS_VGG_WEIGHTS, SURSMR_VGG16_WEIGHTS      LPIPS v0.1 linear heads (``lin0..lin4``
                                                                   ``.model.1.weight`` as in the LPIPS
                                                                   project's ``vgg.pth``, or a list of the 5
                                                                   tensors); torchvision VGG16 ImageNet state
                                                                   dict (full model or ``features`` only)
lpips_alex     SURSMR_LPIPS_ALEX_WEIGHTS, SURSMR_ALEXNET_WEIGHTS   the same for AlexNet (``alex.pth``)
dists          SURSMR_DISTS_WEIGHTS, SURSMR_VGG16_WEIGHTS          DISTS ``{"alpha", "beta"}`` tensors, each
                                                                   (1, 1475, 1, 1); the VGG16 state dict
pieapp         SURSMR_PIEAPP_WEIGHTS                               piq's ``PieAPPv0.1.pth`` state dict
=============  ==================================================  ============================================

The networks are piq's (``ContentLoss`` for LPIPS, ``DISTS``, ``PieAPP``)
with the weight loading replaced. All four are distances: lower is better.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import piq
import piq.perceptual
import piq.pieapp
import torch
import torchvision
from torch import nn

from sursmr_core.errors import ModelError, WeightsNotFoundError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS
from training.metrics.piq_metrics import to_tensor

VGG16_TAPS = ("3", "8", "15", "22", "29")  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of vgg16().features
VGG16_CHANNELS = (64, 128, 256, 512, 512)
ALEX_TAPS = ("1", "4", "7", "9", "11")  # the five ReLUs of alexnet().features
ALEX_CHANNELS = (64, 192, 384, 256, 256)


@dataclass(frozen=True)
class WeightsFile:
    """One user-given file: the environment variable naming it and what it must hold."""

    env: str
    content: str

    def path(self) -> Path | None:
        raw = os.environ.get(self.env)
        return Path(raw) if raw else None


VGG16_FILE = WeightsFile("SURSMR_VGG16_WEIGHTS", "torchvision VGG16 ImageNet state dict, e.g. vgg16-397923af.pth")
ALEXNET_FILE = WeightsFile("SURSMR_ALEXNET_WEIGHTS", "torchvision AlexNet ImageNet state dict")


def _load(file: WeightsFile) -> Any:
    path = file.path()
    if path is None or not path.is_file():
        raise WeightsNotFoundError(f"set {file.env}=/path/to/file ({file.content}); got {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{file.env}={path} is not a readable torch weights file: {exc}") from exc


def _load_backbone(module: nn.Module, state: Any, file: WeightsFile) -> nn.Module:
    """Load a torchvision state dict (whole model or ``features`` only) into ``module`` (= ``features``)."""
    if not isinstance(state, Mapping):
        raise ModelError(f"{file.env}: expected a state dict, got {type(state).__name__}")
    prefix = "features."
    if any(str(k).startswith(prefix) for k in state):
        state = {str(k)[len(prefix) :]: v for k, v in state.items() if str(k).startswith(prefix)}
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{file.env}: weights do not fit the backbone: {str(exc)[:300]}") from exc
    return module.eval()


def vgg16_features() -> nn.Module:
    """The convolutional part of torchvision's VGG16, randomly initialised (no classifier built)."""
    return cast(nn.Module, torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=False))


def alexnet_features() -> nn.Module:
    """The convolutional part of torchvision's AlexNet, randomly initialised."""
    return cast(nn.Module, torchvision.models.alexnet(weights=None).features)


def _lpips_heads(state: Any, channels: Sequence[int], file: WeightsFile) -> list[torch.Tensor]:
    """LPIPS per-layer channel weights, each (1, C, 1, 1), from the project's dict or a plain list."""
    if isinstance(state, Mapping):
        keys = [f"lin{i}.model.1.weight" for i in range(len(channels))]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ModelError(f"{file.env}: missing LPIPS head tensors {missing}")
        heads = [state[k] for k in keys]
    elif isinstance(state, (list, tuple)):
        heads = list(state)
    else:
        raise ModelError(f"{file.env}: expected LPIPS heads as a dict or a list, got {type(state).__name__}")
    shapes = [tuple(h.shape) for h in heads]
    if shapes != [(1, c, 1, 1) for c in channels]:
        raise ModelError(f"{file.env}: LPIPS heads have shapes {shapes}, expected channels {list(channels)}")
    return [h.float() for h in heads]


def _lpips(
    backbone: Callable[[], nn.Module],
    backbone_file: WeightsFile,
    taps: Sequence[str],
    channels: Sequence[int],
    head_file: WeightsFile,
) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        heads = _lpips_heads(_load(head_file), channels, head_file)
        features = _load_backbone(backbone(), _load(backbone_file), backbone_file)
        loss = piq.perceptual.ContentLoss(
            feature_extractor=features, layers=list(taps), weights=heads, distance="mse", normalize_features=True
        )
        return cast(nn.Module, loss)

    return build


class _LocalDists(piq.DISTS):  # type: ignore[misc]
    """piq's DISTS with weights handed in instead of downloaded."""

    def __init__(self, features: nn.Module, alpha_beta: Mapping[str, torch.Tensor]) -> None:
        channels = [3, 64, 128, 256, 512, 512]
        # DISTS weights sum to 1 over alpha and beta; the authors' file stores them unnormalised
        total = alpha_beta["alpha"].sum() + alpha_beta["beta"].sum()
        layer_weights = list(torch.split(alpha_beta["alpha"].float() / total, channels, dim=1))
        layer_weights.extend(torch.split(alpha_beta["beta"].float() / total, channels, dim=1))
        piq.perceptual.ContentLoss.__init__(
            self,
            feature_extractor=features,
            layers=list(VGG16_TAPS),
            weights=layer_weights,
            replace_pooling=True,
            normalize_features=False,
            allow_layers_weights_mismatch=True,
        )


def _dists(head_file: WeightsFile) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        state = _load(head_file)
        if not isinstance(state, Mapping) or {"alpha", "beta"} - set(state):
            raise ModelError(f"{head_file.env}: expected a dict with 'alpha' and 'beta' tensors")
        for key in ("alpha", "beta"):
            if tuple(state[key].shape) != (1, 1475, 1, 1):
                raise ModelError(
                    f"{head_file.env}: {key} has shape {tuple(state[key].shape)}, expected (1, 1475, 1, 1)"
                )
        features = _load_backbone(vgg16_features(), _load(VGG16_FILE), VGG16_FILE)
        return _LocalDists(features, state)

    return build


class _LocalPieApp(piq.PieAPP):  # type: ignore[misc]
    """piq's PieAPP with a state dict handed in instead of downloaded."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        nn.Module.__init__(self)
        self.model = piq.pieapp.PieAPPModel()
        fixed = dict(state)
        subtract = fixed.get("ref_score_subtract.weight")
        if subtract is not None and subtract.dim() == 1:  # the published file stores it flat
            fixed["ref_score_subtract.weight"] = subtract.unsqueeze(1)
        self.model.load_state_dict(fixed)
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.data_range = 1.0
        self.reduction = "mean"
        self.stride = 27
        self.enable_grad = False


def _pieapp(file: WeightsFile) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        state = _load(file)
        if not isinstance(state, Mapping):
            raise ModelError(f"{file.env}: expected a PieAPP state dict")
        try:
            return cast(nn.Module, _LocalPieApp(state).eval())
        except RuntimeError as exc:
            raise ModelError(f"{file.env}: weights do not fit PieAPP: {str(exc)[:300]}") from exc

    return build


_LPIPS_VGG_FILE = WeightsFile(
    "SURSMR_LPIPS_VGG_WEIGHTS", "LPIPS v0.1 VGG linear heads, e.g. the LPIPS project's vgg.pth"
)
_LPIPS_ALEX_FILE = WeightsFile("SURSMR_LPIPS_ALEX_WEIGHTS", "LPIPS v0.1 AlexNet linear heads, e.g. alex.pth")
_DISTS_FILE = WeightsFile("SURSMR_DISTS_WEIGHTS", "DISTS alpha/beta tensors, e.g. piq's dists_weights.pt")
_PIEAPP_FILE = WeightsFile("SURSMR_PIEAPP_WEIGHTS", "PieAPP state dict, e.g. piq's PieAPPv0.1.pth")


class DeepMetric(SizedMetric):
    """Base of the deep metrics: each subclass names the ``files`` it needs and how to ``build`` its network.

    The network is built on first use; every deep metric is a distance (lower is better).
    """

    lower_is_better: ClassVar[bool] = True
    needs_weights_file: ClassVar[bool] = True
    files: ClassVar[tuple[WeightsFile, ...]]
    build: ClassVar[Callable[[], nn.Module]]

    def __init__(self) -> None:
        self._network: nn.Module | None = None

    @classmethod
    def availability(cls) -> Availability:
        missing = [f for f in cls.files if (p := f.path()) is None or not p.is_file()]
        if not missing:
            return Availability(True)
        asks = " and ".join(f"set {f.env}=/path/to/file ({f.content})" for f in missing)
        return Availability(False, f"no local weights: {asks}")

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        if self._network is None:
            self._network = type(self).build().eval()
        with torch.inference_mode():
            value = self._network(to_tensor(distorted), to_tensor(reference))
        return float(value.item())


def _weights_note(text: str, files: tuple[WeightsFile, ...]) -> str:
    return f"{text}; weights from {', '.join(f.env for f in files)}"


@METRICS.register
class LpipsVgg(DeepMetric):
    """LPIPS v0.1 on VGG16; lower is better, weights only from local files."""

    name = "lpips_vgg"
    min_side = 32
    files = (_LPIPS_VGG_FILE, VGG16_FILE)
    description = _weights_note("LPIPS v0.1 on VGG16", files)
    build = staticmethod(_lpips(vgg16_features, VGG16_FILE, VGG16_TAPS, VGG16_CHANNELS, _LPIPS_VGG_FILE))


@METRICS.register
class LpipsAlex(DeepMetric):
    """LPIPS v0.1 on AlexNet; lower is better, weights only from local files."""

    name = "lpips_alex"
    min_side = 32
    files = (_LPIPS_ALEX_FILE, ALEXNET_FILE)
    description = _weights_note("LPIPS v0.1 on AlexNet", files)
    build = staticmethod(_lpips(alexnet_features, ALEXNET_FILE, ALEX_TAPS, ALEX_CHANNELS, _LPIPS_ALEX_FILE))


@METRICS.register
class Dists(DeepMetric):
    """DISTS (piq network, L2 pooling); lower is better, weights only from local files."""

    name = "dists"
    min_side = 32
    files = (_DISTS_FILE, VGG16_FILE)
    description = _weights_note("DISTS (piq network, L2 pooling)", files)
    build = staticmethod(_dists(_DISTS_FILE))


@METRICS.register
class PieApp(DeepMetric):
    """PieAPP v0.1, 64 px patches, stride 27; lower is better, weights only from local files."""

    name = "pieapp"
    min_side = 64
    files = (_PIEAPP_FILE,)
    description = _weights_note("PieAPP v0.1, 64 px patches, stride 27", files)
    build = staticmethod(_pieapp(_PIEAPP_FILE))
