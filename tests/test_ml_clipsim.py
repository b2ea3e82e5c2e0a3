"""ML-CLIPSim: the aggregation on toy tensors, both registered encoders, the CLIP weights file contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_crop

from sursmr_core.errors import LabellerUnavailableError, WeightsNotFoundError
from training.metrics import METRICS
from training.metrics.ml_clipsim import (
    CLIP_ARCH_ENV,
    CLIP_WEIGHTS_ENV,
    _evenly_spaced_blocks,
    aggregate,
    similarity_parts,
    token_similarity,
)


def test_token_similarity_shapes_and_identity() -> None:
    torch.manual_seed(0)
    a = torch.randn(2, 8, 4, 5)
    assert token_similarity(a, a).shape == (2,)
    assert torch.allclose(token_similarity(a, a), torch.ones(2))
    assert torch.allclose(token_similarity(a, -a), -torch.ones(2))


def test_identity_pair_scores_best() -> None:
    torch.manual_seed(0)
    layers = [torch.randn(1, 4, 6, 6), torch.randn(1, 8, 3, 3)]
    embedding = torch.randn(1, 16)
    same = aggregate(similarity_parts((layers, embedding), (layers, embedding)))
    noisy = ([t + 0.5 * torch.randn_like(t) for t in layers], embedding + 0.5 * torch.randn_like(embedding))
    other = aggregate(similarity_parts((layers, embedding), noisy))
    assert float(same) == pytest.approx(1.0, abs=1e-6)
    assert float(other) < float(same)


def test_evenly_spaced_blocks() -> None:
    assert _evenly_spaced_blocks(12) == [2, 5, 8, 11]
    assert _evenly_spaced_blocks(2) == [0, 1]


def test_both_encoders_are_listed() -> None:
    assert {"ml_clipsim", "ml_clipsim_effnet"} <= set(METRICS.names())
    assert METRICS.get("ml_clipsim_effnet").availability().available
    assert not METRICS.get("ml_clipsim").lower_is_better


def test_clip_metric_names_the_file_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIP_WEIGHTS_ENV, raising=False)
    cls = METRICS.get("ml_clipsim")
    status = cls.availability()
    assert not status.available and CLIP_WEIGHTS_ENV in (status.reason or "")
    image = photo_crop(64, 64)
    with pytest.raises(LabellerUnavailableError, match=CLIP_WEIGHTS_ENV):
        cls().score(image, image)
    with pytest.raises(WeightsNotFoundError, match=CLIP_WEIGHTS_ENV):
        cls()._build()


@pytest.mark.slow
def test_clip_metric_loads_a_local_vit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import timm

    net = timm.create_model("test_vit", pretrained=False, num_classes=0)
    path = tmp_path / "vit.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(path))
    monkeypatch.setenv(CLIP_ARCH_ENV, "test_vit")
    metric = METRICS.get("ml_clipsim")()
    image = photo_crop(64, 64)
    noisy = np.clip(image.astype(np.int16) + np.random.default_rng(0).integers(-60, 60, image.shape), 0, 255)
    same = metric.score(image, image)
    worse = metric.score(image, noisy.astype(np.uint8))
    assert same == pytest.approx(1.0, abs=1e-5)
    assert worse < same


@pytest.mark.slow
def test_effnet_parts_and_ordering() -> None:
    metric = METRICS.get("ml_clipsim_effnet")()
    image = photo_crop(64, 96)
    rng = np.random.default_rng(0)
    light = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(image + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)
    parts = metric.parts(image, light)
    assert {"layer0", "layer3", "local", "global", "score"} <= set(parts)
    assert metric.score(image, image) == pytest.approx(1.0, abs=1e-5)
    assert metric.score(image, image) > parts["score"] > metric.score(image, heavy)
