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


def test_override_only_and_scope_restore_the_registry() -> None:
    reg: Registry[str] = Registry("widget")
    reg.register("a", name="alpha")
    with reg.override("alpha", "fake") as entry:
        assert entry == "fake" and reg.get("alpha") == "fake"
    with reg.override("beta", "new"):
        assert reg.names() == ["alpha", "beta"]
    with reg.only({"gamma": "g"}):
        assert reg.names() == ["gamma"] and "alpha" not in reg
    with reg.scope():
        reg.register("d", name="delta")
        assert "delta" in reg
    assert reg.names() == ["alpha"] and reg.get("alpha") == "a"


def test_override_replaces_a_real_codec_for_the_block() -> None:
    import codec_adapters

    real = codec_adapters.get("jpeg")

    class FakeJpeg(real):  # type: ignore[misc,valid-type]
        description = "fake"

    with codec_adapters.CODECS.override("jpeg", FakeJpeg):
        assert codec_adapters.create("jpeg").description == "fake"
        assert "bpg" in codec_adapters.list()
    assert codec_adapters.get("jpeg") is real
