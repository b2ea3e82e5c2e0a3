"""The click group every ``sursmr`` command hangs from, and what they share.

Commands live one module per topic in this package and attach themselves to
:data:`main` with ``@main.command()``. This module owns the conventions:
results go to stdout (a table, or one JSON object per line with ``--json``),
progress and messages to stderr, and errors map to the exit codes of
:class:`sursmr_core.errors.ExitCode`.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import click
from tqdm import tqdm

from sursmr import __version__
from sursmr_core.errors import ExitCode, InputError, SursmrError

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so temporary files are removed and worker pools shut down."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # a second SIGTERM while we clean up kills at once, as the sender insists
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated()


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SursmrGroup(click.Group):
    """A click group that turns library errors into messages and exit codes.

    Every failure a user can cause ends in one line on stderr and an exit
    code of :class:`ExitCode`, never a traceback: library errors carry their
    code, an operating-system error that escaped them is bad input or
    environment (2), Ctrl-C is 130 and SIGTERM 143 (after cleaning up).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with terminate_cleanly():
                return super().invoke(ctx)
        except SursmrError as exc:
            click.echo(f"{ctx.info_name}: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Terminated:
            click.echo(f"{ctx.info_name}: terminated (SIGTERM); unfinished outputs were not written", err=True)
            ctx.exit(ExitCode.TERMINATED)
        except KeyboardInterrupt:
            click.echo(f"{ctx.info_name}: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"{ctx.info_name}: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(ExitCode.USAGE)


@click.group(cls=SursmrGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sursmr")
def main() -> None:
    """Compress images to the smallest size whose predicted SUR and SMR meet your targets.

    SUR (Satisfied User Ratio) is the share of people who see no difference
    from the original; SMR (Satisfied Machine Ratio) the share of machine
    vision models whose output does not change.

    \b
    Examples:
      sursmr codecs
      sursmr sweep photo.png --codec jpeg --levels 20:95:5 --json
      sursmr compress photo.png --codec bpg --target-sur 0.75 --target-smr 0.9 -o out/

    \b
    Exit codes: 0 ok, 2 bad usage, input or output path, 3 codec unavailable,
    4 codec failed, 5 target unreachable, 6 model or weights unavailable or
    broken, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """


def quiet_option(fn: F) -> F:
    """``--quiet/-q``: no progress bar."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)


def strict_option(fn: F) -> F:
    """``--strict``: refuse inputs that the image policy would convert."""
    return click.option("--strict", is_flag=True, help="Refuse inputs that need conversion (alpha, CMYK, 16-bit...).")(
        fn
    )


def positive_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # FloatRange lets nan through (every comparison with nan is false) and inf would mean no limit
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"{value} is not a finite number of seconds > 0")
    return value


def timeout_option(fn: F) -> F:
    """``--timeout``: seconds allowed per encode or decode (finite, > 0)."""
    return click.option(
        "--timeout",
        type=float,
        callback=positive_seconds,
        default=120.0,
        show_default=True,
        help="Seconds allowed per encode or decode.",
    )(fn)


DEVICE_SPELLING = re.compile(r"auto|cpu|cuda(:\d+)?")


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # checked here, before any image or model is read; whether CUDA is present is known only once torch loads
    if not DEVICE_SPELLING.fullmatch(value.strip()):
        raise click.BadParameter(f"{value!r} is not supported; use auto, cpu, cuda or cuda:N")
    return value.strip()


def device_option(fn: F) -> F:
    """``--device``: where the predictor runs (auto, cpu, cuda, cuda:N); others are refused up front."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        callback=_device,
        help="Where the predictor runs: auto (CUDA when available), cpu, cuda or cuda:N.",
    )(fn)


def runtime_option(fn: F) -> F:
    """``--runtime``: what runs the predictor's backbone (auto, torch, onnx); default ``$SURSMR_RUNTIME`` or auto."""
    return click.option(
        "--runtime",
        type=click.Choice(["auto", "torch", "onnx"]),
        default="auto",
        show_default=True,
        envvar="SURSMR_RUNTIME",
        help="What runs the predictor's backbone: auto (ONNX Runtime on the CPU when installed, else torch), "
        "torch, or onnx (an error when it cannot).",
    )(fn)


def export_runtime(runtime: str) -> None:
    """Put ``runtime`` in ``$SURSMR_RUNTIME`` for this command, so the predictors its workers load use it."""
    _export("SURSMR_RUNTIME", runtime)


def _export(name: str, value: str | None) -> None:
    """Set (or with None, leave) environment variable ``name`` for this command; restored when it closes."""
    if value is None:
        return
    previous = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous

    click.get_current_context().call_on_close(restore)


def _tile_count(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from sursmr.tiling import parse_max_tiles

    if value is None:
        return None
    try:
        parse_max_tiles(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None
    return value.strip().lower()


def max_tiles_option(fn: F) -> F:
    """``--max-tiles``: the predictor's tile sample (a count or ``all``); default ``$SURSMR_MAX_TILES`` or 16."""
    return click.option(
        "--max-tiles",
        metavar="N|all",
        default=None,
        callback=_tile_count,
        envvar="SURSMR_MAX_TILES",
        help="Score at most N of an image's 256² tiles, a content-aware sample (default 16; 'all': every tile). "
        "Each candidate costs about N/tiles of the predictor's time, with an accuracy cost: "
        "benchmarks/results/tile_sampling.md (4 of a 768x512 photo's 6 tiles: ~2/3 of the time).",
    )(fn)


def export_max_tiles(max_tiles: str | None) -> None:
    """Put ``--max-tiles`` in ``$SURSMR_MAX_TILES`` for this command, for the predictors its workers load."""
    _export("SURSMR_MAX_TILES", max_tiles)


def jobs_option(fn: F) -> F:
    """``--jobs/-j``: worker processes (default: the usable cores)."""
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes [default: cores]."
    )(fn)


def codec_levels_options(fn: F) -> F:
    """``--codec NAME`` (required) and ``--levels SPEC``."""
    fn = click.option("--levels", "levels_spec", default=None, help="LO:HI[:STEP] or A,B,C; default: every level.")(fn)
    return click.option("--codec", "codec_name", required=True, help="Codec name (see `sursmr codecs`).")(fn)


def json_option(fn: F) -> F:
    """``--json``: print one JSON object per line on stdout instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="One JSON object per line on stdout.")(fn)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def emit_json(record: Mapping[str, Any]) -> None:
    """Write one JSON line to stdout and flush it (consumers read line by line)."""
    click.echo(json.dumps({k: _json_safe(v) for k, v in record.items()}, separators=(",", ":")))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("nan" if math.isnan(value) else "-inf")
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ":".join(str(v) for v in value)
    return str(value)


def emit_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write rows as an aligned plain-text table on stdout."""
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    click.echo("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def emit_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """Results on stdout: one JSON line per row with ``as_json``, else a table of ``columns``."""
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        emit_table(rows, columns)


def progress(
    iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", quiet: bool = False
) -> tqdm:  # type: ignore[type-arg]
    """A progress bar on stderr (hidden with ``quiet`` or when stderr is not a terminal)."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        file=sys.stderr,
        disable=quiet or None,  # None: tqdm hides itself on a non-tty
        leave=False,
        dynamic_ncols=True,
    )


def show_warnings_on_stderr() -> None:
    """Library warnings (image conversions...) as one short line each on stderr."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        click.echo(f"warning: {message}", err=True)

    warnings.showwarning = show
