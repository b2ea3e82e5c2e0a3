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
from pathlib import Path

from benchmarks.batch_folder import COLLECTIONS as COLLECTIONS
from benchmarks.batch_folder import FOLDER_VERSION as FOLDER_VERSION
from benchmarks.batch_folder import HERE as HERE
from benchmarks.batch_folder import RAY_STARTED as RAY_STARTED
from benchmarks.batch_folder import RESULTS as RESULTS
from benchmarks.batch_folder import ROOT as ROOT
from benchmarks.batch_folder import ZOOMS as ZOOMS
from benchmarks.batch_folder import make_folder as make_folder
from benchmarks.batch_folder import plan_folder as plan_folder
from benchmarks.batch_folder import read_runs as read_runs
from benchmarks.batch_report import MODE_TEXT as MODE_TEXT
from benchmarks.batch_report import headline as headline
from benchmarks.batch_report import markdown as markdown
from benchmarks.batch_report import summarise as summarise
from benchmarks.batch_report import write_report as write_report
from benchmarks.batch_runs import Journal as Journal
from benchmarks.batch_runs import Piece as Piece
from benchmarks.batch_runs import cli as cli
from benchmarks.batch_runs import load_average as load_average
from benchmarks.batch_runs import piece_glob as piece_glob
from benchmarks.batch_runs import pieces_for as pieces_for
from benchmarks.batch_runs import ray_start_seconds as ray_start_seconds
from benchmarks.batch_runs import run_all as run_all
from benchmarks.batch_runs import run_piece as run_piece
from benchmarks.batch_runs import schedule as schedule


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
