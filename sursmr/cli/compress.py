"""``sursmr compress``: encode images at the smallest size that meets SUR/SMR targets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from sursmr.cli.app import (
    device_option,
    emit_json,
    emit_table,
    jobs_option,
    json_option,
    main,
    progress,
    quiet_option,
    strict_option,
    timeout_option,
)
from sursmr.compress import DEFAULT_TARGET_SMR, DEFAULT_TARGET_SUR
from sursmr.rate_control import STRATEGIES
from sursmr_core.errors import ExitCode, InputError, SursmrError

SHIPPED_MODEL = "sursmr-effnet-lite0"
"""``sursmr.predictor.DEFAULT_MODEL``, repeated so that ``--help`` imports no torch (a test keeps them equal)."""

COLUMNS = ["input", "output", "codec", "level", "bytes", "bpp", "sur", "smr", "probes", "seconds"]


def _target(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    if value.strip().lower() in ("none", "off"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number in [0, 1] or 'none'") from None


def _default_text() -> str:
    """What the default confidence is for the shipped model, read from its card (no weights loaded)."""
    from sursmr.confidence import DEFAULT_RELIABILITY, card_default_confidence

    name = SHIPPED_MODEL
    value = card_default_confidence(Path(__file__).resolve().parent.parent / "weights" / f"{name}.json")
    rule = f"the confidence with the fewest bytes at ≥ {DEFAULT_RELIABILITY:g} hit rate on validation"
    if value is None:
        return f"{name} has no calibration, so no margin"
    return f"for {name}: {value:g}, {rule}; no margin where the card has none for the targets"


def output_path(source: Path, out_dir: Path | None, extension: str) -> Path:
    """``DIR/<stem>.<ext>`` with ``-o DIR``, else ``<stem>.sursmr.<ext>`` beside the input."""
    if out_dir is not None:
        return out_dir / f"{source.stem}.{extension}"
    return source.with_name(f"{source.stem}.sursmr.{extension}")


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codec", "codec_name", required=True, help="Codec name (see `sursmr codecs`).")
@click.option(
    "--target-sur",
    default=str(DEFAULT_TARGET_SUR),
    show_default=True,
    callback=_target,
    help="Minimum predicted SUR in [0, 1], or 'none'.",
)
@click.option(
    "--target-smr",
    default=str(DEFAULT_TARGET_SMR),
    show_default=True,
    callback=_target,
    help="Minimum predicted SMR in [0, 1], or 'none'.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Share of images that should truly meet the targets, e.g. 0.9: the margin is read from the model card's "
    f"calibration (`sursmr models` lists the confidences). [default: the card's default; {_default_text()}]",
)
@click.option(
    "--margin",
    type=float,
    default=None,
    help="For experts, instead of --confidence: a fixed margin added to every target (a level must reach "
    "target + margin).",
)
@click.option("--model", default=None, help="Model name or .safetensors path [default: the shipped model].")
@device_option
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES.names()),
    default="bisect",
    show_default=True,
    help="How levels are searched: bisect and interpolate probe a few, exhaustive every one.",
)
@click.option(
    "--max-probes",
    type=click.IntRange(min=1),
    default=None,
    help="Most levels to evaluate per image [default: no cap].",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder, created if needed; files are named <stem>.<ext> [default: <stem>.sursmr.<ext> beside "
    "each input].",
)
@jobs_option
@timeout_option
@strict_option
@quiet_option
@json_option
def compress(
    images: tuple[Path, ...],
    codec_name: str,
    target_sur: float | None,
    target_smr: float | None,
    confidence: float | None,
    margin: float | None,
    model: str | None,
    device: str,
    strategy: str,
    max_probes: int | None,
    out_dir: Path | None,
    jobs: int | None,
    timeout: float,
    strict: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Encode each IMAGE at the smallest size whose predicted SUR and SMR meet the targets.

    SUR and SMR are predictions of the model. By default a level must reach
    SUR ≥ 0.75 (three in four viewers see no difference) and SMR ≥ 0.9 (nine
    in ten machine-vision models keep their answer); give 'none' to drop one.

    Each output is written atomically: an image that fails or is interrupted
    leaves no file, and an input is never overwritten. Every image is tried;
    failures are reported per image (with --json, a line with "error") and the
    exit code is the most severe one: 5 when a target is unreachable.

    \b
    Examples:
      sursmr compress photo.png --codec jpeg
      sursmr compress *.png --codec bpg --target-sur 0.9 --target-smr none -o out/ --json
      sursmr compress photo.png --codec jpeg --target-sur 0.5 --target-smr none --confidence 0.9
      sursmr compress photo.png --codec vvc --target-smr 0.95 --margin 0.02 --max-probes 8
    """
    import codec_adapters
    from sursmr.compress import CompressSettings, compress_image
    from sursmr_core.outputs import atomic_write_bytes, check_writable, check_writable_folder

    # bad targets, options or codecs stop here, before any work; the model loads after the first image is read
    settings = CompressSettings.create(
        codec=codec_name,
        target_sur=target_sur,
        target_smr=target_smr,
        margin=margin,
        confidence=confidence,
        strategy=strategy,
        max_probes=max_probes,
        jobs=jobs,
        timeout=timeout,
        strict=strict,
    )
    extension = codec_adapters.get(codec_name).extension
    if out_dir is not None:
        check_writable_folder(out_dir)  # an impossible -o fails now, not after every search
    rows: list[dict[str, Any]] = []
    worst = ExitCode.OK
    claimed: dict[Path, Path] = {}
    for image in progress(images, desc="compress", quiet=quiet or len(images) < 2):
        target = output_path(image, out_dir, extension)
        row: dict[str, Any] = {"input": str(image), "output": None}
        try:
            # realpath, unlike Path.resolve on Python 3.11, does not raise on a symbolic link loop
            resolved = Path(os.path.realpath(target))
            if resolved == Path(os.path.realpath(image)):
                raise InputError(f"{image}: the output would overwrite the input; choose another folder with -o")
            if resolved in claimed:
                raise InputError(f"{image}: output {target} is already used by {claimed[resolved]}")
            check_writable(target)
            claimed[resolved] = image
            result = compress_image(image, settings, model, device=device)
            atomic_write_bytes(target, result.data)
            row.update(output=str(target), **result.summary())
        except SursmrError as exc:
            worst = max(worst, exc.exit_code)
            row.update(error=str(exc), exit_code=exc.exit_code)
            best = getattr(exc, "best", None)
            if best is not None:
                row["closest"] = {"level": best.level, "bytes": best.nbytes, "sur": best.sur, "smr": best.smr}
            if not as_json:
                click.echo(f"sursmr compress: error: {exc}", err=True)
        rows.append(row)
        if as_json:
            emit_json(row)
    done = [row for row in rows if "error" not in row]
    if done and not as_json:
        emit_table(done, COLUMNS)
    if worst != ExitCode.OK:
        click.get_current_context().exit(worst)
