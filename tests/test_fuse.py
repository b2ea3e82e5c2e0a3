"""Inference-only BatchNorm folding: same outputs, fewer layers, never on a network in training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sursmr.models import create_model
from sursmr.models.fuse import fold_batchnorm
from sursmr.models.network import SurSmrNet
from sursmr.predictor import Predictor
from sursmr_core.errors import ModelError


def _trained_looking(name: str) -> SurSmrNet:
    """A tiny network whose BatchNorms have non-trivial statistics and affine parameters (as trained ones do)."""
    torch.manual_seed(0)
    net = create_model(name)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(shape, generator=generator) * 2 + 0.1)
                module.weight.copy_(torch.randn(shape, generator=generator))
                module.bias.copy_(torch.randn(shape, generator=generator) * 0.3)
    return net.eval()


def _batchnorms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize("name", ["sursmr_tiny", "sursmr_tiny_stats"])
def test_folding_keeps_the_outputs_and_removes_every_batchnorm(name: str) -> None:
    net = _trained_looking(name)
    fused = copy.deepcopy(net)
    before = _batchnorms(fused.backbone)
    assert before > 0
    assert fold_batchnorm(fused.backbone) == before
    assert _batchnorms(fused) == 0
    generator = torch.Generator().manual_seed(2)
    reference = torch.rand(3, 3, 64, 64, generator=generator)
    distorted = (reference + 0.05 * torch.randn(reference.shape, generator=generator)).clamp(0, 1)
    with torch.inference_mode():
        for plain, folded in zip(net.reference_features(reference), fused.reference_features(reference), strict=True):
            assert plain.shape == folded.shape
            scale = float(plain.abs().max())
            assert scale > 0 and float((plain - folded).abs().max()) <= 1e-5 * max(1.0, scale)
        assert torch.allclose(net(reference, distorted), fused(reference, distorted), atol=1e-5)
    # the check above can fail: folding with another BN's statistics changes the features
    broken = copy.deepcopy(net)
    norm = next(m for m in broken.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    with torch.no_grad():
        norm.running_mean.add_(1.0)
    fold_batchnorm(broken.backbone)
    with torch.inference_mode():
        assert not torch.allclose(
            net.reference_features(reference)[0], broken.reference_features(reference)[0], atol=1e-3
        )


def test_folding_refuses_a_network_in_training_mode() -> None:
    net = create_model("sursmr_tiny").train()
    with pytest.raises(ModelError, match="eval mode"):
        fold_batchnorm(net.backbone)
    assert _batchnorms(net.backbone) > 0


def test_predictor_folds_only_when_asked() -> None:
    net = _trained_looking("sursmr_tiny_stats")
    plain = Predictor.from_model(copy.deepcopy(net), channels_last=True)
    folded = Predictor.from_model(copy.deepcopy(net), channels_last=True, fuse=True)
    assert not plain.fused and _batchnorms(plain.model) > 0
    assert folded.fused and _batchnorms(folded.model) == 0
    reference = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    distorted = (reference + 0.05 * torch.rand(4, 3, 64, 64)).clamp(0, 1)
    assert torch.allclose(
        plain.predict_tensors(reference, distorted), folded.predict_tensors(reference, distorted), atol=1e-5
    )
