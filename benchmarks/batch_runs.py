"""Batch benchmark: pieces, the run journal and running sursmr batch on each piece (moved from batch.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.batch_folder import (
    RAY_STARTED,
    ROOT,
    make_folder,
    read_runs,
)
from benchmarks.batch_report import write_report

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
