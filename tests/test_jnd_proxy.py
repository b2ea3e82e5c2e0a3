"""Absolute JND-calibrated SUR proxy: identity, monotonicity, mild sets, re-fitting."""

from __future__ import annotations

import io

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
