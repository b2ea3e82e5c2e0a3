"""The ``stats`` head's reference-prepared path gives the vectors of its original, per-pair code.

``_old_*`` below are frozen copies of the statistics as first written (every
term computed per pair, one box filter per map): the prepared path
(:meth:`StatsHead.prepare_reference` once, :meth:`StatsHead.pool_prepared`
per candidate) must reproduce every column of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from sursmr.models import create_model
from sursmr.models.stats_head import (
    _C2,
    _EPS,
    _MASK_C,
    _OPPONENT,
    StackedMembers,
    StatsHead,
    _mean3x3,
    _worst_regions,
    backbone_stats,
    pixel_stats,
)
from sursmr_core.errors import ModelError

TOLERANCE = 1e-5


def _old_backbone_stats(reference: Tensor, candidate: Tensor, streams: Sequence[str]) -> Tensor:
    parts: list[Tensor] = []
    if "channels" in streams:
        diff = reference - candidate
        mean_abs = diff.abs().mean(dim=(2, 3))
        relative = mean_abs / (reference.abs().mean(dim=(2, 3)) + 1e-3)
        parts += [diff.mean(dim=(2, 3)), mean_abs, relative]
    if "distance" in streams:
        unit_ref = reference / reference.norm(dim=1, keepdim=True).clamp_min(_EPS)
        unit_cand = candidate / candidate.norm(dim=1, keepdim=True).clamp_min(_EPS)
        distance = (unit_ref - unit_cand).pow(2).sum(dim=1, keepdim=True)
        parts += [distance.mean(dim=(2, 3)), _worst_regions(distance, 0.1)]
    return torch.cat(parts, dim=1)


def _old_box(x: Tensor) -> Tensor:
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _old_pixel_stats(reference: Tensor, candidate: Tensor, scales: int) -> Tensor:
    ref = torch.einsum("oc,bchw->bohw", _OPPONENT, reference)
    cand = torch.einsum("oc,bchw->bohw", _OPPONENT, candidate)
    out: list[Tensor] = []
    for scale in range(scales):
        if scale:
            if min(ref.shape[2:]) < 4:
                ref = F.interpolate(ref, size=(2, 2), mode="area")
                cand = F.interpolate(cand, size=(2, 2), mode="area")
            else:
                ref, cand = F.avg_pool2d(ref, 2), F.avg_pool2d(cand, 2)
        err = cand - ref
        mu_r, mu_c = _old_box(ref), _old_box(cand)
        var_r = (_old_box(ref * ref) - mu_r * mu_r).clamp_min(0)
        var_c = (_old_box(cand * cand) - mu_c * mu_c).clamp_min(0)
        cov = _old_box(ref * cand) - mu_r * mu_c
        log_masked = torch.log(_old_box(err * err) / (var_r + _MASK_C) + _EPS)
        structure = (2 * cov + _C2) / (var_r + var_c + _C2)
        blur = ((var_c - var_r) / (var_r + _MASK_C)).clamp(-1, 1)
        stats = [
            torch.log(err.pow(2).mean(dim=(2, 3)) + 1e-8),
            log_masked.mean(dim=(2, 3)),
            _worst_regions(log_masked, 0.1),
            structure.mean(dim=(2, 3)),
            _worst_regions(-structure, 0.1),
            blur.mean(dim=(2, 3)),
        ]
        out.append(torch.stack(stats, dim=2).flatten(1))
    return torch.cat(out, dim=1)


def _old_pool(head: StatsHead, reference: list[Tensor], candidate: list[Tensor]) -> Tensor:
    parts = []
    if head.backbone_streams:
        parts += [
            _old_backbone_stats(r, c, head.backbone_streams)
            for r, c in zip(reference[:-1], candidate[:-1], strict=True)
        ]
    if "pixel" in head.streams:
        parts.append(_old_pixel_stats(reference[-1], candidate[-1], head.pixel_scales))
    return torch.cat(parts, dim=1)


def _images(batch: int, side: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    # smooth content plus texture, so local variances span flat to busy areas
    coarse = torch.rand(batch, 3, side // 8, side // 8, generator=generator)
    reference = (
        F.interpolate(coarse, size=(side, side), mode="bilinear")
        + 0.05 * torch.rand(batch, 3, side, side, generator=generator)
    ).clamp(0, 1)
    candidate = (reference + noise * torch.randn(reference.shape, generator=generator)).clamp(0, 1)
    return reference, candidate


@pytest.mark.parametrize("side", [64, 12])  # 12: the tiny-input branch of the pyramid
def test_pixel_stats_equal_the_per_pair_code(side: int) -> None:
    reference, candidate = _images(3, side, 0.04, seed=side)
    old = _old_pixel_stats(reference, candidate, 4)
    new = pixel_stats(reference, candidate, 4)
    assert new.shape == old.shape
    assert float((new - old).abs().max()) <= TOLERANCE
    # one reference shared by a batch of candidates (the predictor's batch-1 case) broadcasts
    shared = pixel_stats(reference[:1], candidate, 4)
    assert (
        float((shared - _old_pixel_stats(reference[:1].expand(3, -1, -1, -1), candidate, 4)).abs().max()) <= TOLERANCE
    )


@pytest.mark.parametrize("streams", [("channels", "distance"), ("channels",), ("distance",)])
def test_backbone_stats_equal_the_per_pair_code(streams: tuple[str, ...]) -> None:
    generator = torch.Generator().manual_seed(1)
    reference = torch.randn(4, 16, 9, 7, generator=generator) * 3
    candidate = reference + 0.3 * torch.randn(reference.shape, generator=generator)
    old = _old_backbone_stats(reference, candidate, streams)
    new = backbone_stats(reference, candidate, streams)
    assert new.shape == old.shape and float((new - old).abs().max()) <= TOLERANCE


@pytest.mark.parametrize(
    "overrides",
    [{}, {"stats_streams": ("distance", "pixel"), "smr_streams": ("channels", "distance", "pixel")}],
)
def test_prepared_pool_equals_the_per_pair_pool(overrides: dict[str, object]) -> None:
    torch.manual_seed(0)
    model = create_model("sursmr_tiny_stats", **overrides).eval()
    head = model.head
    assert isinstance(head, StatsHead)
    reference, candidate = _images(2, 64, 0.05, seed=3)
    with torch.inference_mode():
        ref_features, cand_features = model.reference_features(reference), model.reference_features(candidate)
        old = _old_pool(head, ref_features, cand_features)
        prepared = head.prepare_reference(ref_features)
        via_prepared = head.pool_prepared(prepared, cand_features)
        via_pool = head.pool(ref_features, cand_features)
        scores_old = head.forward_pooled(old)
        scores_new = model.forward_from_prepared(model.prepare_reference(ref_features), candidate)
        scores_features = model.forward_from_features(ref_features, candidate)
    assert old.shape == via_prepared.shape == (2, head.size)
    assert float((via_prepared - old).abs().max()) <= TOLERANCE
    assert float((via_pool - old).abs().max()) <= TOLERANCE
    assert torch.allclose(scores_new, scores_old, atol=1e-6) and torch.allclose(scores_features, scores_old, atol=1e-6)
    # the vectors depend on the candidate: equal vectors are not a sign of ignored inputs
    assert not torch.allclose(head.pool(ref_features, model.reference_features(reference)), old, atol=1e-3)


@pytest.mark.parametrize("shape", [(2, 12, 66, 66), (1, 3, 3, 3), (3, 6, 10, 7)])
def test_shifted_sum_box_is_the_pooling_kernel_bit_for_bit(shape: tuple[int, int, int, int]) -> None:
    values = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape))) * 10
    assert torch.equal(_mean3x3(values), F.avg_pool2d(values, 3, stride=1))


def test_downscale_is_the_pooling_kernel_bit_for_bit() -> None:
    from sursmr.models.stats_head import _downscale

    for shape in [(2, 3, 64, 64), (1, 3, 9, 7), (3, 6, 10, 12)]:
        values = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape))) * 10
        assert torch.equal(_downscale(values), F.avg_pool2d(values, 2))
    # the opponent transform's layout (colour channel outermost) as the pixel stream sees it
    permuted = torch.rand(3, 2, 32, 32).permute(1, 0, 2, 3)
    assert torch.equal(_downscale(permuted), F.avg_pool2d(permuted, 2))


def _stats_model() -> tuple[torch.nn.Module, StatsHead]:
    torch.manual_seed(0)
    model = create_model(
        "sursmr_tiny_stats", stats_streams=("distance", "pixel"), smr_streams=("channels", "distance", "pixel")
    ).eval()
    assert isinstance(model.head, StatsHead)
    return model, model.head


def test_candidates_in_groups_of_the_references_equal_repeated_references() -> None:
    """R prepared references serve k·R candidates (candidate i against reference i mod R), as if repeated."""
    model, head = _stats_model()
    reference, _ = _images(3, 64, 0.0, seed=5)
    candidate = torch.cat([_images(3, 64, noise, seed=6)[1] for noise in (0.02, 0.1)])  # two groups of three
    with torch.inference_mode():
        ref_features, cand_features = model.reference_features(reference), model.reference_features(candidate)
        grouped = head.pool_prepared(head.prepare_reference(ref_features), cand_features)
        repeated = head.pool([f.repeat(2, 1, 1, 1) for f in ref_features], cand_features)
        one = head.pool_prepared(head.prepare_reference([f[1:2] for f in ref_features]), cand_features)
        one_repeated = head.pool(
            [f[1:2].expand_as(c) for f, c in zip(ref_features, cand_features, strict=True)], cand_features
        )
    assert torch.equal(grouped, repeated)
    assert torch.equal(one, one_repeated)  # one reference for every candidate
    assert not torch.allclose(grouped[:3], grouped[3:], atol=1e-3)  # the groups are told apart
    with pytest.raises(ModelError, match="cannot be matched"):
        head.pool_prepared(head.prepare_reference(ref_features), [f[:4] for f in cand_features])


@pytest.mark.parametrize("block_values", [1, 3 * 64 * 64 * 2, 1 << 30])
def test_statistics_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch, block_values: int) -> None:
    """Working block by block (tile by tile on the CPU) gives the whole batch's numbers bit for bit."""
    from sursmr.models import stats_head

    model, head = _stats_model()
    reference, candidate = _images(5, 64, 0.05, seed=7)
    with torch.inference_mode():
        ref_features, cand_features = model.reference_features(reference), model.reference_features(candidate)
        prepared = head.prepare_reference(ref_features)
        whole = head.pool_prepared(prepared, cand_features)
        monkeypatch.setattr(stats_head, "BLOCK_VALUES", block_values)
        blocked = head.pool_prepared(prepared, cand_features)
    assert torch.equal(whole, blocked)


def test_stacked_members_give_the_members_outputs() -> None:
    _, head = _stats_model()
    pooled = head.feature_mean + torch.randn(5, head.size, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        looped = head.member_outputs(pooled)
        head.stack_members()
        stacked = head.member_outputs(pooled)
    assert stacked.shape == looped.shape == (2, 5, 2)
    assert float((stacked - looped).abs().max()) <= 1e-6
    assert set(head.state_dict()) == set(_stats_model()[1].state_dict())  # nothing new is saved
    with pytest.raises(ModelError, match="three linear layers"):
        StackedMembers([torch.nn.Linear(3, 2)])
