"""JPEG keeps full chroma at the top of its quality axis (subsampling "auto")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from codec_adapters.jpeg import JpegAdapter
from sursmr_core.errors import InputError

# Pillow's get_sampling: 0 = 4:4:4, 2 = 4:2:0
SAMPLING = {"4:4:4": 0, "4:2:0": 2}


def _sampling(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return int(JpegImagePlugin.get_sampling(im))


def _saturated() -> np.ndarray:
    """Red/blue stripes one pixel wide: what 4:2:0 cannot carry."""
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, 0::2, 0] = 230
    rgb[:, 1::2, 2] = 230
    return rgb


def test_auto_switches_to_full_chroma_at_the_declared_level() -> None:
    adapter = JpegAdapter()
    top = JpegAdapter.full_chroma_from
    assert adapter.options["subsampling"] == "auto"
    assert _sampling(adapter.encode(_saturated(), top - 1)) == SAMPLING["4:2:0"]
    assert _sampling(adapter.encode(_saturated(), top)) == SAMPLING["4:4:4"]
    assert _sampling(adapter.encode(_saturated(), 100)) == SAMPLING["4:4:4"]


def test_full_chroma_is_what_lifts_saturated_colour() -> None:
    """The reason for the switch: at the switch level 4:4:4 is far closer than 4:2:0 at quality 100."""
    adapter = JpegAdapter()
    rgb = _saturated().astype(float)
    err_420_q100 = np.abs(adapter.decode(adapter.encode(_saturated(), 100, subsampling="4:2:0")) - rgb).mean()
    err_auto = np.abs(adapter.decode(adapter.encode(_saturated(), JpegAdapter.full_chroma_from)) - rgb).mean()
    assert err_auto < 0.5 * err_420_q100


@pytest.mark.parametrize("fixed", ["4:2:0", "4:4:4"])
def test_an_explicit_subsampling_holds_at_every_level(fixed: str) -> None:
    adapter = JpegAdapter()
    for level in (30, JpegAdapter.full_chroma_from - 1, 100):
        assert _sampling(adapter.encode(_saturated(), level, subsampling=fixed)) == SAMPLING[fixed]
        assert JpegAdapter.subsampling_at(level, fixed) == fixed


def test_bytes_still_grow_across_the_switch() -> None:
    """The controller's search assumes bytes rise with level; the switch must not break that on a photo-like image."""
    rng = np.random.default_rng(0)
    base = np.cumsum(np.cumsum(rng.normal(0, 3, (96, 128, 3)), axis=0), axis=1)
    rgb = np.clip((base - base.min()) / np.ptp(base) * 255, 0, 255).astype(np.uint8)
    adapter = JpegAdapter()
    top = JpegAdapter.full_chroma_from
    sizes = [len(adapter.encode(rgb, q)) for q in (top - 2, top - 1, top, top + 1)]
    assert sizes == sorted(sizes)


def test_unknown_subsampling_is_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="auto, 4:4:4, 4:2:2, 4:2:0"):
        JpegAdapter().encode(_saturated(), 50, subsampling="4:1:1")
