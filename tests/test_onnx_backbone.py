"""The ONNX Runtime backbone: torch's predictions, a reused and self-repairing cache, typed refusals."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import codec_adapters
import sursmr.models.onnx_backbone as onnx_backbone
import sursmr.predictor
from sursmr.models import create_model
from sursmr.models.onnx_backbone import OnnxBackbone, RuntimeUnavailableError, use_runtime
from sursmr.models.weights import WEIGHTS_DIR
from sursmr.predictor import DEFAULT_MODEL, Predictor
from sursmr_core.errors import InputError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SHIPPED = WEIGHTS_DIR / f"{DEFAULT_MODEL}.safetensors"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SURSMR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SURSMR_RUNTIME", raising=False)
    yield tmp_path / "cache" / "onnx"


def _tiny(runtime: str | None = None) -> Predictor:
    torch.manual_seed(0)
    net = create_model("sursmr_tiny_stats", input_mode="native", input_size=64)
    return Predictor.from_model(net, channels_last=True, fuse=True, runtime=runtime)


def _pair(height: int, width: int) -> tuple[np.ndarray, list[np.ndarray]]:
    from conftest import photo_crop

    reference = photo_crop(height, width, top=100, left=150)
    jpeg = codec_adapters.create("jpeg")
    return reference, [jpeg.decode(jpeg.encode(reference, q)) for q in (15, 60, 92)]


def _scores(predictor: Predictor, reference: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    return np.array([(p.sur, p.smr) for p in predictor.predict(reference, candidates)])


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.is_file(), reason=f"no shipped weights at {SHIPPED}")
def test_shipped_model_predicts_the_same_with_onnx(cache: Path) -> None:
    by_onnx = sursmr.predictor.load(DEFAULT_MODEL, "cpu", runtime="onnx")
    by_torch = sursmr.predictor.load(DEFAULT_MODEL, "cpu", runtime="torch")
    assert by_onnx.runtime == "onnx" and isinstance(by_onnx.model.backbone, OnnxBackbone)
    assert by_torch.runtime == "torch" and not isinstance(by_torch.model.backbone, OnnxBackbone)
    for height, width in ((256, 256), (256, 512)):
        reference, candidates = _pair(height, width)
        onnx_scores, torch_scores = _scores(by_onnx, reference, candidates), _scores(by_torch, reference, candidates)
        assert float(np.abs(onnx_scores - torch_scores).max()) <= 1e-4
        assert float(np.ptp(torch_scores[:, 0])) > 0.05  # the candidates differ: equal scores are not trivially equal
    # the default on the CPU is ONNX Runtime
    assert sursmr.predictor.load(DEFAULT_MODEL, "cpu").runtime == "onnx"


def test_tiny_network_features_and_scores_equal_torch(cache: Path) -> None:
    by_torch, by_onnx = _tiny("torch"), _tiny("onnx")
    assert by_onnx.runtime == "onnx" and by_torch.runtime == "torch"
    inputs = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want, got = by_torch.model.reference_features(inputs), by_onnx.model.reference_features(inputs)
    assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    # backbone features come channels-last, as the torch network's do (the stats head is slow on mixed layouts)
    assert all(g.is_contiguous(memory_format=torch.channels_last) for g in got[:-1])
    for g, w in zip(got, want, strict=True):
        assert float((g - w).abs().max()) <= 1e-4 * max(1.0, float(w.abs().max()))
    reference, candidates = _pair(64, 128)
    np.testing.assert_allclose(
        _scores(by_onnx, reference, candidates), _scores(by_torch, reference, candidates), atol=1e-4
    )
    # another input size than the exported one runs in torch, with the same features
    odd = torch.rand(2, 3, 48, 48)
    with torch.inference_mode():
        for g, w in zip(by_onnx.model.backbone(odd), by_torch.model.backbone(odd), strict=True):
            assert torch.allclose(g, w, atol=1e-5)


def test_second_load_reuses_the_cached_graph(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny("onnx")
    (path,) = cache.glob("backbone-*.onnx")
    before = path.stat()

    def no_export(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("exported again despite a cached graph")

    monkeypatch.setattr(onnx_backbone, "export_backbone", no_export)
    again = _tiny("onnx")
    assert again.runtime == "onnx" and again.model.backbone.path == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(cache.iterdir()) == [path]  # no temporary files left behind


def test_other_weights_get_another_graph(cache: Path) -> None:
    first = _tiny("onnx")
    torch.manual_seed(1)
    other = Predictor.from_model(
        create_model("sursmr_tiny_stats", input_mode="native", input_size=64), fuse=True, runtime="onnx"
    )
    assert first.model.backbone.path != other.model.backbone.path
    assert len(list(cache.glob("backbone-*.onnx"))) == 2


@pytest.mark.parametrize("damage", [b"", b"not a protobuf at all" * 10])
def test_a_corrupt_cache_file_is_rebuilt(cache: Path, damage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    good = _tiny("onnx")
    (path,) = cache.glob("backbone-*.onnx")
    intact = path.read_bytes()
    path.write_bytes(damage)
    rebuilt = _tiny("onnx")
    assert rebuilt.runtime == "onnx"
    assert path.read_bytes() == intact
    assert "exporting it again" in caplog.text
    reference, candidates = _pair(64, 64)
    np.testing.assert_array_equal(_scores(rebuilt, reference, candidates), _scores(good, reference, candidates))


def test_a_cached_graph_of_other_weights_is_rebuilt(cache: Path) -> None:
    _tiny("onnx")
    (path,) = cache.glob("backbone-*.onnx")
    intact = path.read_bytes()
    torch.manual_seed(5)
    other = Predictor.from_model(
        create_model("sursmr_tiny_stats", input_mode="native", input_size=64), fuse=True, runtime="onnx"
    )
    other_path = other.model.backbone.path
    assert other_path is not None
    path.write_bytes(other_path.read_bytes())  # loads fine, computes the wrong features
    assert _tiny("onnx").runtime == "onnx"
    assert path.read_bytes() == intact


def test_an_unwritable_cache_still_runs_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SURSMR_CACHE_DIR", str(blocker))
    predictor = _tiny("onnx")
    assert predictor.runtime == "onnx" and predictor.model.backbone.path is None


def _without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(onnx_backbone, "_modules", missing)


def test_missing_onnxruntime_is_a_typed_error_and_auto_falls_back(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_onnxruntime(monkeypatch)
    with pytest.raises(RuntimeUnavailableError, match="pip install onnx onnxruntime"):
        _tiny("onnx")
    assert _tiny("auto").runtime == "torch"
    assert _tiny().runtime == "torch"
    assert not cache.exists()


def test_a_failed_export_warns_and_auto_keeps_torch(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_backbone, "export_backbone", broken)
    with pytest.warns(RuntimeWarning, match="exporter exploded"):
        fallback = _tiny("auto")
    assert fallback.runtime == "torch" and not isinstance(fallback.model.backbone, OnnxBackbone)
    with pytest.raises(RuntimeUnavailableError, match="exporter exploded"):
        _tiny("onnx")


def test_only_fused_cpu_networks_run_with_onnx(cache: Path) -> None:
    torch.manual_seed(0)
    net = create_model("sursmr_tiny_stats").eval()
    assert Predictor.from_model(copy.deepcopy(net)).runtime == "torch"  # not fused: may be trained further
    with pytest.raises(RuntimeUnavailableError, match="inference only"):
        Predictor.from_model(copy.deepcopy(net), runtime="onnx")
    with pytest.raises(RuntimeUnavailableError, match="CPU only"):
        use_runtime(copy.deepcopy(net), "onnx", torch.device("cuda"), inference=True)
    assert use_runtime(copy.deepcopy(net), "auto", torch.device("cuda"), inference=True) == "torch"
    with pytest.raises(InputError, match="unknown runtime"):
        Predictor.from_model(copy.deepcopy(net), fuse=True, runtime="tensorrt")
    with pytest.raises(InputError, match="unknown runtime"):
        sursmr.predictor.load(DEFAULT_MODEL, "cpu", runtime="tensorrt")


def test_runtime_from_the_environment(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURSMR_RUNTIME", "torch")
    assert _tiny().runtime == "torch"
    monkeypatch.setenv("SURSMR_RUNTIME", "onnx")
    assert _tiny().runtime == "onnx"
    assert _tiny("torch").runtime == "torch"  # an explicit runtime wins


def test_default_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SURSMR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert onnx_backbone.cache_dir() == tmp_path / "sursmr"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_backbone.cache_dir() == tmp_path / "home" / ".cache" / "sursmr"


def test_cli_runtime_reaches_the_predictor_and_its_workers(photo_png: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import sursmr.batch
    from sursmr.cli import main

    monkeypatch.delenv("SURSMR_RUNTIME", raising=False)
    asked: list[object] = []

    def fake_load(*args: object, runtime: str | None = None, **kwargs: object) -> object:
        asked.append(runtime)
        raise RuntimeUnavailableError("stop here")

    monkeypatch.setattr(sursmr.predictor, "load", fake_load)
    result = CliRunner().invoke(main, ["predict", str(photo_png), str(photo_png), "--runtime", "torch"])
    assert asked == ["torch"] and result.exit_code == RuntimeUnavailableError.exit_code
    bad = CliRunner().invoke(main, ["predict", str(photo_png), str(photo_png), "--runtime", "tensorrt"])
    assert bad.exit_code == 2 and asked == ["torch"]

    seen: list[str | None] = []

    def fake_many(*args: object, **kwargs: object) -> Iterator[object]:
        seen.append(os.environ.get("SURSMR_RUNTIME"))  # what worker processes inherit
        return iter(())

    monkeypatch.setattr(sursmr.batch, "compress_many", fake_many)
    done = CliRunner().invoke(main, ["compress", str(photo_png), "--codec", "jpeg", "--runtime", "onnx"])
    assert done.exit_code == 0, done.output
    assert seen == ["onnx"] and "SURSMR_RUNTIME" not in os.environ  # restored after the command
