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
    from sursmr.run_dir import use_run_dir

    show_warnings_on_stderr()
    use_run_dir()  # worker pools' scratch files go to a folder that the next run removes if this one is killed
    main(prog_name="sursmr")


__all__ = ["main", "run"]
