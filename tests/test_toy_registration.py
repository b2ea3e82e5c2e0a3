"""Adding a codec, a model (and its backbone), a metric or a machine is one new file in its package.

Each test writes a toy one into a temporary folder appended to the real
package's search path (as if the file had been added to the package), and
checks that the registry and the CLI listing find it by name with nothing
else imported or edited. ``Registry.scope()`` undoes the registration after.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import json_lines, photo_crop
from PIL import Image

import codec_adapters
from sursmr.cli import main
from sursmr_core.registry import Registry


@contextmanager
def added_module(package_name: str, folder: Path, module: str, source: str) -> Iterator[None]:
    """``folder/module.py`` holding ``source`` is found as ``package_name.module`` inside the block."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    package = importlib.import_module(package_name)
    package.__path__.append(str(folder))
    try:
        yield
    finally:
        package.__path__.remove(str(folder))
        sys.modules.pop(f"{package_name}.{module}", None)


@contextmanager
def toy_files(registries: list[Registry[Any]], package: str, folder: Path, files: dict[str, str]) -> Iterator[None]:
    with ExitStack() as stack:
        # scopes first: they discover the real entries before the toy files exist
        for registry in registries:
            stack.enter_context(registry.scope())
        for module, source in files.items():
            stack.enter_context(added_module(package, folder, module, source))
        yield


TOY_CODEC = """
    from typing import Any

    import numpy as np

    from codec_adapters import register
    from codec_adapters.base import CodecAdapter
    from sursmr_core.imaging import RGBImage
    from sursmr_core.levels import LevelAxis


    @register
    class ToyCodec(CodecAdapter):
        \"\"\"Keeps the top ``level`` bits of every sample; level 8 is lossless.\"\"\"

        name = "toy"
        extension = "toy"
        levels = LevelAxis(1, 8, "higher")
        default_level = 6
        fast = True
        description = "toy codec of a registration test"

        def _encode(self, rgb: RGBImage, level: int, options: dict[str, Any]) -> bytes:
            height, width, _ = rgb.shape
            kept = (rgb >> (8 - level)) << (8 - level)
            return np.array([height, width], dtype="<u4").tobytes() + kept.tobytes()

        def _decode(self, data: bytes) -> RGBImage:
            height, width = (int(v) for v in np.frombuffer(data[:8], dtype="<u4"))
            return np.frombuffer(data[8:], dtype=np.uint8).reshape(height, width, 3).copy()
"""


def test_a_codec_in_its_own_file_is_listed_and_swept(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(photo_crop(32, 48)).save(image)
    with toy_files([codec_adapters.CODECS], "codec_adapters", tmp_path / "codecs", {"toy_codec": TOY_CODEC}):
        listed = CliRunner().invoke(main, ["codecs", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["name"]: row for row in json_lines(listed.stdout)}
        assert rows["toy"]["levels"] == [1, 8] and rows["toy"]["available"] is True
        assert {"jpeg", "bpg", "vvc"} <= set(rows)
        swept = CliRunner().invoke(
            main, ["sweep", str(image), "--codec", "toy", "--levels", "4,8", "--jobs", "1", "--json", "-q"]
        )
        assert swept.exit_code == 0, swept.output
        levels = {row["level"]: row for row in json_lines(swept.stdout)}
        # level 8 keeps every bit: lossless, infinite PSNR
        assert set(levels) == {4, 8} and levels[8]["psnr"] == "inf" and 20 < levels[4]["psnr"] < 60
    assert "toy" not in codec_adapters.list()


TOY_BACKBONE = """
    from sursmr.models.backbones import BACKBONES, BackboneSpec

    BACKBONES.register(
        BackboneSpec(
            name="toy_backbone",
            timm_name="test_efficientnet",
            default_stages=(1, 2, 3, 4),
            description="toy backbone of a registration test",
        )
    )
"""

# the module name sorts before the backbone's: discovery must still find the backbone by name
TOY_MODEL = """
    from sursmr.models.registry import get_config, register_model

    register_model(
        get_config("sursmr_tiny").with_overrides(
            name="toy_model", backbone="toy_backbone", description="toy model of a registration test"
        )
    )
"""


MODEL_FILES = {"toy_backbone": TOY_BACKBONE, "model_toy": TOY_MODEL}


def test_a_model_and_a_backbone_each_in_its_own_file_are_found_and_built(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from sursmr.models import BACKBONES, MODELS, create_model, list_models

    with toy_files([MODELS, BACKBONES], "sursmr.models", tmp_path / "models", MODEL_FILES):
        assert "toy_model" in list_models() and "sursmr_tiny" in list_models()
        assert BACKBONES.get("toy_backbone").timm_name == "test_efficientnet"
        net = create_model("toy_model").eval()
        with torch.inference_mode():
            scores = net(torch.zeros(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
        assert tuple(scores.shape) == (1, 2)
    assert "toy_model" not in MODELS and "toy_backbone" not in BACKBONES


@pytest.mark.slow  # `sursmr models` sizes every registered network, the paper's included
def test_a_model_in_its_own_file_is_listed_by_the_cli(tmp_path: Path) -> None:
    from sursmr.models import BACKBONES, MODELS

    with toy_files([MODELS, BACKBONES], "sursmr.models", tmp_path / "models", MODEL_FILES):
        listed = CliRunner().invoke(main, ["models", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["name"]: row for row in json_lines(listed.stdout)}
        assert rows["toy_model"]["backbone"] == "toy_backbone" and "sursmr_tiny" in rows


TOY_METRIC = """
    import numpy as np

    from sursmr_core.imaging import RGBImage
    from training.metrics.base import METRICS, Metric


    @METRICS.register
    class ToyMae(Metric):
        \"\"\"Mean absolute difference over all samples, in 8-bit code values.\"\"\"

        name = "toy_mae"
        lower_is_better = True
        description = "toy metric of a registration test"

        def score(self, reference: RGBImage, distorted: RGBImage) -> float:
            return float(np.abs(reference.astype(np.float64) - distorted).mean())
"""


def test_a_metric_in_its_own_file_is_listed_and_labels(tmp_path: Path) -> None:
    from training.cli import main as train_main
    from training.labels.pseudo_sur import pseudo_sur_labels
    from training.metrics import METRICS

    reference = photo_crop(32, 48)
    versions = [reference, (reference // 16) * 16, (reference // 64) * 64]
    with toy_files([METRICS], "training.metrics", tmp_path / "metrics", {"toy_metric": TOY_METRIC}):
        listed = CliRunner().invoke(train_main, ["labellers", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["name"]: row for row in json_lines(listed.stdout) if row["kind"] == "metric"}
        assert rows["toy_mae"]["direction"] == "lower is better" and "psnr" in rows
        # the label code takes the direction from the registry: the least distorted version is the best
        labels = pseudo_sur_labels(reference, versions, ["toy_mae"])
        assert labels.tolist() == [1.0, pytest.approx(labels[1]), 0.0] and 0 < labels[1] < 1
    assert "toy_mae" not in METRICS


TOY_MACHINE = """
    from sursmr_core.imaging import RGBImage
    from training.machines.base import MACHINES, Machine


    @MACHINES.register
    class ToyBrightness(Machine):
        \"\"\"Which of 8 brightness buckets the image mean falls in.\"\"\"

        name = "toy_brightness"
        task = "classification"
        rule = "satisfied when the mean brightness bucket (of 8) is unchanged"

        def analyse(self, rgb: RGBImage) -> int:
            return int(rgb.mean() // 32)

        def satisfied(self, original: int, compressed: int) -> bool:
            return original == compressed
"""


def test_a_machine_in_its_own_file_is_listed_and_judges(tmp_path: Path) -> None:
    from training.cli import main as train_main
    from training.labels.smr import smr_from_verdicts, zoo
    from training.machines import MACHINES

    photo = photo_crop(32, 48)
    with toy_files([MACHINES], "training.machines", tmp_path / "machines", {"toy_machine": TOY_MACHINE}):
        listed = CliRunner().invoke(train_main, ["labellers", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["name"]: row for row in json_lines(listed.stdout) if row["kind"] == "machine"}
        assert rows["toy_brightness"]["task"] == "classification" and "bucket" in rows["toy_brightness"]["rule"]
        (machine,) = zoo(["toy_brightness"])
        original = machine.analyse(photo)
        verdicts = {
            "same": machine.judge(original, machine.analyse(photo)),
            "black": machine.judge(original, machine.analyse(np.zeros_like(photo))),
        }
        assert smr_from_verdicts(verdicts, min_applicable=1) == 0.5
    assert "toy_brightness" not in MACHINES
