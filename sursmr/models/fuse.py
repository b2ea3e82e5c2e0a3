"""Inference-only BatchNorm folding for the timm EfficientNet backbones (fewer kernels per candidate).

In eval mode a BatchNorm after a convolution is an affine map per channel,
so it folds into the convolution's weights and bias:
``w' = w · γ/√(σ² + ε)``, ``b' = (b − μ) · γ/√(σ² + ε) + β``. timm's
``BatchNormAct2d`` (BN, then dropout and activation) becomes its dropout and
activation alone. The folded network computes the same function to float
rounding, but it has other parameters: it cannot be trained or saved as the
original weights, so only :func:`sursmr.predictor.load` asks for it.

Pairs are folded only where the forward pass applies the BN directly to the
convolution's output: the named (convolution, BN) attributes of timm's
EfficientNet stem and blocks below, with a plain ``nn.Conv2d`` (CondConv
and other layers are left alone). Other backbones are returned unchanged.
"""

from __future__ import annotations

import torch
from timm.models._efficientnet_blocks import ConvBnAct, DepthwiseSeparableConv, EdgeResidual, InvertedResidual
from timm.models.efficientnet import EfficientNet, EfficientNetFeatures
from torch import nn

from sursmr_core.errors import ModelError

# (module type, [(convolution attribute, BN attribute)]) in the order their forward applies them
_PAIRS: tuple[tuple[type[nn.Module], tuple[tuple[str, str], ...]], ...] = (
    (EfficientNetFeatures, (("conv_stem", "bn1"),)),
    (EfficientNet, (("conv_stem", "bn1"), ("conv_head", "bn2"))),
    (ConvBnAct, (("conv", "bn1"),)),
    (DepthwiseSeparableConv, (("conv_s2d", "bn_s2d"), ("conv_dw", "bn1"), ("conv_pw", "bn2"))),
    (InvertedResidual, (("conv_s2d", "bn_s2d"), ("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3"))),
    (EdgeResidual, (("conv_exp", "bn1"), ("conv_pwl", "bn2"))),
)


def _tail(norm: nn.BatchNorm2d) -> nn.Module:
    """What remains of a BN(+dropout+activation) layer once its affine map lives in the convolution."""
    parts = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None)) if isinstance(m, nn.Module)]
    parts = [m for m in parts if not isinstance(m, nn.Identity)]
    if len(parts) == 1:
        return parts[0]
    return nn.Sequential(*parts) if parts else nn.Identity()


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Fold ``norm``'s eval-mode affine map into ``conv`` in place (weights and a bias)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ModelError("cannot fold a BatchNorm without running statistics")
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if conv.bias is not None:
        shift = shift + conv.bias.double() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.double()
    weight = conv.weight
    weight.copy_((weight.double() * scale.view(-1, *([1] * (weight.ndim - 1)))).to(weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(torch.empty(weight.shape[0], dtype=weight.dtype, device=weight.device))
    conv.bias.copy_(shift.to(weight.dtype))


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every known (convolution, BN) pair of ``module`` in place; returns how many were folded.

    Refuses a module in training mode (BN then uses batch statistics, and its
    parameters are being learned): :class:`ModelError`.
    """
    if module.training:
        raise ModelError("BatchNorm folding is for inference only: put the network in eval mode first")
    folded = 0
    for owner in list(module.modules()):
        for kind, pairs in _PAIRS:
            if not isinstance(owner, kind):
                continue
            for conv_name, norm_name in pairs:
                conv, norm = getattr(owner, conv_name, None), getattr(owner, norm_name, None)
                if not isinstance(norm, nn.BatchNorm2d):
                    continue
                if not isinstance(conv, nn.Conv2d) or conv.out_channels != norm.num_features:
                    continue
                fold_conv_bn(conv, norm)
                setattr(owner, norm_name, _tail(norm))
                folded += 1
    return folded
