"""Full-reference metric registry: directions, availability, behaviour on a real photo."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import photo_crop
from PIL import Image

from sursmr_core.errors import InputError, LabellerUnavailableError, ModelError, UnsupportedImageError
from training.metrics import METRICS
from training.metrics import butteraugli as butteraugli_module
from training.metrics.piq_metrics import scales_that_fit


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


@pytest.fixture(scope="module")
def jpeg_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reference = photo_crop(64, 96)
    return reference, jpeg(reference, 95), jpeg(reference, 5)


def test_registry_has_ten_runnable_metrics_with_directions() -> None:
    available = [name for name, cls in METRICS.items() if cls.availability().available]
    assert len(available) >= 10, available
    for name, cls in METRICS.items():
        assert isinstance(cls.lower_is_better, bool), name
        assert cls.name == name


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_prefers_identical_then_light_then_heavy(
    name: str, jpeg_pair: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    cls = METRICS.get(name)
    availability = cls.availability()
    if not availability.available:
        pytest.skip(f"{name}: {availability.reason}")
    reference, light, heavy = jpeg_pair
    metric = cls()
    same, q95, q5 = (metric.score(reference, d) for d in (reference, light, heavy))
    sign = -1.0 if cls.lower_is_better else 1.0  # sign * score: higher is better
    if not cls.reference_free:  # a no-reference score of the reference itself need not be the best
        assert sign * same >= sign * q95 - 1e-6, (same, q95)
    assert sign * q95 > sign * q5, (q95, q5)
    assert metric.score(reference, light) == q95  # deterministic


def test_unavailable_deep_metric_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SURSMR_LPIPS_VGG_WEIGHTS", raising=False)
    cls = METRICS.get("lpips_vgg")
    availability = cls.availability()
    assert cls.needs_weights_file
    assert not availability.available
    assert "SURSMR_LPIPS_VGG_WEIGHTS=" in (availability.reason or "")
    image = photo_crop(64, 96)
    with pytest.raises(LabellerUnavailableError, match="SURSMR_LPIPS_VGG_WEIGHTS"):
        cls().score(image, image)


@pytest.mark.slow
def test_lpips_alex_loads_only_from_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from training.metrics.deep_metrics import ALEX_CHANNELS, alexnet_features

    torch.manual_seed(0)
    backbone, heads = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
    # random weights: this checks the loading path and plumbing, not LPIPS' calibration
    torch.save(alexnet_features().state_dict(), backbone)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(ALEX_CHANNELS)}, heads)
    monkeypatch.setenv("SURSMR_ALEXNET_WEIGHTS", str(backbone))
    monkeypatch.setenv("SURSMR_LPIPS_ALEX_WEIGHTS", str(heads))
    cls = METRICS.get("lpips_alex")
    assert cls.availability().available
    reference = photo_crop(64, 96)
    metric = cls()
    assert metric.score(reference, reference) == pytest.approx(0.0, abs=1e-6)
    assert metric.score(reference, jpeg(reference, 5)) > 0.0

    torch.save({"lin0.model.1.weight": torch.rand(1, 3, 1, 1)}, heads)
    with pytest.raises(ModelError, match="missing LPIPS head"):
        cls().score(reference, reference)


def test_too_small_and_mismatched_inputs_are_refused() -> None:
    tiny = photo_crop(17, 33)
    vif = METRICS.get("vif_p")()
    with pytest.raises(UnsupportedImageError, match="at least 41"):
        vif.score(tiny, tiny)
    with pytest.raises(InputError, match="differ in size"):
        METRICS.get("ssim")().score(photo_crop(32, 32), photo_crop(32, 40))


def test_multi_scale_count_adapts_to_small_images() -> None:
    assert scales_that_fit(161, 400) == 5
    assert scales_that_fit(160, 400) == 4
    assert scales_that_fit(64, 96) == 3
    assert scales_that_fit(21, 21) == 2
    small = photo_crop(64, 96)
    assert METRICS.get("ms_ssim")().score(small, small) == pytest.approx(1.0, abs=1e-5)


def test_both_butteraugli_summaries_share_one_tool_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def fake_run(reference: np.ndarray, distorted: np.ndarray) -> object:
        runs.append(1)
        return butteraugli_module.ButteraugliDistances(max=float(distorted.mean()), norm3=1.0)

    from training.metrics._pair_memo import PairMemo

    monkeypatch.setattr(butteraugli_module, "butteraugli_path", lambda: "/bin/true")
    monkeypatch.setattr(butteraugli_module, "_MEMO", PairMemo(fake_run))
    reference = photo_crop(32, 32)
    darker = reference // 2
    maximum, norm3 = METRICS.get("butteraugli_max")(), METRICS.get("butteraugli_3norm")()
    assert maximum.score(reference, darker) == pytest.approx(float(darker.mean()))
    assert norm3.score(reference, darker) == 1.0
    assert len(runs) == 1
    norm3.score(reference, reference)  # another pair: another run
    assert len(runs) == 2


def test_both_vmaf_models_share_one_ffmpeg_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.metrics import vmaf as vmaf_module
    from training.metrics._pair_memo import PairMemo

    if not METRICS.get("vmaf").availability().available:
        pytest.skip("ffmpeg with libvmaf is not available here")
    real_run_tool = vmaf_module.run_tool
    runs: list[int] = []

    def counting_run_tool(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real_run_tool(*args, **kwargs)

    monkeypatch.setattr(vmaf_module, "run_tool", counting_run_tool)
    monkeypatch.setattr(vmaf_module, "_MEMO", PairMemo(vmaf_module._run_vmaf))
    reference = photo_crop(64, 64)
    blurred = np.asarray(Image.fromarray(reference).resize((32, 32)).resize((64, 64)))
    plain, neg = METRICS.get("vmaf")().score(reference, blurred), METRICS.get("vmaf_neg")().score(reference, blurred)
    assert len(runs) == 1
    assert 0 < neg <= plain < 97.5  # NEG removes enhancement gain, so it never scores above plain VMAF here


def test_butteraugli_output_parsing_and_absence(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = butteraugli_module.parse_butteraugli_output("13.6085958481\n3-norm: 6.640974\n")
    assert (parsed.max, parsed.norm3) == (13.6085958481, 6.640974)
    monkeypatch.setattr(butteraugli_module, "butteraugli_path", lambda: None)
    cls = METRICS.get("butteraugli_max")
    availability = cls.availability()
    assert not availability.available and "libjxl-devtools" in (availability.reason or "")
    assert cls.jnd_unit == "butteraugli"
    image = photo_crop(32, 32)
    with pytest.raises(LabellerUnavailableError):
        cls().score(image, image)
