from __future__ import annotations

import pytest

from sursmr_core.errors import InputError, UnknownNameError
from sursmr_core.registry import Registry


def test_register_get_and_helpful_unknown_name() -> None:
    reg: Registry[type] = Registry("widget")

    @reg.register
    class Alpha:
        name = "alpha"

    @reg.register(name="beta")
    class Other:
        pass

    assert reg.names() == ["alpha", "beta"]
    assert reg.get("alpha") is Alpha and "beta" in reg and len(reg) == 2
    with pytest.raises(UnknownNameError, match="unknown widget 'gamma'; known widgets: alpha, beta"):
        reg.get("gamma")
    with pytest.raises(InputError, match="registered twice"):
        reg.register(type("Alpha2", (), {"name": "alpha"}))


def test_package_registries_discover_their_modules() -> None:
    import codec_adapters

    assert "jpeg" in codec_adapters.list()
    with pytest.raises(UnknownNameError, match="known codecs"):
        codec_adapters.create("webp2000")
