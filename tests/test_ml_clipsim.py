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
    EFFNET_ENCODER,
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


def test_both_encoders_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIP_WEIGHTS_ENV, raising=False)
    assert {"ml_clipsim", "ml_clipsim_effnet"} <= set(METRICS.names())
    assert METRICS.get("ml_clipsim_effnet").availability().available
    assert not METRICS.get("ml_clipsim").lower_is_better


def test_labellers_list_ml_clipsim_with_its_substitute_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine (no CLIP file): ml_clipsim runs on EfficientNet-Lite0 and the listing says so."""
    from training.cli.labellers import labeller_rows

    monkeypatch.delenv(CLIP_WEIGHTS_ENV, raising=False)
    rows = {row["name"]: row for row in labeller_rows()}
    for name in ("ml_clipsim", "ml_clipsim_effnet", "re_iqa"):
        assert rows[name]["available"], rows[name]
    assert rows["ml_clipsim"]["encoder"] == EFFNET_ENCODER and "SUBSTITUTE" in EFFNET_ENCODER
    assert rows["ml_clipsim_effnet"]["encoder"] == EFFNET_ENCODER
    assert rows["psnr"]["encoder"] is None


def test_clip_file_switches_the_encoder_and_a_missing_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = METRICS.get("ml_clipsim")
    missing = tmp_path / "clip.bin"
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(missing))
    status = cls.availability()
    assert not status.available and str(missing) in (status.reason or "") and CLIP_WEIGHTS_ENV in (status.reason or "")
    assert cls.encoder_name().startswith("clip:")
    image = photo_crop(64, 64)
    with pytest.raises(LabellerUnavailableError, match=CLIP_WEIGHTS_ENV):
        cls().score(image, image)
    with pytest.raises(WeightsNotFoundError, match=CLIP_WEIGHTS_ENV):
        cls()._build()


@pytest.mark.slow
def test_default_ml_clipsim_shapes_and_identity_scores_best(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIP_WEIGHTS_ENV, raising=False)
    metric = METRICS.get("ml_clipsim")()
    layers, embedding = metric.encoder().encode(torch.rand(2, 3, 64, 96))
    assert len(layers) == 4 and all(t.shape[0] == 2 and t.ndim == 4 for t in layers)
    assert embedding.shape == (2, 1280)
    image = photo_crop(64, 96)
    noisy = np.clip(image + np.random.default_rng(1).normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    same = metric.score(image, image)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert metric.score(image, noisy) < same
    assert metric.score(image, noisy) == pytest.approx(METRICS.get("ml_clipsim_effnet")().score(image, noisy))


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
