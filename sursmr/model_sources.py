"""Kinds of files a predictor can be loaded from, besides shipped ``.safetensors`` weights.

:func:`sursmr.predictor.load` is the one way to get a predictor. It asks each
source registered here whether it claims the spec (e.g. the training package
claims run directories and ``.pt`` checkpoints); unclaimed specs are weights
names or ``.safetensors`` paths. This module imports no torch, so a package
can register a source on import without paying for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sursmr_core.registry import Registry

if TYPE_CHECKING:
    from sursmr.models.weights import ModelCard


@dataclass(frozen=True)
class OpenedModel:
    """What a source found: the card to build the network from and how to fill in its weights.

    ``fill(network)`` loads the weights into a network built from ``card.config``
    (or a copy of it with another input pipeline); ``sha256`` identifies the
    weights file (None when unknown).
    """

    card: ModelCard
    fill: Callable[[Any], None]
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSource:
    """A kind of model file: ``claims(spec)`` says whether ``spec`` is one; ``open(spec)`` reads it."""

    name: str
    claims: Callable[[str], bool]
    open: Callable[[str], OpenedModel]


MODEL_SOURCES: Registry[ModelSource] = Registry("model source")


def source_for(spec: str) -> ModelSource | None:
    """The registered source that claims ``spec``, or None (then it names ``.safetensors`` weights)."""
    for _, source in MODEL_SOURCES.items():
        if source.claims(spec):
            return source
    return None
