"""Per-labeller cost of one 256×256 image: every registered metric and machine, and the codecs' encode+decode.

For ``--images`` photo crops (256×256, from the offline photo collections)
and a JPEG q50 version of each, it times:

* metrics: ``score(reference, distorted)`` per pair (core-seconds per labelled image);
* machines: ``analyse`` per image (a sweep runs it once per decoded image,
  plus once on the reference per crop);
* codecs: encode + decode of one level, per recipe codec (mid-grid level);
* load: constructing the labeller once (model loading, paid once per worker).

Run it single-threaded (``OMP_NUM_THREADS=1``, torch threads 1) so the numbers
are core-seconds, as the builder's workers use. The first call of each
labeller is a warm-up and not timed.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/labeller_cost.py --images 6
    python benchmarks/labeller_cost.py --only ssim,vmaf,efficientnet_lite0

Writes ``benchmarks/results/labeller_cost.json`` (per labeller: median and
mean seconds per image, load seconds, availability) and prints one JSON
line per labeller to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def sample_crops(count: int, seed: int = 7) -> list[np.ndarray]:
    """``count`` 256×256 crops of the offline photos (one per photo, spread over the collections)."""
    from training.datasets.sources import COLLECTIONS, gather_sources, plan_crops, render_crop

    names = [name for name in COLLECTIONS.names() if COLLECTIONS.get(name).availability().available]
    photos = gather_sources(names)
    step = max(1, len(photos) // count)
    chosen = photos[::step][:count]
    crops = plan_crops(chosen, [(256, 256)], [1.0], 1, seed)
    return [render_crop(c) for c in crops]


def _time_each(fn: Any, args: list[tuple[Any, ...]]) -> list[float]:
    fn(*args[0])  # warm-up
    times = []
    for a in args:
        start = time.perf_counter()
        fn(*a)
        times.append(time.perf_counter() - start)
    return times


def _row(kind: str, name: str, times: list[float], load_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "available": True,
        "median_s": round(statistics.median(times), 5),
        "mean_s": round(statistics.fmean(times), 5),
        "n": len(times),
        "load_s": round(load_s, 3),
        **extra,
    }


def measure(images: int, only: set[str] | None, codecs: list[str]) -> list[dict[str, Any]]:
    import codec_adapters
    from training.machines import MACHINES
    from training.metrics import METRICS

    refs = sample_crops(images)
    jpeg = codec_adapters.create("jpeg")
    dists = [jpeg.decode(jpeg.encode(r, 50)) for r in refs]
    rows: list[dict[str, Any]] = []
    for registry, kind in ((METRICS, "metric"), (MACHINES, "machine")):
        for name in registry.names():
            if only is not None and name not in only:
                continue
            cls = registry.get(name)
            status = cls.availability()
            if not status.available:
                rows.append({"kind": kind, "name": name, "available": False, "reason": status.reason})
                continue
            try:
                start = time.perf_counter()
                labeller = cls()
                load_s = time.perf_counter() - start
                if kind == "metric":
                    times = _time_each(labeller.score, list(zip(refs, dists, strict=True)))
                else:
                    times = _time_each(labeller.analyse, [(d,) for d in dists])
            except Exception as exc:  # a labeller that fails here is reported, not fatal
                rows.append({"kind": kind, "name": name, "available": False, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            rows.append(_row(kind, name, times, load_s))
            print(json.dumps(rows[-1]), flush=True)
    for codec in codecs:
        if only is not None and codec not in only:
            continue
        cls = codec_adapters.get(codec)
        if not cls.availability().available:
            rows.append({"kind": "codec", "name": codec, "available": False, "reason": cls.availability().reason})
            continue
        adapter = codec_adapters.create(codec)
        lo, hi = cls.levels.lo, cls.levels.hi
        level = (lo + hi) // 2 if codec != "jpeg" else 60
        times = _time_each(lambda r, a=adapter, q=level: a.decode(a.encode(r, q)), [(r,) for r in refs])
        rows.append(_row("codec", codec, times, 0.0, level=level))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6, help="number of 256x256 crops to time (default 6)")
    parser.add_argument("--only", default=None, help="comma-separated labeller/codec names (default: all)")
    parser.add_argument("--codecs", default="jpeg,bpg,vvc", help="codecs to time encode+decode for")
    parser.add_argument("--out", type=Path, default=RESULTS / "labeller_cost.json")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    only = None if args.only is None else {s.strip() for s in args.only.split(",") if s.strip()}
    start = time.perf_counter()
    rows = measure(args.images, only, [c for c in args.codecs.split(",") if c])
    result = {
        "what": "seconds per 256x256 image, single thread (metrics: one score() per pair; machines: one "
        "analyse() per image; codecs: encode+decode of one level)",
        "images": args.images,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if only is not None and args.out.is_file():  # merge a partial rerun into the previous results
        old = json.loads(args.out.read_text(encoding="utf-8"))
        kept = [r for r in old.get("rows", []) if r["name"] not in only]
        result["rows"] = kept + rows
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
