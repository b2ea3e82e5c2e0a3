"""SUR/SMR predictor networks: configurations, backbones, the network and its weights files.

Importing this package imports torch and timm; ``import sursmr`` alone does not.
"""

from __future__ import annotations

from sursmr.models.backbones import BACKBONES, BackboneSpec
from sursmr.models.config import InputMode, NetConfig
from sursmr.models.inputs import aggregate_tiles, image_to_input
from sursmr.models.network import SurSmrNet, config_parameter_count, count_parameters, transfer_backbone
from sursmr.models.registry import MODELS, create_model, get_config, list_models, register_model

__all__ = [
    "BACKBONES",
    "MODELS",
    "BackboneSpec",
    "InputMode",
    "NetConfig",
    "SurSmrNet",
    "aggregate_tiles",
    "config_parameter_count",
    "count_parameters",
    "create_model",
    "get_config",
    "image_to_input",
    "list_models",
    "register_model",
    "transfer_backbone",
]
