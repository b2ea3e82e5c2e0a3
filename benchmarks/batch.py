"""Batch throughput: images/s of ``sursmr compress FOLDER`` (local workers, Ray) against one process per image.

**The folder.** ``--photos`` (default 200) 768×512 PNG photos cut from the
offline photo collections of :mod:`training.datasets.sources` (scikit-image,
Debian opencv-doc, matplotlib and the Debian wallpaper packages that are
installed; the ``lomiri-wallpapers`` packages stay out, as everywhere: they
are reserved for outside checks). Photos are taken round-robin over the
collections; crop 1 of a photo is the whole photo scaled to cover 768×512
(centred), crop 2 a 1.6× closer view at a seeded position, and so on until
the folder is full, so every image is a different view (small photos are
enlarged to fit; ``photos.json`` records each crop's source, scale and
licence). The folder is made once in ``--work`` and reused.

**The runs.** Every run is the real CLI in a fresh process (``nice`` as
this script), timed from start to exit, so model loading counts: a batch
loads the model once per worker, the per-image baseline once per image.

- *batch, local / ray*: ``sursmr compress WORK/photos --glob PIECE -o OUT
  -j WORKERS --executor E --resume --json``. The folder runs in pieces of
  ``--piece`` photos (a ``--glob`` over the names), so the benchmark can stop
  and go on later, and codecs and executors take turns piece by piece and see
  the same machine load. Throughput = images / (seconds − Ray start), summed
  over pieces; the Ray start (parsed from the CLI's stderr) is reported
  apart, and so is the rate with start-up included.
- *one process per image*: ``sursmr compress WORK/photos/photoNNNN.png -o OUT``
  (default ``-j``: the image's encodes in parallel), on the first
  ``--baseline-images`` photos only (it is slow); one image per turn.

**Resuming.** Each finished piece is a line in ``WORK/runs.jsonl``; a piece
in progress keeps ``WORK/partial/*.json`` up to date after each image, so
when this script is killed the images finished so far still count (time up
to the last finished image), and the next start reruns that piece with
``--resume`` (its finished images are skipped, not counted twice). Stop
after ``--budget-s`` seconds (between pieces) and start again later with the
same ``--work``.

    nice -n 10 python -m benchmarks.batch --work /var/tmp/sursmr-batch --out /var/tmp/sursmr-batch/results
    python -m benchmarks.batch --work /var/tmp/sursmr-batch --report-only       # tables from runs.jsonl
    python -m benchmarks.batch --runs benchmarks/results/batch-runs.jsonl --report-only

Writes ``batch.json``, ``batch.md`` and ``batch_headline.md`` to ``--out``
(default ``benchmarks/results``) and, with ``--keep-runs``, copies
``runs.jsonl`` there as ``batch-runs.jsonl``, the file the tables come from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WIDTH, HEIGHT = 768, 512
COLLECTIONS = (
    "skimage",
    "opencv-doc",
    "opencv-doc-more",
    "matplotlib",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "ukui-wallpapers",
    "gnome-backgrounds",
    "lxqt-themes",
)
"""Colour photo collections the folder is cut from (greyscale ``skimage-grey`` and ``lomiri-wallpapers*`` out)."""
ZOOMS = (1.0, 1.6, 2.5, 4.0, 6.0)
"""Crop k of a photo: the photo scaled to ``ZOOMS[k]`` × the scale that just covers 768×512."""
FOLDER_VERSION = 1
RAY_STARTED = re.compile(r"(?:started a local Ray|connected to the Ray cluster)\S*.* in ([0-9.]+) s")


# --- the folder ---------------------------------------------------------------------------------------------------


def plan_folder(count: int) -> list[dict[str, Any]]:
    """``count`` crops: photos round-robin over collections, crop k of each photo at zoom ``ZOOMS[k]``."""
    import numpy as np

    from training.datasets.crops import stable_seed
    from training.datasets.sources import COLLECTIONS as REGISTERED
    from training.datasets.sources import gather_sources

    names = [name for name in COLLECTIONS if name in REGISTERED.names()]
    photos = gather_sources(names)
    by_collection: dict[str, list[Any]] = {}
    for photo in photos:
        by_collection.setdefault(photo.collection, []).append(photo)
    order: list[Any] = []
    queues = [by_collection[name] for name in sorted(by_collection)]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    from PIL import Image

    plan: list[dict[str, Any]] = []
    for k in range(len(ZOOMS)):
        for photo in order:
            if len(plan) == count:
                return plan
            with Image.open(photo.path) as im:
                width, height = im.size
            scale = max(WIDTH / width, HEIGHT / height) * ZOOMS[k]
            scaled_w, scaled_h = max(WIDTH, round(width * scale)), max(HEIGHT, round(height * scale))
            if k == 0:
                top, left = (scaled_h - HEIGHT) // 2, (scaled_w - WIDTH) // 2
            else:
                rng = np.random.default_rng(stable_seed("benchmarks.batch", photo.source_id, k))
                top, left = int(rng.integers(0, scaled_h - HEIGHT + 1)), int(rng.integers(0, scaled_w - WIDTH + 1))
            plan.append(
                {
                    "name": f"photo{len(plan):04d}.png",
                    "source_id": photo.source_id,
                    "collection": photo.collection,
                    "licence": photo.licence,
                    "path": str(photo.path),
                    "zoom": ZOOMS[k],
                    "scale": round(scale, 6),
                    "top": top,
                    "left": left,
                }
            )
    if len(plan) < count:
        raise SystemExit(f"only {len(plan)} crops can be made from the installed collections; use --photos {len(plan)}")
    return plan


def make_folder(work: Path, count: int) -> list[str]:
    """The folder ``work/photos`` (made once; ``photos.json`` says what is in it); returns the image names."""
    folder, listing = work / "photos", work / "photos.json"
    if listing.is_file():
        known = json.loads(listing.read_text(encoding="utf-8"))
        if known.get("version") == FOLDER_VERSION and len(known["crops"]) >= count:
            names = [crop["name"] for crop in known["crops"][:count]]
            if all((folder / name).is_file() for name in names):
                return names
    import numpy as np
    from PIL import Image

    from training.datasets.crops import CropSpec, render_crop

    plan = plan_folder(count)
    folder.mkdir(parents=True, exist_ok=True)
    for crop in _bar(plan, "making the folder"):
        spec = CropSpec(
            crop["name"], crop["source_id"], crop["path"], crop["scale"], HEIGHT, WIDTH, crop["top"], crop["left"]
        )
        target = folder / crop["name"]
        if not target.is_file():
            rgb = render_crop(spec)
            temp = target.with_name(f".{target.name}.part")
            Image.fromarray(np.ascontiguousarray(rgb)).save(temp, format="PNG")
            os.replace(temp, target)
    listing.write_text(json.dumps({"version": FOLDER_VERSION, "crops": plan}, indent=1) + "\n", encoding="utf-8")
    return [crop["name"] for crop in plan]


def _bar(items: list[Any], desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, file=sys.stderr, dynamic_ncols=True)


# --- runs ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One CLI run: ``mode`` is an executor (``local``, ``ray``) or ``per-image``."""

    codec: str
    mode: str
    index: int
    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.codec}-{self.mode}-{self.index:04d}"


def piece_glob(names: tuple[str, ...]) -> str:
    """A glob matching exactly ``names``: consecutive ``photoNNNN.png`` within one ten (piece of 1, 2, 5 or 10)
    or one hundred (20, 50, 100), starting at a multiple of their count."""
    first, last = int(names[0][5:9]), int(names[-1][5:9])
    if first // 10 == last // 10:
        return f"photo{first // 10:03d}[{first % 10}-{last % 10}].png"
    return f"photo{first // 100:02d}[{first // 10 % 10}-{last // 10 % 10}]?.png"


def pieces_for(codec: str, mode: str, names: list[str], size: int) -> list[Piece]:
    step = 1 if mode == "per-image" else size
    return [Piece(codec, mode, i // step, tuple(names[i : i + step])) for i in range(0, len(names), step)]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Journal:
    """``runs.jsonl`` (finished or interrupted pieces) and ``partial/`` (the piece now running)."""

    def __init__(self, work: Path) -> None:
        self.path = work / "runs.jsonl"
        self.partial = work / "partial"
        self.partial.mkdir(parents=True, exist_ok=True)
        # a piece whose run was killed with this script: its images so far count, then it is run again
        for stale in sorted(self.partial.glob("*.json")):
            try:
                record = json.loads(stale.read_text(encoding="utf-8"))
            except ValueError:
                record = None
            if record and record.get("images", 0) > 0:
                self.add({**record, "complete": False, "interrupted": True})
            stale.unlink()

    def records(self) -> list[dict[str, Any]]:
        return read_runs(self.path)

    def done(self) -> set[str]:
        return {r["piece"] for r in self.records() if r.get("complete")}

    def add(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def progress(self, piece: Piece, record: dict[str, Any]) -> None:
        target = self.partial / f"{piece.key}.json"
        temp = target.with_suffix(".tmp")
        temp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temp, target)

    def finish(self, piece: Piece, record: dict[str, Any]) -> None:
        self.add(record)
        (self.partial / f"{piece.key}.json").unlink(missing_ok=True)


def read_runs(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a kill
    return records


def _die_with_us() -> None:
    from sursmr_core.toolrun import die_with_parent

    die_with_parent(signal.SIGTERM)  # the CLI cleans up (workers, Ray) on SIGTERM


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sursmr.cli import run; run()", "compress", *args]


def run_piece(piece: Piece, args: argparse.Namespace, journal: Journal, bar: Any) -> dict[str, Any]:
    """Run one piece, streaming its ``--json`` lines into the journal; returns its record."""
    photos = args.work / "photos"
    out = args.work / "out" / f"{piece.codec}-{piece.mode}"
    common = ["--codec", piece.codec, "--device", "cpu", "-o", str(out), "--resume", "--json"]
    common += ["--model", args.model] if args.model else []
    if piece.mode == "per-image":
        command = cli(str(photos / piece.names[0]), *common)
    else:
        command = cli(
            str(photos),
            "--glob",
            piece_glob(piece.names),
            "-j",
            str(args.workers),
            "--executor",
            piece.mode,
            "--ray-start-timeout",
            str(args.ray_start_timeout),
            *common,
        )
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{piece.key}.log"
    record: dict[str, Any] = {
        "piece": piece.key,
        "codec": piece.codec,
        "mode": piece.mode,
        "workers": args.workers if piece.mode != "per-image" else None,
        "planned": len(piece.names),
        "images": 0,
        "skipped": 0,
        "failed": 0,
        "seconds": 0.0,
        "seconds_to_last_image": 0.0,
        "ray_start_s": None,
        "load_before": load_average(),
        "nice": os.nice(0),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    bar.set_postfix_str(f"{piece.codec} {piece.mode} {piece.names[0]}…")
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=_die_with_us, cwd=ROOT
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("skipped"):
                    record["skipped"] += 1
                elif row.get("error"):
                    record["failed"] += 1
                    record.setdefault("errors", []).append(str(row["error"])[:300])
                else:
                    record["images"] += 1
                    bar.update()
                record["seconds_to_last_image"] = round(time.perf_counter() - start, 2)
                record["ray_start_s"] = ray_start_seconds(log)
                journal.progress(piece, record)
            code = process.wait()
        except BaseException:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    record.update(
        seconds=round(time.perf_counter() - start, 2),
        exit_code=code,
        ray_start_s=ray_start_seconds(log),
        load_after=load_average(),
        # every image answered (a target out of reach is an answer, exit 5); a piece cut short runs again
        complete=record["images"] + record["skipped"] + record["failed"] == len(piece.names),
    )
    if code != 0:
        record["stderr_tail"] = log.read_text(encoding="utf-8", errors="replace")[-1500:]
    journal.finish(piece, record)
    return record


def ray_start_seconds(log: Path) -> float | None:
    try:
        found = RAY_STARTED.search(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return float(found.group(1)) if found else None


def schedule(names: list[str], args: argparse.Namespace, done: set[str]) -> Iterator[Piece]:
    """Pieces in turns: every codec and executor one piece, then one per-image photo, round after round."""
    lanes: list[list[Piece]] = []
    for codec in args.codecs:
        for mode in args.executors:
            lanes.append(pieces_for(codec, mode, names, args.piece))
        if args.baseline_images > 0:
            lanes.append(pieces_for(codec, "per-image", names[: args.baseline_images], args.piece))
    while any(lanes):
        for lane in lanes:
            while lane and lane[0].key in done:
                lane.pop(0)
            if lane:
                yield lane.pop(0)


def run_all(args: argparse.Namespace) -> None:
    import codec_adapters

    names = make_folder(args.work, args.photos)
    available = []
    for codec in args.codecs:
        if codec_adapters.get(codec).availability().available:
            available.append(codec)
        else:
            print(f"batch benchmark: {codec} is not available here; left out", file=sys.stderr)
    args.codecs = available
    journal = Journal(args.work)
    done = journal.done()
    todo = list(schedule(names, args, done))
    total = sum(len(p.names) for p in todo)
    started = time.monotonic()
    from tqdm import tqdm

    with tqdm(total=total, desc="batch benchmark", unit="img", file=sys.stderr, dynamic_ncols=True) as bar:
        for piece in todo:
            if args.budget_s is not None and time.monotonic() - started > args.budget_s:
                print(f"batch benchmark: --budget-s {args.budget_s:g} spent; run again to go on", file=sys.stderr)
                break
            record = run_piece(piece, args, journal, bar)
            bar.update(len(piece.names) - record["images"])  # skipped or failed images leave the to-do list too
            if record.get("exit_code") not in (0, None) and not record["images"]:
                print(f"batch benchmark: {piece.key} failed: {record.get('stderr_tail', '')[-400:]}", file=sys.stderr)
            write_report(args, names)


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
            "model": args.model or "sursmr-effnet-lite0 (default)",
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
        f"({collections}); model `{meta['model']}` on cpu; {meta['cpus']} CPU cores ({meta['machine']}), shared with a "
        f"dataset build at higher priority (the benchmark's niceness and the load average are in the table); "
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
    return (
        f"Measured by `benchmarks/batch.py` ({payload['meta']['cpus']} shared CPU cores, 768×512 photos from a "
        f"{folder.get('photos', '?')}-photo folder, model loading included, Ray start left out): "
        + "; ".join(parts)
        + f" (images measured: {counts}; a shared machine under heavy load, so absolute rates are low)"
        + ". Details in [benchmarks/README.md](benchmarks/README.md).\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="folder for photos, outputs and runs.jsonl (kept)")
    parser.add_argument("--photos", type=int, default=200, help="photos in the folder [200]")
    parser.add_argument("--codecs", default="jpeg,bpg", help="[jpeg,bpg]")
    parser.add_argument("--executors", default="local,ray", help="[local,ray]")
    parser.add_argument("--workers", type=int, default=2, help="-j of the batch runs [2]")
    parser.add_argument(
        "--piece", type=int, default=10, choices=(1, 2, 5, 10, 20, 50, 100), help="photos per batch run [10]"
    )
    parser.add_argument("--baseline-images", type=int, default=10, help="photos for one-process-per-image [10]")
    parser.add_argument("--ray-start-timeout", type=float, default=600.0, help="seconds Ray may take to start [600]")
    parser.add_argument("--budget-s", type=float, default=None, help="start no new piece after this many seconds")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the tables go [benchmarks/results]")
    parser.add_argument("--runs", type=Path, default=None, help="the runs file [WORK/runs.jsonl]")
    parser.add_argument("--nice", type=int, default=None, help="niceness the runs had (runs files without it)")
    parser.add_argument("--report-only", action="store_true", help="only write the tables from the runs file")
    parser.add_argument("--keep-runs", action="store_true", help="copy the runs file to OUT/batch-runs.jsonl")
    args = parser.parse_args(argv)
    args.codecs = [c for c in args.codecs.split(",") if c]
    args.executors = [e for e in args.executors.split(",") if e]
    args.previous = None
    if args.runs is None:
        if args.work is None:
            parser.error("give --work (or --runs with --report-only)")
        args.runs = args.work / "runs.jsonl"
    if args.report_only:
        previous = args.out / "batch.json"
        if previous.is_file():
            args.previous = json.loads(previous.read_text(encoding="utf-8"))
        print(markdown(write_report(args)))
        return 0
    if args.work is None:
        parser.error("--work is needed to run (the benchmark resumes from it)")
    if args.photos % args.piece:
        parser.error("--photos must be a multiple of --piece")
    args.work.mkdir(parents=True, exist_ok=True)
    run_all(args)
    print(markdown(write_report(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
