"""Absolute JND-calibrated SUR proxy: identity, monotonicity, mild sets, re-fitting."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from conftest import photo_crop
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sursmr_core.errors import InputError
from training.labels.jnd_proxy import (
    DEFAULT_JND_PROXY,
    JndProxyConfig,
    LogNormalThreshold,
    fit_from_jnd_points,
    jnd_metric_values,
    jnd_sur,
    per_metric_sur,
    usable_scales,
)
from training.labels.pseudo_sur import eq3_pseudo_sur
from training.metrics import METRICS

IDENTITY = {s.metric: s.identity_value for s in DEFAULT_JND_PROXY.scales}


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def test_identity_values_give_sur_one() -> None:
    assert float(jnd_sur(IDENTITY)) == 1.0
    for sur in per_metric_sur(IDENTITY).values():
        assert float(sur) == 1.0


def test_scales_agree_with_the_metric_registry() -> None:
    for scale in DEFAULT_JND_PROXY.scales:
        cls = METRICS.get(scale.metric)
        assert cls.lower_is_better == scale.lower_is_better
        assert cls.jnd_unit is not None


def test_anchor_is_reproduced() -> None:
    threshold = LogNormalThreshold.from_anchor(distance=6.0, share_noticing=0.75, log_sigma=0.5)
    assert float(threshold.share_noticing(6.0)) == pytest.approx(0.75)
    assert float(threshold.share_noticing(0.0)) == 0.0


@pytest.mark.parametrize("scale", DEFAULT_JND_PROXY.scales, ids=lambda s: s.metric)
def test_sur_is_non_increasing_in_each_metric_distance(scale: object) -> None:
    from training.labels.jnd_proxy import JndScale

    assert isinstance(scale, JndScale)
    distances = np.linspace(0.0, 60.0, 601)
    values = scale.identity_value + distances if scale.lower_is_better else scale.identity_value - distances
    sur = jnd_sur({**IDENTITY, scale.metric: values})
    assert sur[0] == 1.0
    assert np.all(np.diff(sur) <= 1e-12)
    assert sur[-1] < sur[0]


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(0.0, 20.0),
    b=st.floats(0.0, 20.0),
    metric=st.sampled_from([s.metric for s in DEFAULT_JND_PROXY.scales]),
)
def test_more_distortion_never_raises_sur(a: float, b: float, metric: str) -> None:
    scale = DEFAULT_JND_PROXY.scale(metric)
    low, high = sorted((a, b))
    step = 1.0 if scale.lower_is_better else -1.0
    less = jnd_sur({**IDENTITY, metric: scale.identity_value + step * low})
    more = jnd_sur({**IDENTITY, metric: scale.identity_value + step * high})
    assert float(more) <= float(less) + 1e-12


def test_real_photo_against_itself_and_a_mild_level_set() -> None:
    reference = photo_crop(64, 96)
    if not usable_scales(64, 96):
        pytest.skip("no JND-calibrated metric (butteraugli, VMAF) can run here")
    assert float(jnd_sur(jnd_metric_values(reference, reference))) == pytest.approx(1.0, abs=1e-9)
    qualities = (90, 92, 95)
    values = [jnd_metric_values(reference, _jpeg(reference, q)) for q in qualities]
    sur = np.array([float(jnd_sur(v)) for v in values])
    assert 0.3 < sur.min() <= sur.max() <= 1.0, sur  # absolute: the worst mild level stays well above 0
    # the relative Eq. 3 proxy on the same set sends its worst level to 0 by construction
    relative = eq3_pseudo_sur(
        {"butteraugli_3norm": [v["butteraugli_3norm"] for v in values]}, {"butteraugli_3norm": True}
    )
    assert relative.min() == 0.0


def test_fit_recovers_a_known_population() -> None:
    rng = np.random.default_rng(0)
    thresholds = np.exp(rng.normal(np.log(12.0), 0.3, size=4000))  # SSIMULACRA2 distance units
    config = fit_from_jnd_points("ssimulacra2", 100.0 - thresholds)
    fitted = config.scale("ssimulacra2").threshold
    assert fitted.median == pytest.approx(12.0, rel=0.03)
    assert fitted.log_sigma == pytest.approx(0.3, rel=0.05)
    assert "fitted from 4000" in config.scale("ssimulacra2").source
    assert DEFAULT_JND_PROXY.scale("ssimulacra2").threshold.median != fitted.median  # input untouched
    assert config.scale("vmaf") == DEFAULT_JND_PROXY.scale("vmaf")


def test_fit_and_config_refuse_bad_input() -> None:
    with pytest.raises(InputError, match="identity value"):
        fit_from_jnd_points("butteraugli_3norm", [0.0, 1.2, 0.8])
    with pytest.raises(InputError, match="at least 2"):
        fit_from_jnd_points("vmaf", [90.0])
    with pytest.raises(InputError, match="not in this JND proxy"):
        fit_from_jnd_points("ssim", [0.9, 0.8])
    scale = DEFAULT_JND_PROXY.scales[0]
    with pytest.raises(InputError, match="distinct"):
        JndProxyConfig(scales=(scale, scale))
    with pytest.raises(InputError, match="no JND-calibrated metric"):
        jnd_sur({"ssim": 0.9})


# --- named calibrations and the fit against published JND points -------------------------------------


def test_named_proxies_keep_strict_and_default_to_konjnd() -> None:
    from training.labels.jnd_proxy import DEFAULT_JND_PROXY_NAME, JND_PROXIES, STRICT_JND_PROXY, jnd_proxy

    assert set(JND_PROXIES.names()) >= {"strict", "konjnd"}
    assert DEFAULT_JND_PROXY.name == DEFAULT_JND_PROXY_NAME == "konjnd"
    strict = jnd_proxy("strict")
    assert strict is STRICT_JND_PROXY
    # today's constants, unchanged: butteraugli 1.0 and SSIMULACRA2 70 are the median observer's thresholds,
    # 6 VMAF points are noticed by 75 %
    assert strict.scale("butteraugli_3norm").threshold.median == 1.0
    assert strict.scale("ssimulacra2").threshold.median == 30.0
    assert float(strict.scale("vmaf").threshold.share_noticing(6.0)) == pytest.approx(0.75)
    assert [s.metric for s in DEFAULT_JND_PROXY.scales] == [s.metric for s in strict.scales]
    with pytest.raises(InputError, match="konjnd"):
        jnd_proxy("lenient")


@pytest.mark.parametrize(
    ("sur", "expected", "censored"),
    [
        ([0.1, 0.3, 0.7, 0.9], 50.0, None),  # 0.5 is halfway between 0.3 @ 40 and 0.7 @ 60
        ([0.1, 0.2, 0.4, 0.6], 70.0, None),  # halfway between 0.4 @ 60 and 0.6 @ 80
        # from the best end: 0.45 @ 60 → 0.9 @ 80; the bump at 20 is ignored
        ([0.6, 0.2, 0.45, 0.9], 80.0 - 20.0 * (0.9 - 0.5) / (0.9 - 0.45), None),
        ([0.6, 0.7, 0.8, 0.9], 20.0, "worse"),  # never below 0.5: the point lies at or below the worst level
        ([0.0, 0.1, 0.2, 0.4], 80.0, "better"),  # never reaches 0.5
    ],
)
def test_jnd_point_interpolates_from_the_best_end(sur: list[float], expected: float, censored: str | None) -> None:
    from training.labels.jnd_proxy import jnd_point

    point = jnd_point([20, 40, 60, 80], sur)
    assert point.level == pytest.approx(expected)
    assert point.censored == censored


def test_jnd_point_on_a_qp_axis_and_bad_input() -> None:
    from training.labels.jnd_proxy import jnd_point

    # BPG-like: worst level first means the highest QP first; SUR 0.2 @ 40, 0.8 @ 30 → 0.5 at QP 35
    assert jnd_point([40, 30, 20], [0.2, 0.8, 1.0]).level == pytest.approx(35.0)
    with pytest.raises(InputError, match="≥ 2 levels"):
        jnd_point([20], [0.5])
    with pytest.raises(InputError, match="target"):
        jnd_point([20, 40], [0.2, 0.8], target=1.0)


def _synthetic_images(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """butteraugli-like distances d_i(q) = a_i · exp(−q / 25) on a JPEG-like grid 20..95."""
    rng = np.random.default_rng(seed)
    levels = np.arange(20.0, 96.0, 5.0)
    scales = np.exp(rng.normal(math.log(20.0), 0.4, size=n))
    return [a * np.exp(-levels / 25.0) for a in scales], [levels] * n


def test_fit_threshold_median_recovers_the_median_that_produced_the_points() -> None:
    from training.labels.jnd_proxy import fit_threshold_median, median_jnd_level

    values, grids = _synthetic_images(41)
    scale = DEFAULT_JND_PROXY.scale("butteraugli_3norm")
    # With distance a·exp(−q/25), the 50 % point of image i is q_i = 25·ln(a_i / m): the median of q_i is
    # 25·ln(median(a) / m). Ask for a median level of 55 and solve for m by hand.
    a_median = float(np.median([v[0] * math.exp(20.0 / 25.0) for v in values]))
    expected = a_median / math.exp(55.0 / 25.0)
    fitted = fit_threshold_median(scale, values, grids, 55.0, quality_increases_with_level=True)
    # interpolating exp(−q/25) linearly between grid points bends the curve slightly: 2 % tolerance
    assert fitted.threshold.median == pytest.approx(expected, rel=0.02)
    assert fitted.threshold.log_sigma == scale.threshold.log_sigma
    assert median_jnd_level(fitted, values, grids) == pytest.approx(55.0, abs=1e-3)
    # more tolerant observers (larger median) move the median point to worse quality, and vice versa
    assert median_jnd_level(scale, values, grids) != pytest.approx(55.0, abs=1.0)


def test_fit_threshold_median_on_a_qp_axis_and_out_of_grid_targets() -> None:
    from training.labels.jnd_proxy import fit_threshold_median, median_jnd_level

    values, grids = _synthetic_images(21, seed=3)
    # the same curves on a QP-like axis that runs the other way: level = 100 − q
    qp_grids = [100.0 - g for g in grids]
    scale = DEFAULT_JND_PROXY.scale("butteraugli_3norm")
    fitted = fit_threshold_median(scale, values, qp_grids, 45.0, quality_increases_with_level=False)
    assert median_jnd_level(fitted, values, qp_grids) == pytest.approx(45.0, abs=1e-3)
    with pytest.raises(InputError, match="widen the grids"):
        fit_threshold_median(scale, values, grids, 99.0, quality_increases_with_level=True)


def test_recipes_name_their_calibration_and_old_recipes_read_as_strict() -> None:
    from training.datasets.recipe import DEFAULT_RECIPE, Recipe

    assert DEFAULT_RECIPE.jnd_proxy_name == "konjnd"
    data = DEFAULT_RECIPE.to_dict()
    assert data["jnd_proxy_name"] == "konjnd"
    assert Recipe.from_dict(data).jnd_proxy_name == "konjnd"
    del data["jnd_proxy_name"]  # a recipe written before calibrations had names was labelled with "strict"
    assert Recipe.from_dict(data).jnd_proxy_name == "strict"


def test_fit_log_sigma_recovers_the_spread_from_a_sur_curve_width() -> None:
    from training.labels.jnd_proxy import JndProxyConfig, fit_log_sigma, median_sur_width, with_log_sigma

    rng = np.random.default_rng(5)
    levels = np.arange(1.0, 101.0)  # fine grid: linear interpolation of SUR barely bends it
    values = [{"butteraugli_3norm": a * np.exp(-levels / 25.0)} for a in np.exp(rng.normal(3.0, 0.3, size=15))]
    grids = [levels] * len(values)
    config = JndProxyConfig(scales=(DEFAULT_JND_PROXY.scale("butteraugli_3norm"),))
    # SUR = 1 − Φ((ln d − ln m)/σ) with ln d = ln a − q/25: SUR 0.25 and 0.75 lie 2·0.6745·σ·25 = 33.72·σ apart
    # in q, whatever a and m; a width of 10 quality steps means σ = 10 / 33.72 = 0.2966
    sigma = fit_log_sigma(config, values, grids, 10.0)
    assert sigma == pytest.approx(10.0 / (2 * 0.6745 * 25.0), rel=0.03)
    assert median_sur_width(with_log_sigma(config, sigma), values, grids) == pytest.approx(10.0, rel=1e-3)
    # on another axis (q / 25) the same curves are 1.349·σ wide
    assert fit_log_sigma(config, values, grids, 0.4, axis=lambda q: q / 25.0) == pytest.approx(0.4 / 1.349, rel=0.03)
    with pytest.raises(InputError, match="outside what spreads"):
        fit_log_sigma(config, values, grids, 0.01)  # narrower than a 1-step grid can resolve at σ = 0.01


def test_konjnd_registers_the_fitted_constants() -> None:
    from training.labels.jnd_proxy import KONJND_FITTED_LOG_SIGMA, KONJND_FITTED_MEDIANS, jnd_proxy

    konjnd = jnd_proxy("konjnd")
    for scale in konjnd.scales:
        assert scale.threshold.median == KONJND_FITTED_MEDIANS[scale.metric]
        assert scale.threshold.log_sigma == KONJND_FITTED_LOG_SIGMA
        assert "fitted" in scale.source
    # more tolerant than strict: each metric's median observer accepts a larger distance
    strict = jnd_proxy("strict")
    assert all(s.threshold.median > strict.scale(s.metric).threshold.median for s in konjnd.scales)
