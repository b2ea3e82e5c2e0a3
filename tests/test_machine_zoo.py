"""Every available machine of the zoo on real photos (each model loads once per test module).

Model tests run each available machine a few times on small images chosen to
hold content for it (a face, text, a cat) and check its rule on three
pairs: the image against a near-lossless JPEG (must be satisfied), against
a 16-px mosaic of itself (must not be), and a flat grey image against
itself (detectors, OCR and face machines cannot judge it). Each model loads
once per test module.

The pure matching maths and the declared rules are tested in ``test_machines.py``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from training.machines import MACHINES, Machine
from training.machines._kinds import (
    Detector,
    PerInstance,
    Segmenter,
    TextReader,
)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _mosaic(rgb: np.ndarray, block: int = 16) -> np.ndarray:
    """Each block×block tile replaced by its mean: the content is gone, the layout stays."""
    height, width = rgb.shape[:2]
    small = Image.fromarray(rgb).resize((max(1, width // block), max(1, height // block)), Image.Resampling.BOX)
    return np.asarray(small.resize((width, height), Image.Resampling.NEAREST), dtype=np.uint8)


def _text_image() -> np.ndarray:
    image = Image.new("RGB", (256, 96), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)  # Pillow's bundled FreeType font: same glyphs everywhere
    draw.text((10, 10), "Quick brown fox", fill=(10, 10, 10), font=font)
    draw.text((10, 50), "jumps 42 times", fill=(10, 10, 10), font=font)
    return np.asarray(image, dtype=np.uint8)


def _skimage(name: str) -> np.ndarray:
    return np.ascontiguousarray(getattr(skimage.data, name)(), dtype=np.uint8)


_CONTENT: dict[str, Callable[[], np.ndarray]] = {
    "face": lambda: np.ascontiguousarray(_skimage("astronaut")[0:300, 80:380]),  # face at ~(96, 76)-(186, 167)
    "people": lambda: _skimage("astronaut"),
    "cat": lambda: _skimage("chelsea"),
    "coffee": lambda: _skimage("coffee"),  # ImageNet classifiers are confident on it (espresso, p > 0.5)
    "text": _text_image,
}

# which test image holds content for each machine (machines not listed get only the generic checks)
CONTENT_FOR = {
    "efficientnet_lite0": "coffee",
    "open_nsfw": "face",
    "nudenet": "face",
    "haar_frontal_face": "face",
    "haar_eyes": "face",
    "hog_people": "people",
    "dlib_hog_face": "face",
    "dlib_landmarks68": "face",
    "dlib_face_embedding": "face",
    "rapidocr": "text",
    "tesseract": "text",
    "efficientnet_lite1": "coffee",
    "efficientnet_lite2": "coffee",
    "mtcnn_face": "face",
    "mtcnn_landmarks5": "face",
    "mediapipe_face": "face",
    "mediapipe_face_mesh": "face",
    "mediapipe_pose": "people",
    "mediapipe_selfie": "people",
    "rapidocr_text_boxes": "text",
}

MACHINE_NAMES = MACHINES.names()


class ZooRun:
    """Results of each machine on each test image, computed once per module."""

    def __init__(self) -> None:
        self.machines: dict[str, Machine] = {}
        self.images: dict[str, np.ndarray] = {}
        self.results: dict[tuple[str, str], Any] = {}

    def machine(self, name: str) -> Machine:
        cls = MACHINES.get(name)
        status = cls.availability()
        if not status.available:
            pytest.skip(f"{name} unavailable: {status.reason}")
        return self.machines.setdefault(name, cls())

    def image(self, key: str) -> np.ndarray:
        if key not in self.images:
            kind, _, variant = key.partition(":")
            source = np.full((96, 128, 3), 128, dtype=np.uint8) if kind == "grey" else _CONTENT[kind]()
            self.images[key] = {"": source, "q98": _jpeg(source, 98), "mosaic": _mosaic(source)}[variant]
        return self.images[key]

    def result(self, name: str, key: str) -> Any:
        if (name, key) not in self.results:
            self.results[(name, key)] = self.machine(name).analyse(self.image(key))
        return self.results[(name, key)]


@pytest.fixture(scope="module")
def zoo_run() -> ZooRun:
    return ZooRun()


def _content(name: str) -> str:
    if name not in CONTENT_FOR:
        pytest.skip(f"no test image declared for machine {name!r}")
    return CONTENT_FOR[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_machine_is_deterministic_picklable_and_agrees_with_itself(zoo_run: ZooRun, name: str) -> None:
    content = _content(name)
    first = zoo_run.result(name, content)
    again = zoo_run.machine(name).analyse(zoo_run.image(content))
    assert again == first
    assert pickle.loads(pickle.dumps(first)) == first  # results travel between label worker processes
    assert pickle.loads(pickle.dumps(zoo_run.machine(name))).name == name
    assert zoo_run.machine(name).judge(first, again) is True


@pytest.mark.slow
@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_machine_satisfied_by_near_lossless_jpeg(zoo_run: ZooRun, name: str) -> None:
    content = _content(name)
    original = zoo_run.result(name, content)
    assert original not in ((), ""), f"{name} found nothing on its test image; the test image is wrong"
    assert zoo_run.machine(name).applies(original), f"{name} does not apply to its test image; the test image is wrong"
    assert zoo_run.machine(name).judge(original, zoo_run.result(name, f"{content}:q98")) is True


@pytest.mark.slow
@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_machine_unsatisfied_by_destroyed_image(zoo_run: ZooRun, name: str) -> None:
    content = _content(name)
    verdict = zoo_run.machine(name).judge(zoo_run.result(name, content), zoo_run.result(name, f"{content}:mosaic"))
    assert verdict is False


@pytest.mark.slow
@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_machine_on_flat_grey(zoo_run: ZooRun, name: str) -> None:
    machine = zoo_run.machine(name)
    grey = zoo_run.result(name, "grey:")
    verdict = machine.judge(grey, grey)
    if isinstance(machine, Detector | TextReader | PerInstance | Segmenter):
        assert verdict is None  # nothing to detect or read: the task does not apply, never "satisfied"
    else:
        assert verdict in (None, True)  # a classifier votes only when confident, and then agrees with itself
