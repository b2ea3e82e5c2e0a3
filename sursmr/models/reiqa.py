"""The Re-IQA-style quality encoder as a backbone: ``reiqa_quality`` (weights ship in ``sursmr/weights``).

A timm ``mobilenetv3_small_050`` trained here without labels by
``python -m training.related.reiqa`` (MoCo contrastive learning, batch keys as negatives, where
positive views share a distortion and differ in crop/content; see that
module). Its weights (float16 safetensors, full-model timm key names) and a
JSON card with the training command, data recipe, time and hardware lie in
``sursmr/weights/reiqa-quality.*``. As a backbone it gives the timm
``features_only`` stages; :func:`quality_encoder` gives the whole network
with its pooled 1024-d output (what the ``re_iqa`` metric uses).
"""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn

from sursmr.models.backbones import BACKBONES, BackboneSpec, StateDict, load_named_state, read_state_dict
from sursmr_core.errors import ModelError

QUALITY_ARCH = "mobilenetv3_small_050"
QUALITY_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "reiqa-quality.safetensors"
QUALITY_REGRESSOR = QUALITY_WEIGHTS.with_name("reiqa-ridge.json")
"""Ridge regressor of the ``re_iqa`` metric (training layer), fitted on a small SUR-proxy set."""


def quality_weights() -> StateDict:
    """The shipped quality-encoder weights (timm full-model names), as float32."""
    if not QUALITY_WEIGHTS.is_file():
        raise ModelError(f"the Re-IQA quality encoder's weights are missing: {QUALITY_WEIGHTS}; reinstall sursmr")
    return {k: v.float() if v.is_floating_point() else v for k, v in read_state_dict(QUALITY_WEIGHTS).items()}


def quality_encoder() -> nn.Module:
    """The trained quality encoder in eval mode: (B, 3, H, W) in [0, 1] → (B, 1024) pooled features."""
    network: nn.Module = timm.create_model(QUALITY_ARCH, pretrained=False, num_classes=0)
    load_named_state(network, quality_weights(), source=str(QUALITY_WEIGHTS))
    return network.eval().requires_grad_(False)


BACKBONES.register(
    BackboneSpec(
        name="reiqa_quality",
        timm_name=QUALITY_ARCH,
        default_stages=(1, 2, 3, 4),
        description="Re-IQA-style quality encoder (MobileNetV3-Small-0.5, MoCo on our photos); 8/16/24/288 ch, /4../32",
        shipped_weights=quality_weights,
        shipped_weights_note="Re-IQA-style quality encoder trained here (sursmr/weights/reiqa-quality.json)",
    )
)
