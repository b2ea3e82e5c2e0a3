"""Batch throughput: images/s of ``sursmr compress FOLDER`` (local workers, Ray) against one process per image.

The folder holds 768×512 photos cut from the bundled sample and scikit-image's
photos (shifted crops, mirrored every other time), written as PNG. Every run
is the real CLI in a fresh process, timed from start to exit, so model loading
counts: a batch loads the model once per worker, the per-image baseline once
per image. Runs may cover the first N images of the folder (``--*-images``);
the result files say how many each run covered.

    python -m benchmarks.batch --photos 200 --jpeg-images 200 --bpg-images 40 --baseline-images 8

Writes ``results/batch.json`` and ``results/batch.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SAMPLE = ROOT / "sursmr" / "samples" / "astronaut.png"
SKIMAGE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "immunohistochemistry", "motorcycle_left")
WIDTH, HEIGHT = 768, 512


def source_photos() -> list[np.ndarray]:
    """The bundled sample plus the scikit-image colour photos that load offline."""
    photos = [np.asarray(Image.open(SAMPLE).convert("RGB"))]
    try:
        from skimage import data
    except ImportError:
        return photos
    for name in SKIMAGE_PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception:  # a photo that needs a download is simply left out
            continue
        if image.ndim == 3 and image.shape[2] == 3:
            photos.append(np.asarray(image, dtype=np.uint8))
    return photos


def make_folder(folder: Path, count: int) -> list[str]:
    """``count`` 768×512 PNGs (shifted crops of the photos scaled to cover 1.25× the size); returns their names."""
    photos = source_photos()
    names = []
    for i in range(count):
        base = photos[i % len(photos)]
        scale = max(1.25 * WIDTH / base.shape[1], 1.25 * HEIGHT / base.shape[0])
        size = (round(base.shape[1] * scale), round(base.shape[0] * scale))
        big = np.asarray(Image.fromarray(base).resize(size, Image.Resampling.LANCZOS))
        step = i // len(photos)
        top = (step * 37) % (big.shape[0] - HEIGHT + 1)
        left = (step * 53) % (big.shape[1] - WIDTH + 1)
        crop = big[top : top + HEIGHT, left : left + WIDTH]
        if step % 2:
            crop = crop[:, ::-1]
        name = f"photo{i:04d}.png"
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / name)
        names.append(name)
    return names


def sursmr_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sursmr.cli import run; run()", "compress", *args]


def timed(command: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done.returncode, done.stderr[-2000:]


def digest_tree(folder: Path, extension: str) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob(f"*.{extension}"))
    }


def run_codec(
    codec: str, extension: str, src: Path, names: list[str], count: int, baseline: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    subset = Path(tempfile.mkdtemp(prefix=f"batch-{codec}-", dir=args.work))
    for name in names[:count]:
        os.link(src / name, subset / name)
    common = ["--codec", codec, "--device", "cpu", "-q"] + (["--model", args.model] if args.model else [])
    rows: list[dict[str, Any]] = []
    digests: dict[str, dict[str, str]] = {}
    for executor in args.executors.split(","):
        out = subset.parent / f"{subset.name}-{executor}"
        seconds, code, stderr = timed(
            sursmr_command(str(subset), "-o", str(out), "-j", str(args.workers), "--executor", executor, *common)
        )
        digests[executor] = digest_tree(out, extension)
        rows.append(
            {
                "codec": codec,
                "run": f"one batch, {executor} executor, {args.workers} workers",
                "images": count,
                "written": len(digests[executor]),
                "seconds": round(seconds, 1),
                "images_per_s": round(len(digests[executor]) / seconds, 3),
                "exit_code": code,
                **({"stderr": stderr} if code else {}),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    out = subset.parent / f"{subset.name}-per-image"
    start = time.perf_counter()
    codes = []
    for name in names[:baseline]:
        codes.append(timed(sursmr_command(str(subset / name), "-o", str(out), *common))[1])
    seconds = time.perf_counter() - start
    digests["per-image"] = digest_tree(out, extension)
    rows.append(
        {
            "codec": codec,
            "run": "one `sursmr compress` process per image (default jobs)",
            "images": baseline,
            "written": len(digests["per-image"]),
            "seconds": round(seconds, 1),
            "images_per_s": round(len(digests["per-image"]) / seconds, 3),
            "exit_code": max(codes, default=0),
        }
    )
    print(json.dumps(rows[-1]), file=sys.stderr)
    first = next(iter(digests.values()))
    for row, (_, found) in zip(rows, digests.items(), strict=True):
        row["same_outputs_as_first_run"] = sum(1 for k, v in found.items() if first.get(k) == v)
    return rows


def markdown(payload: dict[str, Any]) -> str:
    meta = payload["meta"]
    lines = [
        "# Batch throughput (768×512 photos)",
        "",
        f"Folder of {meta['photos']} photos; model `{meta['model']}` on cpu; {meta['cpus']} CPU cores "
        f"({meta['machine']}); targets SUR ≥ 0.75, SMR ≥ 0.9. Each run is one `sursmr compress` invocation timed "
        "from start to exit (model loading included); runs cover the first `images` photos of the folder. "
        "`same` counts outputs byte-identical to the first run's.",
        "",
        "| codec | run | images | written | seconds | images/s | same |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in payload["runs"]:
        lines.append(
            f"| {row['codec']} | {row['run']} | {row['images']} | {row['written']} | {row['seconds']} | "
            f"{row['images_per_s']} | {row['same_outputs_as_first_run']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200, help="photos in the folder")
    parser.add_argument("--jpeg-images", type=int, default=200)
    parser.add_argument("--bpg-images", type=int, default=40)
    parser.add_argument("--baseline-images", type=int, default=8, help="images for the one-process-per-image runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--model", default=None)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder [default: a temporary one]")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import codec_adapters
    from sursmr.predictor import DEFAULT_MODEL

    scratch = Path(tempfile.mkdtemp(prefix="sursmr-batch-bench-")) if args.work is None else args.work
    args.work = scratch
    try:
        src = scratch / "photos"
        src.mkdir(parents=True, exist_ok=True)
        names = make_folder(src, args.photos)
        runs: list[dict[str, Any]] = []
        for codec, count in (("jpeg", args.jpeg_images), ("bpg", args.bpg_images)):
            adapter = codec_adapters.get(codec)
            if count <= 0 or not adapter.availability().available:
                continue
            baseline = min(args.baseline_images, count)
            runs.extend(run_codec(codec, adapter.extension, src, names, count, baseline, args))
    finally:
        if args.work is not None and args.work.name.startswith("sursmr-batch-bench-"):
            shutil.rmtree(args.work, ignore_errors=True)
    payload = {
        "meta": {
            "photos": args.photos,
            "model": args.model or DEFAULT_MODEL,
            "workers": args.workers,
            "cpus": len(os.sched_getaffinity(0)),
            "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
            "argv": sys.argv[1:] if argv is None else argv,
        },
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (args.out / "batch.md").write_text(markdown(payload), encoding="utf-8")
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
