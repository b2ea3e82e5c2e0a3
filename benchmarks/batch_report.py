"""Batch benchmark: summary tables, markdown report and README headline (moved from batch.py)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from typing import Any

from benchmarks.batch_folder import (
    read_runs,
)
from sursmr.predictor import DEFAULT_MODEL

# --- report -------------------------------------------------------------------------------------------------------


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per codec and mode, from the piece records."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["codec"], r["mode"])
        row = rows.setdefault(
            key,
            {
                "codec": r["codec"],
                "mode": r["mode"],
                "workers": r.get("workers"),
                "runs": 0,
                "interrupted_runs": 0,
                "ray_start_failures": 0,
                "nice": set(),
                "images": 0,
                "failed": 0,
                "seconds": 0.0,
                "ray_start_s": [],
                "loads": [],
            },
        )
        if r.get("mode") == "ray" and not r["images"] and "cannot start or reach" in str(r.get("stderr_tail", "")):
            row["ray_start_failures"] += 1  # no throughput to measure: its time is not counted
            continue
        row["runs"] += 1
        row["nice"].add(r.get("nice"))
        row["interrupted_runs"] += 1 if r.get("interrupted") else 0
        row["images"] += r["images"]
        row["failed"] += r.get("failed", 0)
        # an interrupted run counts up to its last finished image; a finished one to its exit
        row["seconds"] += r["seconds_to_last_image"] if r.get("interrupted") else r["seconds"]
        if r.get("ray_start_s") is not None:
            row["ray_start_s"].append(r["ray_start_s"])
        row["loads"] += [v for v in (r.get("load_before"), r.get("load_after")) if v is not None]
    out = []
    for row in rows.values():
        row["nice"] = "/".join(str(n) for n in sorted(v for v in row["nice"] if v is not None)) or None
        ray = row.pop("ray_start_s")
        loads = row.pop("loads")
        working = row["seconds"] - sum(ray)
        answered = row["images"] + row["failed"]  # a target out of reach is a full search and an answer too
        row.update(
            seconds=round(row["seconds"], 1),
            ray_start_s_total=round(sum(ray), 1) if ray else None,
            ray_start_s_median=round(sorted(ray)[len(ray) // 2], 1) if ray else None,
            images_per_s=round(answered / working, 4) if working > 0 and answered else None,
            images_per_s_with_start=round(answered / row["seconds"], 4) if row["seconds"] and answered else None,
            seconds_per_image=round(working / answered, 1) if answered else None,
            load_mean=round(sum(loads) / len(loads), 2) if loads else None,
            load_max=max(loads) if loads else None,
        )
        out.append(row)
    order = {"local": 0, "ray": 1, "per-image": 2}
    return sorted(out, key=lambda r: (r["codec"], order.get(r["mode"], 9)))


def write_report(args: argparse.Namespace, names: list[str] | None = None) -> dict[str, Any]:
    records = read_runs(args.runs)
    if args.nice is not None:  # runs files from before pieces recorded their niceness
        records = [{"nice": args.nice, **r} for r in records]
    listing = args.work / "photos.json" if args.work is not None else None
    folder: dict[str, Any] = {}
    if listing is not None and listing.is_file():
        crops = json.loads(listing.read_text(encoding="utf-8"))["crops"][: args.photos]
        counts: dict[str, int] = {}
        for crop in crops:
            counts[crop["collection"]] = counts.get(crop["collection"], 0) + 1
        folder = {"photos": len(crops), "sources": len({c["source_id"] for c in crops}), "collections": counts}
    elif args.previous is not None:
        folder = args.previous.get("folder", {})
    payload = {
        "meta": {
            "model": args.model or f"{DEFAULT_MODEL} (default)",
            "cpus": len(os.sched_getaffinity(0)),
            "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
            "piece": max((r["planned"] for r in records if r["mode"] != "per-image"), default=args.piece),
            "first_run": min((r["started"] for r in records), default=None),
            "last_run": max((r["started"] for r in records), default=None),
        },
        "folder": folder,
        "rows": summarise(records),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (args.out / "batch.md").write_text(markdown(payload), encoding="utf-8")
    (args.out / "batch_headline.md").write_text(headline(payload), encoding="utf-8")
    if args.keep_runs and args.runs != args.out / "batch-runs.jsonl":
        shutil.copyfile(args.runs, args.out / "batch-runs.jsonl")
    return payload


MODE_TEXT = {
    "local": "one batch, local workers",
    "ray": "one batch, local Ray",
    "per-image": "one `sursmr compress` per image",
}


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def markdown(payload: dict[str, Any]) -> str:
    meta, folder = payload["meta"], payload["folder"]
    collections = ", ".join(f"{k} {v}" for k, v in sorted(folder.get("collections", {}).items()))
    lines = [
        "# Batch throughput (768×512 photos)",
        "",
        f"Folder of {folder.get('photos', '?')} photos from {folder.get('sources', '?')} source photos "
        f"({collections}); model `{meta['model']}` on cpu; {meta['cpus']} CPU cores ({meta['machine']}); the "
        "benchmark's niceness and the 1-minute load average around each run are in the table (a load above the "
        "core count means other work shared the cores); "
        f"runs from {meta['first_run']} to {meta['last_run']} UTC. Batches ran in pieces of {meta['piece']} photos "
        "(one CLI process each, model loading included); `images` were compressed, `failed` found no level meeting "
        "the targets (a full search all the same: `images/s` counts both); `images/s` leaves out the Ray start, "
        "which has its own "
        "columns; the per-image baseline runs on the first photos of the folder only (its `images` column). "
        "Targets: SUR ≥ 0.75, SMR ≥ 0.9 (defaults).",
        "",
        "| codec | run | workers | images | failed | CLI runs | seconds | Ray start s (total / median) "
        "| images/s | images/s with start | s/image | nice | load avg (mean / max) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = [row for row in payload["rows"] if row.get("ray_start_failures")]
    for row in payload["rows"]:
        ray = "–" if row["ray_start_s_total"] is None else f"{row['ray_start_s_total']} / {row['ray_start_s_median']}"
        lines.append(
            f"| {row['codec']} | {MODE_TEXT.get(row['mode'], row['mode'])} | {_cell(row['workers'])} | {row['images']} "
            f"| {row['failed']} | {row['runs']} | {row['seconds']} | {ray} | {_cell(row['images_per_s'])} "
            f"| {_cell(row['images_per_s_with_start'])} | {_cell(row['seconds_per_image'])} | {_cell(row['nice'])} "
            f"| {_cell(row['load_mean'])} / {_cell(row['load_max'])} |"
        )
    covered = [row["images"] + row["failed"] for row in payload["rows"] if row["mode"] != "per-image"]
    photos = folder.get("photos")
    if photos and covered and max(covered) < photos:
        lines += [
            "",
            f"Partial run: each batch row covers the first {min(covered)} to {max(covered)} of the {photos} photos; "
            "`python -m benchmarks.batch --work DIR` goes on from there.",
        ]
    for row in failures:
        lines += [
            "",
            f"{row['codec']}, local Ray: {row['ray_start_failures']} CLI run(s) ended before any image because the "
            "local Ray did not start (their time is not in the table); see `stderr_tail` in the runs file.",
        ]
    return "\n".join(lines) + "\n"


def headline(payload: dict[str, Any]) -> str:
    """A few lines for the main README's "Batch and pipelines" section."""
    parts = []
    for row in payload["rows"]:
        if row["images_per_s"] is None:
            continue
        parts.append(f"{row['codec']} {MODE_TEXT.get(row['mode'], row['mode'])}: {row['images_per_s']} images/s")
    folder = payload["folder"]
    counts = ", ".join(
        f"{row['codec']} {row['mode']} {row['images'] + row['failed']}"
        for row in payload["rows"]
        if row["images_per_s"]
    )
    if not parts:
        return "`benchmarks/batch.py` has no finished measurement yet.\n"
    load_max = max((row["load_max"] for row in payload["rows"] if row.get("load_max") is not None), default="?")
    return (
        f"Measured by `benchmarks/batch.py` ({payload['meta']['cpus']} CPU cores, 768×512 photos from a "
        f"{folder.get('photos', '?')}-photo folder, model loading included, Ray start left out): "
        + "; ".join(parts)
        + f" (images measured: {counts}; 1-minute load average up to {load_max} on {payload['meta']['cpus']} cores)"
        + ". Details in [benchmarks/README.md](benchmarks/README.md).\n"
    )
