"""Shared fixtures: small real photos (no downloads) and a clean temp dir."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "sursmr" / "samples" / "astronaut.png"


def pytest_runtest_setup(item: pytest.Item) -> None:
    # test tensors are tiny: one intra-op thread avoids thread start-up and oversubscription
    # (several pytest workers or other jobs on the same cores); results do not depend on it
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def sursmr_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported ONNX graphs go to a folder of this test session, never to the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("sursmr-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SURSMR_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def pillow_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's bomb limit is process-global and ``load_image`` raises it to ours: restore it after each test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def sample_rgb() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def photo_crop(height: int, width: int, top: int = 40, left: int = 120) -> np.ndarray:
    """A crop of the bundled sample photo, C-contiguous uint8 RGB."""
    return np.ascontiguousarray(sample_rgb()[top : top + height, left : left + width])


def photo_768x512() -> np.ndarray:
    """The sample photo resized to 768x768 and centre-cropped to 768x512 (W x H)."""
    with Image.open(SAMPLE) as im:
        big = im.convert("RGB").resize((768, 768), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(big, dtype=np.uint8)[128:640])


@pytest.fixture
def small_photo() -> np.ndarray:
    """64x96 (H x W) crop of a real photo: fast to encode with every codec."""
    return photo_crop(64, 96)


@pytest.fixture
def odd_photo() -> np.ndarray:
    """33 wide, 17 high: odd sizes must round-trip exactly."""
    return photo_crop(17, 33)


@pytest.fixture
def photo_png(tmp_path: Path, small_photo: np.ndarray) -> Path:
    """``small_photo`` saved as a PNG file (CLI input)."""
    path = tmp_path / "photo.png"
    Image.fromarray(small_photo).save(path)
    return path


def json_lines(text: str) -> list[dict[str, object]]:
    """The JSON objects of a ``--json`` CLI output, one per non-empty line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """Two small real-photo sources (different crops of the bundled sample)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo_crop(96, 128, top=0, left=0)).save(folder / "a.png")
    Image.fromarray(photo_crop(96, 128, top=200, left=250)).save(folder / "b.png")
    return folder
