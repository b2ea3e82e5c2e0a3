"""The registry of named network configurations and the one factory that builds them.

>>> from sursmr.models import create_model, list_models
>>> list_models()
['sursmr_caformer_s18', 'sursmr_caformer_s18_pretrain', ...]
>>> net = create_model("sursmr_tiny", embed_dim=32)          # overrides replace config fields
>>> net = create_model("sursmr_effnet_lite0", pretrained_backbone=True)  # ImageNet weights, offline

Configurations register where they are defined (:mod:`sursmr.models.configs`);
adding a module to this package that calls :func:`register_model` is enough.
"""

from __future__ import annotations

import os
from typing import Any

from sursmr.models.backbones import BACKBONES, load_checkpoint_file, load_shipped_weights
from sursmr.models.config import NetConfig
from sursmr.models.network import SurSmrNet
from sursmr_core.errors import InputError
from sursmr_core.registry import Registry

MODELS: Registry[NetConfig] = Registry("model", package="sursmr.models")


def register_model(config: NetConfig) -> NetConfig:
    """Add a configuration under ``config.name`` (its backbone must be registered)."""
    BACKBONES.get(config.backbone)
    return MODELS.register(config, name=config.name)


def list_models() -> list[str]:
    """Names of all registered configurations, sorted."""
    return MODELS.names()


def get_config(name: str, **overrides: Any) -> NetConfig:
    """The registered configuration ``name`` with ``overrides`` applied."""
    config = MODELS.get(name)
    return config.with_overrides(**overrides) if overrides else config


def create_model(
    name_or_config: str | NetConfig,
    *,
    pretrained_backbone: bool = False,
    backbone_weights: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> SurSmrNet:
    """Build a network from a registered name (or a config), never downloading anything.

    Args:
        name_or_config: a name from :func:`list_models` or a :class:`NetConfig`.
        pretrained_backbone: load the backbone's offline ImageNet weights
            (:class:`~sursmr_core.errors.ModelError` if it has none, e.g. caformer_s18).
        backbone_weights: a local timm checkpoint file for the backbone instead.
        overrides: config fields to replace (``embed_dim=64``, ``input_mode="native"``...).

    The rest of the network is randomly initialised; the network is in train mode.
    """
    if pretrained_backbone and backbone_weights is not None:
        raise InputError("pass either pretrained_backbone=True or backbone_weights=PATH, not both")
    if isinstance(name_or_config, NetConfig):
        config = name_or_config.with_overrides(**overrides) if overrides else name_or_config
    else:
        config = get_config(name_or_config, **overrides)
    net = SurSmrNet(config)
    if not config.uses_backbone:  # a pixels-only stats network has no backbone weights to load
        return net
    if pretrained_backbone:
        load_shipped_weights(BACKBONES.get(config.backbone), net.backbone)
    elif backbone_weights is not None:
        load_checkpoint_file(net.backbone, backbone_weights)
    return net
