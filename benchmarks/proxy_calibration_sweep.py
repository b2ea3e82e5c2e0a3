"""SUR proxy calibration, step 1: the sweep (slow, resumable) that :mod:`benchmarks.proxy_calibration` fits.

Centre-ish crops of the offline photo collections, encoded with JPEG and BPG
over a level grid, decoded and scored with the proxy's metrics plus PSNR and
bytes; one record per crop appended to :data:`SWEEP_FILE` as it finishes.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
SWEEP_FILE = RESULTS / "proxy_calibration_sweep.json"

COLLECTIONS = ("skimage", "opencv-doc")
CROP = (256, 256)
LARGE_CROP = (384, 384)
LARGE_EVERY = 10  # every 10th photo also gets a 384×384 crop (where it fits)
JPEG_LEVELS = (20, 30, 40, 50, 60, 70, 80, 90, 95)
BPG_LEVELS = (18, 22, 26, 30, 34, 38, 42, 46)
SWEEP_METRICS = ("butteraugli_3norm", "ssimulacra2", "vmaf")


def _crop_plan() -> list[Any]:
    from training.datasets.sources import gather_sources, plan_crops

    photos = gather_sources(COLLECTIONS)
    crops = plan_crops(photos, [CROP], [1.0], 1, seed=0)
    large = plan_crops(photos[::LARGE_EVERY], [LARGE_CROP], [1.0], 1, seed=1)
    return crops + [c for c in large if (c.height, c.width) == LARGE_CROP]


def _sweep_one(spec: Any) -> dict[str, Any]:
    import codec_adapters
    from sursmr.fidelity import psnr
    from training.datasets.sources import render_crop
    from training.metrics import METRICS

    image = render_crop(spec)
    metrics = {name: METRICS.get(name)() for name in SWEEP_METRICS}
    record: dict[str, Any] = {
        "crop_id": f"{spec.crop_id}@{spec.height}x{spec.width}",
        "source_id": spec.source_id,
        "height": spec.height,
        "width": spec.width,
        "codecs": {},
    }
    for codec_name, levels in (("jpeg", JPEG_LEVELS), ("bpg", BPG_LEVELS)):
        codec = codec_adapters.create(codec_name)
        rows: dict[str, list[float]] = {"levels": [float(v) for v in levels], "bytes": [], "psnr": []}
        rows.update({name: [] for name in SWEEP_METRICS})
        for level in levels:
            data = codec.encode(image, level)
            decoded = codec.decode(data)
            rows["bytes"].append(float(len(data)))
            rows["psnr"].append(float(psnr(image, decoded)))
            for name, metric in metrics.items():
                rows[name].append(float(metric.score(image, decoded)))
        record["codecs"][codec_name] = rows
    return record


def run_sweep(jobs: int) -> list[dict[str, Any]]:
    """Score every planned crop not yet in the sweep file; return all records."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    done: list[dict[str, Any]] = json.loads(SWEEP_FILE.read_text())["crops"] if SWEEP_FILE.exists() else []
    have = {r["crop_id"] for r in done}
    todo = [s for s in _crop_plan() if f"{s.crop_id}@{s.height}x{s.width}" not in have]
    print(f"sweep: {len(done)} crops done, {len(todo)} to go", file=sys.stderr)

    def save() -> None:
        meta = {
            "collections": list(COLLECTIONS),
            "metrics": list(SWEEP_METRICS),
            "jpeg_levels": list(JPEG_LEVELS),
            "bpg_levels": list(BPG_LEVELS),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        }
        SWEEP_FILE.write_text(json.dumps({"meta": meta, "crops": done}, indent=1) + "\n")

    start = time.time()
    if jobs > 1 and todo:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for record in pool.imap_unordered(_sweep_one, todo):
                done.append(record)
                save()
                print(f"  {record['crop_id']} ({len(done)}; {time.time() - start:.0f} s)", file=sys.stderr)
    else:
        for spec in todo:
            done.append(_sweep_one(spec))
            save()
            print(f"  {done[-1]['crop_id']} ({len(done)}; {time.time() - start:.0f} s)", file=sys.stderr)
    done.sort(key=lambda r: r["crop_id"])
    save()
    return done
