"""The import layering rule: each package imports only the layers below it.

sursmr_core  ←  codec_adapters  ←  sursmr  ←  training  ←  benchmarks

Every import statement counts, including ones inside functions, so a lazy
import cannot hide a dependency that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("sursmr_core", "codec_adapters", "sursmr", "training", "benchmarks")
ALLOWED: dict[str, set[str]] = {
    "sursmr_core": {"sursmr_core"},
    "codec_adapters": {"sursmr_core", "codec_adapters"},
    "sursmr": {"sursmr_core", "codec_adapters", "sursmr"},
    "training": {"sursmr_core", "codec_adapters", "sursmr", "training"},
    "benchmarks": set(OURS),
}


def imported_packages(source: str) -> set[str]:
    """Top-level names of our packages that ``source`` imports (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


def test_imported_packages_sees_lazy_and_dotted_imports() -> None:
    source = "import sursmr.cli\ndef f():\n    from training.cli import run\n    import numpy\n"
    assert imported_packages(source) == {"sursmr", "training"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = imported_packages(path.read_text(encoding="utf-8")) - ALLOWED[package]
        if wrong:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "layering broken:\n" + "\n".join(bad)
