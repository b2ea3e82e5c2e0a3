"""Per-labeller cost of one 256×256 image: every registered metric and machine, and the codecs' encode+decode.

For ``--images`` photo crops (256×256, from the offline photo collections)
and a JPEG q50 version of each, it times:

* metrics: ``score(reference, distorted)`` per pair (core-seconds per labelled image);
* machines: ``analyse`` per image (a sweep runs it once per decoded image,
  plus once on the reference per crop);
* codecs: encode + decode, every level of the default recipe's grid once
  (the mean is the cost of one grid level);
* ``first_call_s``: the first call (model loading and warm-up, paid once per worker).

Times are CPU seconds of this process and of the tools it runs
(``getrusage``), so they hold on a machine shared with other jobs; wall
seconds are reported beside them. Run it single-threaded
(``OMP_NUM_THREADS=1``, torch threads 1), as the builder's workers are.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/labeller_cost.py --images 6
    python benchmarks/labeller_cost.py --only ssim,vmaf,efficientnet_lite0

Writes ``benchmarks/results/labeller_cost.json`` (per labeller: median and
mean core-seconds per image, median wall seconds, first-call cost,
availability) and prints one JSON line per labeller to stdout. Metrics that
share a tool run (vmaf_neg after vmaf, butteraugli_3norm after
butteraugli_max) show the cost of reusing it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (tools run as subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_each(fn: Any, args: list[tuple[Any, ...]]) -> tuple[list[float], list[float], float]:
    """(core-seconds per call, wall seconds per call, core-seconds of the first call: loading + warm-up)."""
    start = _cpu_seconds()
    fn(*args[0])
    first = _cpu_seconds() - start
    cpu, wall = [], []
    for a in args:
        start, start_wall = _cpu_seconds(), time.perf_counter()
        fn(*a)
        cpu.append(_cpu_seconds() - start)
        wall.append(time.perf_counter() - start_wall)
    return cpu, wall, first


def _row(kind: str, name: str, timed: tuple[list[float], list[float], float], **extra: Any) -> dict[str, Any]:
    cpu, wall, first = timed
    return {
        "kind": kind,
        "name": name,
        "available": True,
        "median_s": round(statistics.median(cpu), 5),
        "mean_s": round(statistics.fmean(cpu), 5),
        "median_wall_s": round(statistics.median(wall), 5),
        "n": len(cpu),
        "first_call_s": round(first, 3),
        **extra,
    }


def _grid(codec: str) -> list[int]:
    from training.datasets.recipe import DEFAULT_RECIPE

    return list(DEFAULT_RECIPE.plan(codec).levels)


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
                labeller = cls()
                if kind == "metric":
                    timed = _time_each(labeller.score, list(zip(refs, dists, strict=True)))
                else:
                    timed = _time_each(labeller.analyse, [(d,) for d in dists])
            except Exception as exc:  # a labeller that fails here is reported, not fatal
                rows.append({"kind": kind, "name": name, "available": False, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            rows.append(_row(kind, name, timed))
            print(json.dumps(rows[-1]), flush=True)
    for codec in codecs:
        if only is not None and codec not in only:
            continue
        cls = codec_adapters.get(codec)
        if not cls.availability().available:
            rows.append({"kind": "codec", "name": codec, "available": False, "reason": cls.availability().reason})
            continue
        adapter = codec_adapters.create(codec)
        grid = _grid(codec)
        # every level of the default recipe's grid, in turn over the crops: the mean cost of one grid level
        jobs = [(refs[i % len(refs)], level) for i, level in enumerate(grid)]
        timed = _time_each(lambda r, q, a=adapter: a.decode(a.encode(r, q)), jobs)
        rows.append(_row("codec", codec, timed, levels=f"{min(grid)}-{max(grid)} ({len(grid)})"))
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
        "what": "core-seconds (CPU of the process and its tools) per 256x256 image, single thread (metrics: one "
        "score() per pair; machines: one analyse() per image; codecs: encode+decode, mean over the default grid)",
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
