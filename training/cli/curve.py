"""``sursmr-train curve``: the proxy SUR and SMR curves of one image over a codec's levels.

Needs the training extras (IQA metrics, machine zoo, matplotlib):
``pip install 'sursmr[train]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

import codec_adapters
from sursmr.cli.app import (
    codec_levels_options,
    emit_json,
    emit_table,
    jobs_option,
    json_option,
    progress,
    quiet_option,
    strict_option,
    timeout_option,
)
from sursmr.encoding import default_jobs, encode_levels, parse_levels
from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import load_image
from sursmr_core.outputs import atomic_write_bytes
from training.cli import main

EXTRAS_HINT = "install the training extras: pip install 'sursmr[train]'"


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 5)


def plot_curve(rows: list[dict[str, Any]], title: str, better: str, path: Path) -> None:
    """Write a PNG of pseudo-SUR (Eq. 3), the JND SUR proxy and SMR against the level."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LabellerUnavailableError(f"matplotlib is missing for the plot; {EXTRAS_HINT}") from None
    levels = [row["level"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(levels, [row["pseudo_sur_eq3"] for row in rows], "o-", label="pseudo-SUR (Eq. 3, proxy)")
    if any(row["sur_jnd_proxy"] is not None for row in rows):
        jnd = [float("nan") if row["sur_jnd_proxy"] is None else row["sur_jnd_proxy"] for row in rows]
        ax.plot(levels, jnd, "s-", label="SUR, JND-calibrated proxy")
    if any(row["smr"] is not None for row in rows):
        smr = [float("nan") if row["smr"] is None else row["smr"] for row in rows]
        ax.plot(levels, smr, "^-", label="SMR (machine zoo, proxy)")
    ax.set_xlabel(f"level ({better} is better)")
    ax.set_ylabel("ratio")
    ax.set_ylim(-0.03, 1.03)
    if better == "higher":
        ax.invert_xaxis()  # read left to right as increasing compression
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    bpp = ax.twinx()
    bpp.plot(levels, [row["bpp"] for row in rows], color="grey", alpha=0.4, linestyle=":", label="bpp")
    bpp.set_ylabel("bits per pixel", color="grey")
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@codec_levels_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the PNG plot and the JSON.",
)
@click.option("--metrics", "metric_names", default=None, help="Comma list of IQA metrics [default: all available].")
@click.option("--machines", "machine_names", default=None, help="Comma list of machines [default: all available].")
@click.option(
    "--min-applicable",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="K: with fewer machines whose task applies to IMAGE, SMR is left out (null).",
)
@jobs_option
@timeout_option
@strict_option
@quiet_option
@json_option
def curve(
    image: Path,
    codec_name: str,
    levels_spec: str | None,
    out_dir: Path,
    metric_names: str | None,
    machine_names: str | None,
    min_applicable: int,
    jobs: int | None,
    timeout: float,
    strict: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Sweep IMAGE over a codec's levels and plot its proxy SUR and SMR curves.

    Per level: pseudo-SUR of paper Eq. 3 (IQA ensemble normalised over the
    swept levels), the absolute JND-calibrated SUR proxy and SMR (share of
    satisfied machines among those whose task applies to IMAGE; null with
    fewer than --min-applicable). All three are proxies, not measured by people.
    Writes IMAGE.CODEC.curve.png and .json into --out.

    \b
    Examples:
      sursmr-train curve photo.png --codec jpeg --levels 10:95:5
      sursmr-train curve photo.png --codec bpg --levels 20:47:3 --out plots/ --json
    """
    try:
        from training.datasets.labelling import RegistryLabellers, label_sweep
    except ImportError as exc:
        raise LabellerUnavailableError(f"the label pipeline cannot be imported ({exc}); {EXTRAS_HINT}") from None
    cls = codec_adapters.get(codec_name)
    levels = parse_levels(levels_spec, cls.levels.lo, cls.levels.hi)
    if len(levels) < 2:
        raise click.UsageError("a curve needs at least 2 levels (Eq. 3 normalises over the level set)")
    levels.sort(reverse=cls.levels.better == "higher")  # best quality first
    rgb = load_image(image, strict=strict)
    factory = RegistryLabellers(_names(metric_names), _names(machine_names), True, min_applicable)
    described = factory.describe()
    bar = progress(total=len(levels), desc=f"{codec_name} sweep", quiet=quiet)
    try:
        candidates = encode_levels(
            rgb, codec_name, levels, jobs=jobs or default_jobs(), timeout=timeout, on_done=lambda _: bar.update()
        )
    finally:
        bar.close()
    if not quiet:
        click.echo("labelling (IQA metrics and machines)...", err=True)
    labels = label_sweep(rgb, [c.decoded for c in candidates], factory())
    jnd = labels.sur_jnd_proxy or [None] * len(candidates)
    rows: list[dict[str, Any]] = []
    for i, cand in enumerate(candidates):
        rows.append(
            {
                "codec": codec_name,
                "level": cand.level,
                "bytes": cand.nbytes,
                "bpp": round(cand.bpp, 5),
                "pseudo_sur_eq3": round(labels.pseudo_sur_eq3[i], 5),
                "sur_jnd_proxy": _rounded(jnd[i]),
                "smr": _rounded(labels.smr[i]),
            }
        )
    stem = f"{image.stem}.{codec_name}.curve"
    document = {
        "image": str(image),
        "codec": codec_name,
        "better": cls.levels.better,
        "labels_are_proxies": True,
        "labellers": described,
        "levels": rows,
        "scores": labels.scores,
        "machine_verdicts": labels.verdicts,
    }
    json_path = atomic_write_bytes(out_dir / f"{stem}.json", (json.dumps(document, indent=2) + "\n").encode())
    png_path = out_dir / f"{stem}.png"
    plot_curve(rows, f"{image.name} — {codec_name} (proxy labels)", cls.levels.better, png_path)
    if as_json:
        for row in rows:
            emit_json(row)
        emit_json({"plot": str(png_path), "json": str(json_path)})
    else:
        emit_table(rows, ["level", "bytes", "bpp", "pseudo_sur_eq3", "sur_jnd_proxy", "smr"])
        click.echo(f"wrote {png_path} and {json_path}", err=True)
