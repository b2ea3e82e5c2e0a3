"""Codec adapters: one protocol, one registry, one module per codec.

>>> import codec_adapters
>>> codec_adapters.list()          # registered codec names
['bpg', 'jpeg', 'vvc']
>>> jpeg = codec_adapters.create("jpeg")
>>> data = jpeg.encode(rgb, 85); back = jpeg.decode(data)

Adding a codec: drop a module in this package that defines a
:class:`CodecAdapter` subclass decorated with ``@register``.
"""

from __future__ import annotations

import builtins
from typing import Any

from codec_adapters.base import CodecAdapter
from sursmr_core.levels import Availability, LevelAxis
from sursmr_core.registry import Registry

CODECS: Registry[type[CodecAdapter]] = Registry("codec", package="codec_adapters")


def register(cls: type[CodecAdapter]) -> type[CodecAdapter]:
    """Class decorator: add a codec adapter to the registry under ``cls.name``."""
    return CODECS.register(cls, name=cls.name)


def create(name: str, **kwargs: Any) -> CodecAdapter:
    """Instantiate the adapter called ``name`` (``kwargs`` go to its constructor, e.g. ``timeout``)."""
    return CODECS.get(name)(**kwargs)


def get(name: str) -> type[CodecAdapter]:
    """The adapter class called ``name``; raises :class:`~sursmr_core.errors.UnknownNameError`."""
    return CODECS.get(name)


def list() -> builtins.list[str]:  # noqa: A001 - the registry API names it list
    """Names of all registered codecs, sorted."""
    return CODECS.names()


__all__ = ["CODECS", "Availability", "CodecAdapter", "LevelAxis", "create", "get", "list", "register"]
