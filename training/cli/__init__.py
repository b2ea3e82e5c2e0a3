"""``sursmr-train``: label pipeline, dataset and training commands (entry point :func:`run`).

Each command lives in its own module of this package and attaches itself to
:func:`main` (``from training.cli import main`` then ``@main.command()``);
every public module here is imported when the package loads, so a new
command is one new file.

Results go to stdout (a table, or one JSON object per line with ``--json``),
progress and messages to stderr; errors map to the exit codes of
:class:`sursmr_core.errors.ExitCode`, as for ``sursmr``.
"""

from __future__ import annotations

import click

from sursmr import __version__
from sursmr.cli.app import SursmrGroup, show_warnings_on_stderr


@click.group(cls=SursmrGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sursmr-train")
def main() -> None:
    """Build proxy-labelled SUR/SMR training data and train the predictor.

    Labels made here are proxies: pseudo-SUR from an IQA metric ensemble
    (paper Eq. 3), a JND-calibrated SUR proxy, and SMR from a zoo of vision
    models. Real SUR comes from subjective datasets (KonJND-1k, MCL-JCI,
    VVC-JND) that you supply.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train recipe --show > recipe.json
      sursmr-train build --recipe default --out data/default --jobs 2
      sursmr-train build --limit 3 --out /tmp/try --json

    \b
    Exit codes: 0 ok, 1 some items failed (run again to retry them), 2 bad usage
    or input, 3 codec unavailable, 7 labeller unavailable, 130 interrupted.
    """


def _load_commands() -> None:
    # every public module in this package attaches its commands to `main`
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def run() -> None:
    """Console-script entry point."""
    show_warnings_on_stderr()
    main(prog_name="sursmr-train")


_load_commands()

__all__ = ["main", "run"]
