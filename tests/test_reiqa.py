"""Re-IQA-style pieces: distortions at matched PSNR, the MoCo loss on a toy batch, the ridge regressor,
the shipped quality encoder as a backbone and the ``re_iqa`` metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_crop
from torch import nn

from sursmr.fidelity import psnr
from sursmr_core.errors import InputError, ModelError
from training.related.distortions import apply, match_psnr
from training.related.reiqa import (
    DistortionClass,
    Moco,
    MocoConfig,
    MocoQuality,
    build_pool,
    class_retrieval,
    grouped_forward,
    info_nce,
    load_pool,
    sample_labelled_views,
    sample_views,
    save_pool,
    spread,
)
from training.related.ridge import Ridge


def test_info_nce_prefers_the_positive() -> None:
    torch.manual_seed(0)
    q = nn.functional.normalize(torch.randn(4, 8), dim=1)
    queue = nn.functional.normalize(torch.randn(16, 8), dim=1)
    good = info_nce(q, q, queue, 0.2)
    bad = info_nce(q, -q, queue, 0.2)
    assert good.shape == () and float(good) < float(bad)


def test_contrastive_loss_decreases_on_a_toy_batch() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    moco = Moco.create(MocoQuality(encoder, 8, 4), queue_size=16, momentum=0.9, temperature=0.2)
    optimiser = torch.optim.SGD(moco.query.parameters(), lr=0.5)
    base = torch.rand(8, 3, 1, 1).expand(8, 3, 16, 16)  # 8 distinct flat colours
    views_q = base + 0.01 * torch.randn_like(base)
    views_k = base + 0.01 * torch.randn_like(base)
    losses = []
    for _ in range(30):  # the queue is left alone: a fixed batch would otherwise fill it with its own positives
        loss, keys = moco.loss(views_q, views_k)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        moco.after_step(keys, enqueue=False)
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    moco.after_step(keys)
    assert moco.pointer == 8


def test_same_class_queue_keys_are_not_negatives() -> None:
    torch.manual_seed(0)
    q = nn.functional.normalize(torch.randn(1, 8), dim=1)
    queue = torch.cat([q, nn.functional.normalize(torch.randn(6, 8), dim=1)])  # row 0: a same-class copy
    excluded = torch.zeros(1, 7, dtype=torch.bool)
    excluded[0, 0] = True
    masked = info_nce(q, q, queue, 0.2, excluded)
    assert float(masked) < float(info_nce(q, q, queue, 0.2))
    assert float(masked) == pytest.approx(float(info_nce(q, q, queue[1:], 0.2)), abs=1e-6)


def test_masked_batch_negative_loss_decreases_and_does_not_collapse() -> None:
    """The training recipe (batch keys as negatives, same-class keys masked, shuffled BN groups) on toy classes."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU())
    moco = Moco.create(
        MocoQuality(encoder, 16, 8), queue_size=0, momentum=0.9, temperature=0.2, bn_groups=2, batch_negatives=True
    )
    optimiser = torch.optim.SGD(moco.query.parameters(), lr=0.05, momentum=0.9)
    prototypes = torch.randn(6, 12)  # 6 "distortion classes"; views: a prototype plus content noise

    def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 6, (16,))
        return (
            prototypes[labels] + 0.5 * torch.randn(16, 12),
            prototypes[labels] + 0.5 * torch.randn(16, 12),
            labels,
        )

    losses, spreads = [], []
    for _ in range(60):
        views_q, views_k, labels = batch()
        loss, keys = moco.loss(views_q, views_k, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        moco.after_step(keys, labels=labels)
        losses.append(float(loss.detach()))
        spreads.append(spread(keys))
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.2
    assert np.mean(spreads[-10:]) > 0.3  # not collapsed
    assert np.isfinite(moco.last_unmasked) and moco.last_unmasked >= np.mean(losses[-1:]) - 1e-6
    with pytest.raises(InputError):
        Moco.create(MocoQuality(encoder, 16, 8), 0, 0.9, 0.2).loss(views_q, views_k)


def test_grouped_forward_keeps_row_order_and_spread_sees_collapse() -> None:
    x = torch.arange(12, dtype=torch.float32).view(6, 2)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.equal(grouped_forward(nn.Identity(), x, 3, order), x)
    collapsed = nn.functional.normalize(torch.ones(8, 4), dim=1)
    spread_out = nn.functional.normalize(torch.randn(64, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    assert spread(collapsed) == pytest.approx(0.0, abs=1e-6) and spread(spread_out) > 0.5


def test_pool_cache_round_trips_and_class_retrieval_is_a_share(tmp_path: Path) -> None:
    photos = [photo_crop(48, 48), photo_crop(48, 48)[::-1].copy()]
    classes = (DistortionClass("none", 0), DistortionClass("noise", 30))
    pool = build_pool(photos, classes, max_side=48)
    save_pool(pool, ["a", "b"], tmp_path / "pool.npz")
    assert load_pool(tmp_path / "pool.npz", ["a", "b"]) is None  # other classes than the default set
    _, _, labels = sample_labelled_views(pool, np.random.default_rng(0), MocoConfig(crop=32, batch=5))
    assert labels.shape == (5,) and set(labels.tolist()) <= {0, 1}
    encoder = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert 0.0 <= class_retrieval(encoder, pool, 32, per_class=3) <= 1.0


def test_views_share_their_distortion_class() -> None:
    photos = [photo_crop(48, 48), photo_crop(48, 48)[::-1].copy()]
    classes = (DistortionClass("none", 0), DistortionClass("noise", 30))
    pool = build_pool(photos, classes, max_side=48)
    assert len(pool.images) == 2 and pool.images[0][0].shape == (48, 48, 3)
    q, k = sample_views(pool, np.random.default_rng(0), MocoConfig(crop=32, batch=6))
    assert q.shape == k.shape == (6, 3, 32, 32)
    # noise class views are rough, clean views smooth: the pair's roughness matches
    rough = lambda t: (t[:, :, 1:] - t[:, :, :-1]).abs().mean(dim=(1, 2, 3))  # noqa: E731
    assert torch.equal(rough(q) > 0.06, rough(k) > 0.06)


def test_signal_distortions_match_psnr() -> None:
    image = photo_crop(64, 64)
    for kind in ("blur", "noise"):
        found = match_psnr(image, kind, 30.0)
        assert abs(found.psnr - 30.0) < 0.3, (kind, found.psnr)
        assert psnr(image, apply(image, kind, found.param)) == pytest.approx(found.psnr, abs=1e-6)
    jpeg = match_psnr(image, "jpeg", 30.0)
    assert 1 <= jpeg.param <= 100 and abs(jpeg.psnr - 30.0) < 2.0
    with pytest.raises(InputError):
        apply(image, "nonsense", 1)


def test_ridge_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 0.3
    ridge = Ridge.fit(x, y, alpha=1e-3)
    assert np.abs(ridge.predict(x) - y).max() < 0.05
    ridge.save(tmp_path / "r.json", what="test")
    again = Ridge.load(tmp_path / "r.json")
    assert np.allclose(again.predict(x), ridge.predict(x))
    wide = Ridge.fit(rng.normal(size=(6, 30)), rng.normal(size=6), alpha=1.0)  # dual form
    assert wide.predict(rng.normal(size=(2, 30))).shape == (2,)
    with pytest.raises(InputError):
        ridge.predict(x[:, :3])
    with pytest.raises(ModelError):
        Ridge.load(tmp_path / "missing.json")


@pytest.mark.slow
def test_shipped_quality_encoder_is_a_backbone() -> None:
    from sursmr.models.backbones import BACKBONES, build_backbone, feature_channels, load_shipped_weights
    from sursmr.models.reiqa import QUALITY_WEIGHTS, quality_encoder

    assert QUALITY_WEIGHTS.stat().st_size <= 5_000_000
    spec = BACKBONES.get("reiqa_quality")
    backbone = build_backbone(spec, spec.default_stages)
    load_shipped_weights(spec, backbone)
    outputs = backbone(torch.zeros(1, 3, 64, 64))
    assert [o.shape[1] for o in outputs] == feature_channels(backbone)
    with torch.no_grad():
        assert quality_encoder()(torch.zeros(2, 3, 64, 64)).shape == (2, 1024)


@pytest.mark.slow
def test_re_iqa_metric_is_available_and_orders_heavy_jpeg_lower() -> None:
    from training.metrics import METRICS

    cls = METRICS.get("re_iqa")
    assert cls.availability().available and cls.reference_free and not cls.lower_is_better
    image = photo_crop(96, 96)
    metric = cls()
    clean = metric.score(image, image)
    heavy = metric.score(image, apply(image, "jpeg", 5))
    assert np.isfinite(clean) and np.isfinite(heavy)
    assert clean > heavy
