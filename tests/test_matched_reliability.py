"""Matched-reliability benchmark maths (benchmarks/matched.py) and the cheap-metric baseline, on synthetic items."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.matched import (
    BenchItem,
    FixedLevel,
    MetricTarget,
    PredictorMargin,
    bisect_threshold,
    bootstrap,
    calibrate,
    margin_search,
    oracle_at,
    oracle_choices,
    oracle_share,
    run,
    saving,
    weighted_mean,
)
from sursmr_core.errors import InputError
from training.cheap_metrics import CheapMetricRegressor
from training.evaluate import Sample

LEVELS = 8


def make_item(i: int, shift: float, codec: str = "jpeg", group: str | None = None) -> BenchItem:
    """SUR label rises with the level; ``shift`` makes the image easier (>0) or harder (<0) to satisfy."""
    x = np.linspace(0.0, 1.0, LEVELS)
    sur = np.clip(x + shift, 0.0, 1.0)
    return BenchItem(
        item_id=f"{codec}-{i}",
        codec=codec,
        group=group or f"photo{i}",
        levels=list(range(LEVELS)),
        nbytes=1000.0 * (1.0 + np.arange(LEVELS)),
        sur=sur,
        smr=np.full(LEVELS, math.nan),
        scores={"ssim": 0.5 + 0.5 * sur},  # a metric that tracks the label exactly
        preds={"perfect": (sur.copy(), np.full(LEVELS, 1.0)), "blind": (x.copy(), np.full(LEVELS, 1.0))},
        level_seconds=0.1,
        metric_seconds={"ssim": 0.01},
        pred_seconds={"perfect": 0.05, "blind": 0.05},
    )


ITEMS = [make_item(i, s) for i, s in enumerate(np.linspace(-0.3, 0.3, 20))]
TARGET = (0.7, None)


def test_fixed_level_calibrates_to_the_hit_rate() -> None:
    knob, knobs, outcomes = calibrate(FixedLevel(), ITEMS, TARGET, 0.9)
    assert knob is not None
    rates = [o.hit_rate for o in outcomes]
    chosen = knobs.index(knob)
    assert rates[chosen] >= 0.9
    assert chosen == 0 or rates[chosen - 1] < 0.9  # the cheapest level that reaches h
    assert calibrate(FixedLevel(), ITEMS, (1.01, None), 0.5)[0] is None  # nothing reaches an impossible target


def test_adaptive_methods_beat_fixed_at_matched_rate() -> None:
    h = 0.9
    fixed = run(FixedLevel(), ITEMS, TARGET, calibrate(FixedLevel(), ITEMS, TARGET, h)[0] or 0)
    metric = MetricTarget("ssim", "ssim")
    ssim = run(metric, ITEMS, TARGET, calibrate(metric, ITEMS, TARGET, h)[0] or 0)
    perfect = PredictorMargin("perfect", "perfect")
    ours = run(perfect, ITEMS, TARGET, calibrate(perfect, ITEMS, TARGET, h)[0] or 0)
    blind = PredictorMargin("blind", "blind")
    level_only = run(blind, ITEMS, TARGET, calibrate(blind, ITEMS, TARGET, h)[0] or 0)
    oracle = oracle_at(ITEMS, TARGET, h)
    for outcome in (fixed, ssim, ours, level_only):
        assert outcome.hit_rate >= h
    assert oracle.mean_bytes <= ours.mean_bytes < fixed.mean_bytes
    assert ssim.mean_bytes < fixed.mean_bytes
    assert level_only.mean_bytes == pytest.approx(fixed.mean_bytes)  # a predictor blind to the image is a fixed level
    assert ours.encodes.mean() > 1 and fixed.encodes.mean() == 1


def test_bisect_threshold_and_margin_search_agree_with_a_scan() -> None:
    values = np.array([0.1, 0.3, 0.35, 0.6, 0.8, 0.9])
    for threshold in (0.0, 0.3, 0.5, 0.85, 0.95):
        scan = next((i for i, v in enumerate(values) if v >= threshold), len(values) - 1)
        assert bisect_threshold(values, threshold)[0] == scan
        assert margin_search(values, np.full(6, math.nan), (threshold, None), 0.0)[0] == scan
    assert margin_search(values, np.full(6, math.nan), (0.5, None), 0.25)[0] == 4


def test_oracle_satisfies_the_cheapest_items_first() -> None:
    items = ITEMS[::5]  # shifts -0.3, -0.14, 0.02, 0.17: distinct costs to satisfy
    chosen = oracle_choices(items, TARGET, 2)
    hits = [item.hit(i, TARGET) for item, i in zip(items, chosen, strict=True)]
    assert sum(hits) == 2
    assert hits == [False, False, True, True]  # the easiest (largest shift) items are the cheap ones to satisfy
    assert oracle_at(items, TARGET, 1.0).hit_rate == 1.0


def test_savings_and_share() -> None:
    assert saving(800.0, 1000.0) == pytest.approx(0.2)
    assert oracle_share(900.0, 1000.0, 800.0) == pytest.approx(0.5)
    assert oracle_share(900.0, 1000.0, 1000.0) is None


def test_bootstrap_resamples_whole_photos() -> None:
    # two photos: in photo A the method saves 50 %, in photo B nothing; items of a photo move together
    method = np.array([500.0, 500.0, 1000.0, 1000.0])
    fixed = np.array([1000.0, 1000.0, 1000.0, 1000.0])
    groups = ["A", "A", "B", "B"]
    low, high = bootstrap(groups, lambda w: saving(weighted_mean(method, w), weighted_mean(fixed, w)), resamples=500)
    assert low == pytest.approx(0.0) and high == pytest.approx(0.5)
    # one photo: no spread
    one = bootstrap(["A"] * 4, lambda w: saving(weighted_mean(method, w), weighted_mean(fixed, w)), resamples=50)
    assert one is not None and one[0] == one[1]


def _samples(n: int) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        psnr = float(rng.uniform(25, 45))
        sur = float(np.clip((psnr - 25) / 20, 0, 1))
        scores = {"psnr": psnr, "ssim": 0.9, "ms_ssim": 0.95, "gmsd": 0.05}
        out.append(Sample(f"item{i}", "jpeg", i, sur, math.nan if i % 3 == 0 else 1 - sur / 2, scores))
    return out


def test_cheap_regressor_learns_and_refuses_label_metrics() -> None:
    train = _samples(200)
    model = CheapMetricRegressor(train)
    errors = [abs(model(s)[0] - s.sur) for s in _samples(50)]
    assert float(np.mean(errors)) < 0.03
    sur, smr = model.predict_scores("jpeg", [{"psnr": 45.0, "ssim": 0.9, "ms_ssim": 0.95, "gmsd": 0.05}])
    assert sur[0] > 0.9 and 0.0 <= smr[0] <= 1.0
    with pytest.raises(InputError, match="SUR proxy"):
        CheapMetricRegressor(train, metrics=("psnr", "vmaf"))
    with pytest.raises(InputError):
        model.predict_scores("vvc", [{"psnr": 30.0}])
