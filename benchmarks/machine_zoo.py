"""The SMR machine zoo on real photo crops: CPU cost per machine, applicability and best-level noise floor.

Takes ``--crops`` 256×256 crops (one per photo, photos alternating between
the scikit-image and opencv-doc collections, at scale 1 or 0.5 from a fixed
seed), encodes each with JPEG at ``--levels`` (default 100, 95 and 30),
runs every available machine on the original and on each decoded image and
stores per-machine verdicts per level exactly as dataset item records do.
Then :func:`training.labels.smr.machine_report` gives, per machine, the
applicability rate and the share of applicable crops it calls "not
satisfied" at the best level (noise floor), once with q100 as the best
level and once with q95 (the levels above it dropped), plus the worst-level
share as the signal. CPU cost is process CPU time (this process and its
children, e.g. tesseract) per ``analyse`` call on a 256×256 image, median
over all calls after one untimed warm-up call per machine.

Writes ``benchmarks/results/machine_zoo.json`` and ``.md`` and prints the
Markdown table. ``--coverage RECIPE`` instead samples ``--crops`` crops of
that recipe's own crop plan (evenly spread) and only asks, on each original,
which machines of the recipe's jury apply: how many crops would get an SMR
label for each K (``machine_zoo_coverage.json`` / ``.md``)::

    .venv/bin/python benchmarks/machine_zoo.py --crops 20
    .venv/bin/python benchmarks/machine_zoo.py --crops 4 --machines efficientnet_lite0,mtcnn_face
    .venv/bin/python benchmarks/machine_zoo.py --coverage default --crops 60
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import codec_adapters
from sursmr_core.imaging import RGBImage
from training.datasets.sources import gather_sources, plan_crops, render_crop
from training.labels.smr import applicable_per_crop, applicable_summary, machine_report, zoo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIDE = 256
SEED = 20261201


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def sample_crops(count: int) -> list[tuple[str, RGBImage]]:
    """``count`` 256×256 crops, one per photo, alternating between the two collections."""
    photos = gather_sources(("skimage", "opencv-doc"))
    by_collection = [[p for p in photos if p.collection == name] for name in ("skimage", "opencv-doc")]
    order = [p for pair in zip(*by_collection, strict=False) for p in pair]
    order += [p for group in by_collection for p in group if p not in order]
    crops = []
    for i, photo in enumerate(order):
        specs = plan_crops([photo], [(SIDE, SIDE)], [1.0 if i % 2 else 0.5], 1, SEED)
        if specs and (specs[0].height, specs[0].width) == (SIDE, SIDE):
            crops.append((specs[0].crop_id, render_crop(specs[0])))
        if len(crops) == count:
            break
    return crops


def run(crop_count: int, levels: Sequence[int], names: Sequence[str] | None) -> dict[str, Any]:
    jpeg = codec_adapters.create("jpeg")
    machines = zoo(names)
    crops = sample_crops(crop_count)
    seconds: dict[str, list[float]] = {m.name: [] for m in machines}
    warm = set()
    records: list[dict[str, Any]] = []
    all_verdicts: list[dict[str, list[bool | None]]] = []
    for index, (crop_id, rgb) in enumerate(crops):
        decoded = [jpeg.decode(jpeg.encode(rgb, level)) for level in levels]
        verdicts: dict[str, list[bool | None]] = {}
        for machine in machines:
            if machine.name not in warm:
                machine.analyse(rgb)  # loads the model: not timed
                warm.add(machine.name)
            results = []
            for image in (rgb, *decoded):
                start = cpu_seconds()
                results.append(machine.analyse(image))
                seconds[machine.name].append(cpu_seconds() - start)
            verdicts[machine.name] = [machine.judge(results[0], r) for r in results[1:]]
        records.append(
            {
                "item_id": f"{crop_id}/jpeg",
                "crop_id": crop_id,
                "levels": list(levels),
                "better": "higher",
                "labels": {"machine_verdicts": verdicts},
            }
        )
        all_verdicts.append(verdicts)
        print(f"machine_zoo: crop {index + 1}/{len(crops)} {crop_id}", file=sys.stderr, flush=True)
    below = [i for i, level in enumerate(levels) if level <= 95]
    capped = [
        {
            **r,
            "levels": [levels[i] for i in below],
            "labels": {"machine_verdicts": {n: [v[i] for i in below] for n, v in verdicts.items()}},
        }
        for r, verdicts in zip(records, all_verdicts, strict=True)
    ]
    best100 = {row.machine: row for row in machine_report(records)}
    best95 = {row.machine: row for row in machine_report(capped)}
    rows = []
    for machine in machines:
        a, b = best100[machine.name], best95[machine.name]
        rows.append(
            {
                "machine": machine.name,
                "task": machine.task,
                "cpu_s_per_image": round(statistics.median(seconds[machine.name]), 4),
                "crops": a.items,
                "applicable": a.applicable,
                "applicability_rate": a.to_dict()["applicability_rate"],
                "noise_floor_q100": a.to_dict()["noise_floor"],
                "noise_floor_q95": b.to_dict()["noise_floor"],
                f"unsatisfied_q{min(levels)}": a.to_dict()["worst_level_unsatisfied"],
            }
        )
    counts = applicable_per_crop(records)
    return {
        "what": "SMR machine zoo on real photo crops (proxy labels): cost, applicability, noise floor",
        "crops": [c for c, _ in crops],
        "levels": list(levels),
        "machines": rows,
        "applicable_per_crop": applicable_summary(counts.values()),
        "records": records,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }


def coverage(recipe_name: str, crop_count: int) -> dict[str, Any]:
    """Which machines of a recipe's jury apply to ``crop_count`` crops spread over its plan (originals only)."""
    from training.datasets.recipe import load_recipe

    recipe = load_recipe(recipe_name)
    from training.datasets.builder import choose_sources

    photos = choose_sources(gather_sources(recipe.collections, recipe.source_dirs), recipe.max_sources, recipe.seed)
    plan = plan_crops(
        photos, recipe.crop_sizes, recipe.crop_scales, recipe.crops_per_source, recipe.seed, recipe.scale_reference
    )
    # evenly spread over the plan, so every crop scale and collection is sampled (a step that is a multiple
    # of crops_per_source would pick one scale only)
    picks = sorted({round(float(x)) for x in np.linspace(0, len(plan) - 1, min(crop_count, len(plan)))})
    chosen = [plan[i] for i in picks]
    machines = zoo(recipe.machines)
    rows: list[dict[str, Any]] = []
    votes: list[dict[str, bool]] = []
    for index, spec in enumerate(chosen):
        rgb = render_crop(spec)
        votes.append({m.name: bool(m.applies(m.analyse(rgb))) for m in machines})
        rows.append({"crop_id": spec.crop_id, "applies": votes[-1]})
        print(f"machine_zoo: crop {index + 1}/{len(chosen)} {spec.crop_id}", file=sys.stderr, flush=True)
    counts = [sum(applies.values()) for applies in votes]
    return {
        "what": f"applicable machines of recipe {recipe.name!r}'s SMR jury on its own crops (originals only)",
        "recipe": recipe.name,
        "crops_in_plan": len(plan),
        "crops": len(rows),
        "applicable_per_machine": {m.name: sum(applies[m.name] for applies in votes) for m in machines},
        "by_k": [applicable_summary(counts, k) for k in range(1, 7)],
        "rows": rows,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }


def coverage_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"SMR jury of recipe `{result['recipe']}` on {result['crops']} of its {result['crops_in_plan']} crops "
        "(evenly spread over the plan): machines whose task applies to the original.",
        "",
        "| machine | applicable crops |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {n}/{result['crops']} |" for name, n in result["applicable_per_machine"].items()]
    lines += ["", "| K | crops with an SMR label |", "|---:|---:|"]
    lines += [f"| {row['k']} | {row['crops'] - row['below_k']}/{row['crops']} |" for row in result["by_k"]]
    first = result["by_k"][0]
    lines += ["", f"Applicable machines per crop: median {first['median']}, 10th percentile {first['p10']}."]
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    worst = f"unsatisfied_q{min(result['levels'])}"
    lines = [
        f"SMR machine zoo on {len(result['crops'])} 256×256 photo crops "
        f"(JPEG levels {result['levels']}; proxy labels).",
        "",
        f"| machine | task | CPU s / image | applicable | noise floor (best q100) | noise floor (best q95) | "
        f"not satisfied at q{min(result['levels'])} |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.0f} %"

    for row in result["machines"]:
        lines.append(
            f"| {row['machine']} | {row['task']} | {row['cpu_s_per_image']:.3f} | {row['applicable']}/{row['crops']} | "
            f"{pct(row['noise_floor_q100'])} | {pct(row['noise_floor_q95'])} | {pct(row[worst])} |"
        )
    summary = result["applicable_per_crop"]
    lines += [
        "",
        f"Applicable machines per crop: median {summary['median']}, 10th percentile {summary['p10']}; "
        f"{summary['below_k']} of {summary['crops']} crops below K = {summary['k']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=20, help="number of 256×256 crops (default 20)")
    parser.add_argument("--levels", default="100,95,30", help="JPEG qualities, comma-separated (default 100,95,30)")
    parser.add_argument("--machines", default=None, help="comma-separated machines (default: every available one)")
    parser.add_argument("--coverage", metavar="RECIPE", default=None, help="only applicability on a recipe's crops")
    parser.add_argument("--out", type=Path, default=None, help="output path without extension")
    args = parser.parse_args(argv)
    if args.coverage is not None:
        covered = coverage(args.coverage, args.crops)
        out = args.out or RESULTS / "machine_zoo_coverage"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(covered, indent=1) + "\n", encoding="utf-8")
        text = coverage_markdown(covered)
        out.with_suffix(".md").write_text(text, encoding="utf-8")
        print(text)
        return 0
    args.out = args.out or RESULTS / "machine_zoo"
    names = None if args.machines is None else [m.strip() for m in args.machines.split(",") if m.strip()]
    levels = sorted({int(v) for v in args.levels.split(",")}, reverse=True)
    result = run(args.crops, levels, names)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = markdown(result)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
