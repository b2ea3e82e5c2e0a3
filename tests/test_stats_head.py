"""Predictor v2's ``stats`` head: its parameter-free statistics, the ensemble, and a frozen training run."""

from __future__ import annotations

import pytest
import torch

from sursmr.models import create_model
from sursmr.models.stats_head import StatsHead, backbone_stats, pixel_stats, pixel_stats_size
from sursmr_core.errors import InputError
from training.train.data import SplitData, with_identity


def _pair(noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    reference = torch.rand(1, 3, 64, 64, generator=generator)
    candidate = (reference + noise * torch.randn(reference.shape, generator=generator)).clamp(0, 1)
    return reference, candidate


def test_pixel_stats_grow_with_the_error_and_see_colour_only_errors() -> None:
    reference, small = _pair(0.01)
    _, large = _pair(0.1)
    low, high = pixel_stats(reference, small, 3), pixel_stats(reference, large, 3)
    assert low.shape == high.shape == (1, pixel_stats_size(3))
    stats = 6
    # column 0 of every (channel, scale) block is log MSE: larger noise, larger value
    assert bool((high[0, ::stats] > low[0, ::stats]).all())
    # an error only in the colour-difference channels leaves luma's statistics at those of a perfect copy
    grey = torch.full((1, 3, 32, 32), 0.5)
    tinted = grey.clone()
    tinted[:, 0] += 0.05  # more red, less green keeps luma nearly unchanged
    tinted[:, 1] -= 0.05 * 0.299 / 0.587
    out = pixel_stats(grey, tinted, 1)[0].reshape(3, stats)
    assert out[0, 0] < -15 < out[2, 0]  # luma: log(1e-8 + ~0); the red-difference channel: a real error


def test_backbone_stats_are_zero_for_identical_features() -> None:
    features = torch.randn(2, 8, 5, 5)
    stats = backbone_stats(features, features)
    assert stats.shape == (2, 3 * 8 + 2)
    assert torch.allclose(stats, torch.zeros_like(stats), atol=1e-6)
    other = backbone_stats(features, features * 0.5)
    assert bool((other[:, 8:16] > 0).all())  # mean |F0 − Fq| per channel


def test_stats_network_scores_pairs_like_the_cached_vectors_it_trains_on() -> None:
    model = create_model("sursmr_tiny_stats").eval()
    head = model.head
    assert isinstance(head, StatsHead)
    reference, candidate = _pair(0.05)
    with torch.inference_mode():
        direct = model(reference, candidate)
        pooled = head.pool(model.reference_features(reference), model.reference_features(candidate))
        from_vectors = head.forward_pooled(pooled)
        shared = model.forward_from_features(model.reference_features(reference), candidate.repeat(3, 1, 1, 1))
    assert pooled.shape == (1, head.size)
    assert torch.allclose(direct, from_vectors, atol=1e-6)
    assert torch.allclose(shared, direct.expand(3, 2), atol=1e-5)
    assert bool(((direct >= 0) & (direct <= 1)).all())
    members = head.member_outputs(pooled)
    assert members.shape == (2, 1, 2) and torch.allclose(members.mean(dim=0), from_vectors)


def test_standardisation_is_set_from_training_vectors_and_saved_with_the_weights() -> None:
    head = create_model("sursmr_tiny_stats").head
    assert isinstance(head, StatsHead)
    vectors = torch.randn(50, head.size) * 3 + 2
    head.set_standardisation(vectors)
    assert torch.allclose(head.feature_mean, vectors.mean(dim=0))
    state = head.state_dict()
    assert "feature_mean" in state and "feature_std" in state


def test_identity_samples_reuse_each_reference_against_itself() -> None:
    data = SplitData(
        sur=torch.tensor([0.2, 0.4]),
        smr=torch.tensor([0.5, float("nan")]),
        meta=[{"item_id": "a"}, {"item_id": "a"}],
        owner=torch.tensor([0, 1]),
        pooled=torch.randn(2, 4),
        identity=torch.full((1, 4), 7.0),
    )
    extra = with_identity(data, 1.0)
    assert extra.pooled is not None and extra.pooled.shape == (4, 4)
    assert torch.equal(extra.pooled[2:], torch.full((2, 4), 7.0))
    assert extra.sur[2:].tolist() == [1.0, 1.0] and extra.smr[2:].tolist() == [1.0, 1.0]


def test_a_pixels_only_stats_network_runs_no_backbone() -> None:
    model = create_model("sursmr_tiny_stats", stats_streams=["pixel"]).eval()
    assert not model.config.uses_backbone and model.channels == []
    assert sum(p.numel() for p in model.backbone.parameters()) == 0
    reference, candidate = _pair(0.05)
    with torch.inference_mode():
        features = model.reference_features(reference)
        assert len(features) == 1 and features[0] is reference  # the pixel stream's input only
        out = model(reference, candidate)
    head = model.head
    assert isinstance(head, StatsHead) and head.size == pixel_stats_size(model.config.pixel_scales)
    assert out.shape == (1, 2)
    with pytest.raises(InputError, match="stats_streams"):
        create_model("sursmr_tiny_stats", stats_streams=["pixel", "colour"])


def test_smr_can_read_other_streams_than_sur() -> None:
    model = create_model("sursmr_tiny_stats", stats_streams=["pixel"], smr_streams=["channels", "pixel"]).eval()
    head = model.head
    assert isinstance(head, StatsHead) and head.split and model.config.uses_backbone
    pixel_columns = set(range(head.size - pixel_stats_size(model.config.pixel_scales), head.size))
    assert set(head.sur_columns.tolist()) == pixel_columns
    assert set(head.smr_columns.tolist()) == set(range(head.size))
    reference, candidate = _pair(0.05)
    with torch.inference_mode():
        pooled = head.pool(model.reference_features(reference), model.reference_features(candidate))
        members = head.member_outputs(pooled)
        # SUR depends only on the pixel columns: changing a backbone column moves SMR, never SUR
        changed = pooled.clone()
        changed[:, 0] += 100.0
        moved = head.member_outputs(changed)
    assert members.shape == (2, 1, 2)
    assert torch.equal(members[..., 0], moved[..., 0])
    assert not torch.equal(members[..., 1], moved[..., 1])
