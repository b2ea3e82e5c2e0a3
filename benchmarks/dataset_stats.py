"""Statistics of a dataset build for the README (``sursmr-train stats``, written to ``results/dataset_stats.md``).

The README's dataset section is copied from that file by
``benchmarks/update_readme.py``; nothing in it is typed by hand. A build
still running is summarised as far as it got (the text says how many items
are done of how many planned).

Usage::

    python benchmarks/dataset_stats.py --data /root/sursmr-data/default-v2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.datasets.builder import read_items
from training.datasets.items import read_header
from training.datasets.stats import dataset_stats, stats_markdown

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a dataset folder (finished or still building)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    header = read_header(args.data)
    records = read_items(args.data)
    result = dataset_stats(records, header)
    recipe = header.get("recipe") or {}
    codecs = len(recipe.get("codecs") or [])
    # every split's photos (the header's crop list holds only the last run's splits when it was given --splits)
    photos = sum(int(row.get("photos_planned") or 0) for row in result["splits"])
    planned_items = photos * int(recipe.get("crops_per_source") or 1) * codecs or None
    complete = planned_items is not None and len(records) >= planned_items
    state = "finished" if result["build"]["last_run_finished"] and complete else "still building"
    lead = (
        f"Build `{args.data.name}` ({state}: {len(records)} of {planned_items} items done). "
        if planned_items
        else f"Build `{args.data.name}` ({state}). "
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dataset_stats.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "dataset_stats.md").write_text(lead + stats_markdown(result), encoding="utf-8")
    print(lead + stats_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
