"""``sursmr compress``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sursmr.cli.app import (
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
from sursmr.errors import InputError, SursmrError


def _target(value: str) -> float | None:
    if value.lower() in ("none", "off", "-"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number in [0, 1] or 'none'") from None


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codec", "codec_name", required=True, help="Codec name (see `sursmr codecs`).")
@click.option("--target-sur", default="0.75", show_default=True, help="Minimum predicted SUR, or 'none'.")
@click.option("--target-smr", default="0.9", show_default=True, help="Minimum predicted SMR, or 'none'.")
@click.option(
    "--margin",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Safety margin added to every target.",
)
@click.option("--model", default=None, help="Weights name or .safetensors path [default: the shipped model].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--strategy", type=click.Choice(["bisect", "exhaustive"]), default="bisect", show_default=True)
@click.option("--max-probes", type=click.IntRange(min=1), default=None, help="Most levels to evaluate per image.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: <stem>.sursmr.<ext> beside each input].",
)
@jobs_option
@timeout_option
@strict_option
@quiet_option
@json_option
def compress(
    images: tuple[Path, ...],
    codec_name: str,
    target_sur: str,
    target_smr: str,
    margin: float,
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

    Outputs are written atomically: a failed or interrupted image leaves no file.
    With several images, every image is tried; the exit code is the most severe
    failure (5 when a target is unreachable).

    \b
    Examples:
      sursmr compress photo.png --codec jpeg
      sursmr compress *.png --codec bpg --target-sur 0.9 --target-smr none -o out/ --json
      sursmr compress photo.png --codec vvc --target-sur 0.75 --target-smr 0.9 --margin 0.02
    """
    import codec_adapters
    from sursmr.compress import compress_to_target, load_predictor, output_path
    from sursmr.outputs import atomic_write_bytes
    from sursmr.rate_control import Targets

    targets = Targets(_target(target_sur), _target(target_smr), margin)  # checked before any work
    extension = codec_adapters.get(codec_name).extension
    predictor = load_predictor(model, device)
    rows: list[dict[str, Any]] = []
    worst = 0
    bar = progress(images, desc="compress", quiet=quiet or len(images) < 2)
    for image in bar:
        target_path = output_path(image, out_dir, extension)
        row: dict[str, Any] = {"input": str(image), "output": None}
        try:
            if target_path.resolve() == image.resolve():
                raise InputError(f"{image}: output would overwrite the input; use -o DIR")
            result = compress_to_target(
                image,
                codec=codec_name,
                target_sur=targets.sur,
                target_smr=targets.smr,
                margin=targets.margin,
                predictor=predictor,
                strategy=strategy,
                max_probes=max_probes,
                jobs=jobs,
                timeout=timeout,
                strict=strict,
            )
            atomic_write_bytes(target_path, result.data)
            row.update(output=str(target_path), **result.summary())
        except SursmrError as exc:
            worst = max(worst, exc.exit_code)
            row["error"] = str(exc)
            row["exit_code"] = exc.exit_code
            best = getattr(exc, "best", None)
            if best is not None:
                row["closest"] = {"level": best.level, "bytes": best.nbytes, "sur": best.sur, "smr": best.smr}
            if not as_json:
                click.echo(f"sursmr: error: {exc}", err=True)
        rows.append(row)
        if as_json:
            emit_json(row)
    if not as_json:
        ok = [r for r in rows if "error" not in r]
        if ok:
            emit_table(ok, ["input", "output", "codec", "level", "bytes", "bpp", "sur", "smr", "probes", "seconds"])
    if worst:
        click.get_current_context().exit(worst)
