"""Command-line interface: ``sursmr`` (entry point :func:`run`)."""

from __future__ import annotations

import importlib
import pkgutil

from sursmr.cli.app import main, show_warnings_on_stderr


def _load_commands() -> None:
    # every public module in this package attaches its commands to `main`
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "app":
            importlib.import_module(f"{__name__}.{info.name}")


_load_commands()


def run() -> None:
    """Console-script entry point."""
    show_warnings_on_stderr()
    main(prog_name="sursmr")


__all__ = ["main", "run"]
