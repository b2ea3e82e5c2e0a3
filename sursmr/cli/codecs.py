"""``sursmr codecs`` and ``sursmr sweep``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import codec_adapters
from sursmr.cli.app import (
    codec_levels_options,
    emit_rows,
    jobs_option,
    json_option,
    main,
    progress,
    quiet_option,
    strict_option,
    timeout_option,
)
from sursmr.encoding import default_jobs, encode_levels, parse_levels
from sursmr_core.imaging import load_image
from sursmr_core.outputs import atomic_write_bytes, check_writable_folder


def codec_rows() -> list[dict[str, Any]]:
    rows = []
    for name, cls in codec_adapters.CODECS.items():
        status = cls.availability()
        row: dict[str, Any] = {
            "name": name,
            "available": status.available,
            "levels": [cls.levels.lo, cls.levels.hi],
            "better": cls.levels.better,
            "extension": cls.extension,
            "default_level": cls.default_level,
            "description": cls.description,
        }
        if not status.available:
            row["reason"] = status.reason
        rows.append(row)
    return rows


@main.command()
@json_option
def codecs(as_json: bool) -> None:
    """List registered codecs, their level ranges and whether they run here.

    \b
    Examples:
      sursmr codecs
      sursmr codecs --json | jq -r 'select(.available) | .name'
    """
    rows = codec_rows()
    emit_rows(rows, ["name", "available", "levels", "better", "extension", "reason"], as_json)


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@codec_levels_options
@jobs_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Write each bitstream here.")
@timeout_option
@strict_option
@quiet_option
@json_option
def sweep(
    image: Path,
    codec_name: str,
    levels_spec: str | None,
    jobs: int | None,
    out_dir: Path | None,
    timeout: float,
    strict: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Encode IMAGE at every requested level; print bytes, bpp, PSNR and SSIM per level.

    \b
    Examples:
      sursmr sweep photo.png --codec jpeg
      sursmr sweep photo.png --codec bpg --levels 20:40:2 --jobs 2 --out bpg/
      sursmr sweep photo.png --codec vvc --levels 22,27,32,37 --json
    """
    cls = codec_adapters.get(codec_name)
    levels = parse_levels(levels_spec, cls.levels.lo, cls.levels.hi)
    if out_dir is not None:
        check_writable_folder(out_dir)  # before the encodes, not after them
    rgb = load_image(image, strict=strict)
    # best quality first, the way people read a rate curve
    levels.sort(key=lambda level: level, reverse=cls.levels.better == "higher")
    bar = progress(total=len(levels), desc=f"{codec_name} sweep", quiet=quiet)
    try:
        results = encode_levels(
            rgb,
            codec_name,
            levels,
            jobs=jobs or default_jobs(),
            timeout=timeout,
            with_fidelity=True,
            on_done=lambda _: bar.update(),
        )
    finally:
        bar.close()
    rows = []
    for cand in results:
        row: dict[str, Any] = {
            "codec": codec_name,
            "level": cand.level,
            "bytes": cand.nbytes,
            "bpp": round(cand.bpp, 5),
            "psnr": round(cand.fidelity["psnr"], 4),
            "ssim": round(cand.fidelity["ssim"], 6),
            "encode_s": round(cand.encode_seconds, 4),
            "decode_s": round(cand.decode_seconds, 4),
        }
        if out_dir is not None:
            path = out_dir / f"{image.stem}.{codec_name}.{cand.level}.{cls.extension}"
            atomic_write_bytes(path, cand.data)
            row["output"] = str(path)
        rows.append(row)
    emit_rows(rows, ["level", "bytes", "bpp", "psnr", "ssim", "encode_s"], as_json)
