"""Behaviour every registered codec must have; new codecs are picked up from the registry."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

import codec_adapters
from codec_adapters.base import CodecAdapter
from sursmr import fidelity
from sursmr_core.errors import CodecTimeout, CodecUnavailableError, CorruptBitstreamError, InputError
from sursmr_core.levels import Availability

CODEC_NAMES = codec_adapters.list()
# tests that really encode: codecs that run an external encoder (not declared ``fast``) are slow tests
ENCODING = [pytest.param(name, marks=() if codec_adapters.get(name).fast else pytest.mark.slow) for name in CODEC_NAMES]


def adapter_or_skip(name: str, **kwargs: float) -> CodecAdapter:
    status = codec_adapters.get(name).availability()
    if not status.available:
        pytest.skip(f"{name} unavailable here: {status.reason}")
    return codec_adapters.create(name, **kwargs)


def test_registry_lists_the_three_codecs() -> None:
    assert {"jpeg", "bpg", "vvc"} <= set(CODEC_NAMES)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_declared_metadata_is_consistent(name: str) -> None:
    cls = codec_adapters.get(name)
    assert cls.name == name
    assert cls.levels.better in ("higher", "lower")
    assert cls.default_level in cls.levels
    assert cls.extension and not cls.extension.startswith(".")
    order = cls.levels.worst_to_best()
    assert len(order) == cls.levels.hi - cls.levels.lo + 1
    assert cls.levels.is_better(order[-1], order[0])


THREADED = [
    pytest.param(name, marks=pytest.mark.slow) for name in CODEC_NAMES if codec_adapters.get(name).threads_option
]


@pytest.mark.parametrize("name", THREADED)
def test_the_declared_threads_option_leaves_the_bitstream_alone(name: str) -> None:
    """The controller gives single encodes more threads on this promise: same bytes for 1, 2 and 3 threads."""
    assert THREADED, "bpg and vvc declare a threads option"
    adapter = adapter_or_skip(name)
    option = codec_adapters.get(name).threads_option
    assert option is not None and option in adapter.options
    rng = np.random.default_rng(3)
    # 5 rows of 64-px CTUs, so wavefront threads really split the picture
    ramp = np.linspace(0, 255, 320)[None, :, None] + 40 * np.sin(np.arange(288) / 9.0)[:, None, None]
    rgb = np.clip(ramp + rng.normal(0, 10, (288, 320, 3)), 0, 255).astype(np.uint8)
    for level in (adapter.default_level, adapter.levels.worst_to_best()[-8]):
        streams = {threads: adapter.encode(rgb, level, **{option: threads}) for threads in (1, 2, 3)}
        sizes = [len(v) for v in streams.values()]
        assert streams[1] == streams[2] == streams[3], f"{name} level {level}: bytes {sizes}"


@pytest.mark.parametrize("name", ENCODING)
@pytest.mark.parametrize("fixture", ["small_photo", "odd_photo"])
def test_round_trip_keeps_size(name: str, fixture: str, request: pytest.FixtureRequest) -> None:
    rgb = request.getfixturevalue(fixture)
    adapter = adapter_or_skip(name)
    data = adapter.encode(rgb, adapter.default_level)
    decoded = adapter.decode(data)
    assert decoded.shape == rgb.shape
    assert decoded.dtype == np.uint8
    # a default-quality encode must resemble its input
    assert fidelity.psnr(rgb, decoded) > 25.0


@pytest.mark.parametrize("name", ENCODING)
def test_quality_rises_and_bytes_fall_toward_better(name: str, small_photo: np.ndarray) -> None:
    adapter = adapter_or_skip(name)
    order = adapter.levels.worst_to_best()
    # six levels spread over the axis, worst first
    picks = [order[round(i * (len(order) - 1) / 5)] for i in range(6)]
    sizes, psnrs = [], []
    for level in picks:
        data = adapter.encode(small_photo, level)
        sizes.append(len(data))
        psnrs.append(fidelity.psnr(small_photo, adapter.decode(data)))
    rank = list(range(len(picks)))
    # overall trend (rare non-monotone steps allowed), and the ends strictly ordered
    assert spearmanr(rank, sizes).statistic >= 0.9, sizes
    assert spearmanr(rank, psnrs).statistic >= 0.9, psnrs
    assert sizes[-1] > sizes[0] and psnrs[-1] > psnrs[0]


@pytest.mark.parametrize("name", ENCODING)
def test_corrupt_bitstreams_raise_typed_errors(name: str, small_photo: np.ndarray) -> None:
    adapter = adapter_or_skip(name)
    garbage = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(CorruptBitstreamError):
        adapter.decode(garbage)
    valid = adapter.encode(small_photo, adapter.default_level)
    with pytest.raises(CorruptBitstreamError):
        adapter.decode(valid[: len(valid) // 3])
    with pytest.raises(InputError):
        adapter.decode(b"")


@pytest.mark.parametrize("name", ENCODING)
def test_encoder_timeout_is_typed_and_leaves_no_temp_file(
    name: str, small_photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    adapter = adapter_or_skip(name, timeout=1e-6)
    with pytest.raises(CodecTimeout):
        adapter.encode(small_photo, adapter.default_level)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_bad_levels_and_options_are_input_errors(name: str, small_photo: np.ndarray) -> None:
    adapter = adapter_or_skip(name)
    with pytest.raises(InputError, match="outside"):
        adapter.encode(small_photo, adapter.levels.hi + 1)
    with pytest.raises(InputError, match="unknown option"):
        adapter.encode(small_photo, adapter.default_level, no_such_option=1)
    with pytest.raises(InputError):
        adapter.encode(small_photo.astype(np.float32), adapter.default_level)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_unavailable_codec_raises_before_work(
    name: str, small_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = codec_adapters.get(name)
    monkeypatch.setattr(cls, "availability", classmethod(lambda c: Availability(False, "test says no")))
    with pytest.raises(CodecUnavailableError, match="test says no"):
        cls().encode(small_photo, cls.default_level)
