"""Seconds per encode and per decode of every registered codec, at 768×512.

The image is the bundled sample photo resized to 768×768 and centre-cropped to
768×512. Each codec's level axis is cut into three bands (best third, middle
third, worst third, from :meth:`LevelAxis.worst_to_best`); a few levels spread
over each band are encoded and decoded ``--repeats`` times, after one untimed
warm-up round trip per codec. Reported: the median over all timed runs of a
band, and the median bitstream size in bits per pixel. Codecs that are not
available here are listed with the reason and skipped.

Writes ``benchmarks/results/codec_speed.json`` and ``.md`` and prints the
Markdown table::

    .venv/bin/python benchmarks/codec_speed.py --quick
    .venv/bin/python benchmarks/codec_speed.py --codecs jpeg,vvc --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import codec_adapters
from codec_adapters.base import CodecAdapter
from sursmr_core.imaging import RGBImage, load_image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sursmr" / "samples" / "astronaut.png"
RESULTS = ROOT / "benchmarks" / "results"
WIDTH, HEIGHT = 768, 512
BANDS = ("best", "middle", "worst")


@dataclass(frozen=True)
class BandTiming:
    """Timings of one band of a codec's level axis (seconds are medians over all timed runs)."""

    band: str
    levels: list[int]
    runs: int
    encode_s: float
    decode_s: float
    bpp: float


@dataclass(frozen=True)
class CodecTiming:
    codec: str
    available: bool
    reason: str | None
    bands: list[BandTiming]


def photo_768x512() -> RGBImage:
    """The bundled sample photo resized to 768×768 and centre-cropped to 768×512 (W×H)."""
    rgb = load_image(SAMPLE)
    side = Image.fromarray(rgb, "RGB").resize((WIDTH, WIDTH), Image.Resampling.LANCZOS)
    top = (WIDTH - HEIGHT) // 2
    return np.ascontiguousarray(np.asarray(side, dtype=np.uint8)[top : top + HEIGHT])


def band_levels(adapter: type[CodecAdapter], per_band: int) -> dict[str, list[int]]:
    """``per_band`` levels at the centres of equal slices of each third of the axis, keyed best/middle/worst."""
    order = adapter.levels.worst_to_best()[::-1]  # best first
    thirds = np.array_split(np.array(order), len(BANDS))
    picks: dict[str, list[int]] = {}
    for name, third in zip(BANDS, thirds, strict=True):
        count = min(per_band, len(third))
        index = ((np.arange(count) + 0.5) * len(third) / count).astype(int)
        picks[name] = sorted({int(third[i]) for i in index})
    return picks


def time_codec(name: str, rgb: RGBImage, repeats: int, per_band: int) -> CodecTiming:
    cls = codec_adapters.get(name)
    status = cls.availability()
    if not status.available:
        return CodecTiming(name, False, status.reason, [])
    adapter = codec_adapters.create(name)
    adapter.decode(adapter.encode(rgb, cls.default_level))  # warm-up: imports, probes, caches
    pixels = rgb.shape[0] * rgb.shape[1]
    bands = []
    for band, levels in band_levels(cls, per_band).items():
        encode_s, decode_s, bits = [], [], []
        for level in levels:
            for _ in range(repeats):
                start = time.perf_counter()
                data = adapter.encode(rgb, level)
                encoded = time.perf_counter()
                adapter.decode(data)
                decoded = time.perf_counter()
                encode_s.append(encoded - start)
                decode_s.append(decoded - encoded)
                bits.append(8 * len(data) / pixels)
        bands.append(
            BandTiming(
                band,
                levels,
                len(encode_s),
                statistics.median(encode_s),
                statistics.median(decode_s),
                statistics.median(bits),
            )
        )
    return CodecTiming(name, True, None, bands)


def to_markdown(results: Sequence[CodecTiming], meta: dict[str, Any]) -> str:
    lines = [
        f"# Codec speed at {WIDTH}×{HEIGHT}",
        "",
        f"{meta['machine']}, {meta['cpus']} CPUs; {meta['repeats']} repeat(s) per level; "
        f"median seconds over all timed runs of a band.",
        "",
        "| codec | band | levels | runs | encode s | decode s | bpp |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        if not result.available:
            lines.append(f"| {result.codec} | unavailable: {result.reason} | | | | | |")
            continue
        for band in result.bands:
            levels = ", ".join(str(level) for level in band.levels)
            lines.append(
                f"| {result.codec} | {band.band} | {levels} | {band.runs} | "
                f"{band.encode_s:.4f} | {band.decode_s:.4f} | {band.bpp:.3f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per level (default 5, --quick 1)")
    parser.add_argument("--codecs", default=None, help="comma-separated codec names (default: every registered one)")
    parser.add_argument("--levels-per-band", type=int, default=None, help="levels per band (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="one level per band, one repeat: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"output folder (default {RESULTS})")
    args = parser.parse_args(argv)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    args.levels_per_band = args.levels_per_band if args.levels_per_band is not None else (1 if args.quick else 3)
    if args.repeats < 1 or args.levels_per_band < 1:
        parser.error("--repeats and --levels-per-band must be at least 1")
    names = codec_adapters.list() if args.codecs is None else [n.strip() for n in args.codecs.split(",") if n.strip()]
    unknown = [n for n in names if n not in codec_adapters.CODECS]
    if unknown:
        parser.error(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(codec_adapters.list())}")
    args.names = names
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rgb = photo_768x512()
    results = [time_codec(name, rgb, args.repeats, args.levels_per_band) for name in args.names]
    meta = {
        "image": f"{SAMPLE.relative_to(ROOT)} resized to {WIDTH}x{WIDTH}, centre crop {WIDTH}x{HEIGHT}",
        "machine": f"{platform.system()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "repeats": args.repeats,
        "levels_per_band": args.levels_per_band,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "codecs": [asdict(result) for result in results]}
    (args.out / "codec_speed.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown = to_markdown(results, meta)
    (args.out / "codec_speed.md").write_text(markdown, encoding="utf-8")
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
