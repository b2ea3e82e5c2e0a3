"""Statistics of a built dataset: what ``sursmr-train stats`` prints (pure maths over item records).

Everything here reads the item records (``manifest.jsonl`` lines, see
:mod:`training.datasets.builder`) and the ``dataset.json`` header; nothing
runs a codec or a labeller. Labels are proxies, and so is every number here.

Definitions:

* **Label-oracle hit rate** at SUR target *t* (per codec, over the val and
  test items, which carry every level of the grid): the share of items for
  which at least one level's SUR label reaches *t*. The oracle picks the
  cheapest such level (fewest bytes); its mean bytes are reported too. Items
  whose label is missing at every level are counted apart (``unlabelled``).
  The default label is the absolute SUR proxy (``sur_jnd_proxy``): Eq. 3
  pseudo-SUR reaches 1 at every item's best level by construction, so its
  hit rate says nothing about the grid.
* **Applicability** of a machine: the share of crops on which it votes (a
  verdict that is not ``None`` at some level of some item of the crop). A
  machine votes on a crop only when its task applies to the original, so
  this is a property of the crop, whatever the codec.
* **Best-level noise floor** of a machine: over the items where it votes,
  the share whose verdict at the item's best level (highest quality of its
  level set; training subsets hold the grid's best level too) is "not
  satisfied". A machine that flips on near-lossless images adds noise, not
  signal.
* **Applicable machines per crop**: how many machines vote on each crop
  (median and 10th percentile over crops).
* **Build time**: the sum of the wall times of every recorded build run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SUR_TARGETS = (0.5, 0.75, 0.9)
EVAL_SPLITS = ("val", "test")


def _best_index(record: Mapping[str, Any]) -> int:
    """Index of the record's best-quality level (its ``better`` end of the axis)."""
    levels = [int(v) for v in record["levels"]]
    pick = max if record.get("better", "higher") == "higher" else min
    return levels.index(pick(levels))


def split_counts(records: Iterable[Mapping[str, Any]], header: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Photos, crops and items per split (photos from the header's source list when given, else from records)."""
    crops: dict[str, set[str]] = defaultdict(set)
    photos: dict[str, set[str]] = defaultdict(set)
    items: Counter[str] = Counter()
    for record in records:
        split = str(record["split"])
        crops[split].add(str(record["crop_id"]))
        photos[split].add(str(record["source_id"]))
        items[split] += 1
    planned: Counter[str] = Counter()
    collections: dict[str, set[str]] = defaultdict(set)
    for source in (header or {}).get("sources") or []:
        planned[str(source["split"])] += 1
        collections[str(source["split"])].add(str(source.get("collection", "?")))
    rows = []
    for split in ("train", "val", "test"):
        rows.append(
            {
                "split": split,
                "photos": len(photos[split]),
                "photos_planned": planned.get(split, len(photos[split])),
                "collections": len(collections[split]),
                "crops": len(crops[split]),
                "items": items[split],
            }
        )
    return rows


def levels_per_codec(
    records: Iterable[Mapping[str, Any]], recipe: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Per codec: the grid size (recipe), levels per evaluation item and per training item (min/median/max)."""
    grid = {str(c["codec"]): list(c["levels"]) for c in (recipe or {}).get("codecs") or []}
    counts: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in records:
        kind = "train" if record["split"] == "train" else "eval"
        counts[(str(record["codec"]), kind)].append(len(record["levels"]))
    rows = []
    for codec in sorted({codec for codec, _ in counts} | set(grid)):
        row: dict[str, Any] = {"codec": codec, "grid": len(grid.get(codec, []))}
        if codec in grid:
            row["range"] = f"{min(grid[codec])}-{max(grid[codec])}"
        for kind in ("eval", "train"):
            values = counts.get((codec, kind), [])
            row[f"{kind}_items"] = len(values)
            row[f"{kind}_levels"] = (
                f"{min(values)}/{int(np.median(values))}/{max(values)}" if values else None
            )  # min/median/max
        rows.append(row)
    return rows


def oracle_hit_rates(
    records: Iterable[Mapping[str, Any]],
    targets: Sequence[float] = SUR_TARGETS,
    label: str = "sur_jnd_proxy",
    splits: Sequence[str] = EVAL_SPLITS,
) -> list[dict[str, Any]]:
    """Per codec and SUR target: label-oracle hit rate over ``splits`` (see the module docstring)."""
    by_codec: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record["split"] in splits:
            by_codec[str(record["codec"])].append(record)
    rows = []
    for codec in sorted(by_codec):
        for target in targets:
            hits = 0
            labelled = 0
            unlabelled = 0
            oracle_bytes: list[int] = []
            for record in by_codec[codec]:
                values = record["labels"].get(label)
                if values is None or all(v is None for v in values):
                    unlabelled += 1
                    continue
                labelled += 1
                meeting = [
                    int(size)
                    for value, size in zip(values, record["bytes"], strict=True)
                    if value is not None and float(value) >= target
                ]
                if meeting:
                    hits += 1
                    oracle_bytes.append(min(meeting))
            rows.append(
                {
                    "codec": codec,
                    "target": target,
                    "label": label,
                    "items": labelled,
                    "unlabelled": unlabelled,
                    "hit_rate": None if labelled == 0 else hits / labelled,
                    "oracle_mean_bytes": None if not oracle_bytes else float(np.mean(oracle_bytes)),
                }
            )
    return rows


def _verdicts(record: Mapping[str, Any]) -> Mapping[str, Sequence[bool | None]]:
    verdicts = record.get("labels", {}).get("machine_verdicts")
    return verdicts if isinstance(verdicts, Mapping) else {}


def machine_stats(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per machine: applicability over crops and best-level noise floor over applicable items.

    Empty when no record carries per-machine verdicts.
    """
    crops: set[str] = set()
    applicable_crops: dict[str, set[str]] = defaultdict(set)
    judged: Counter[str] = Counter()
    unsatisfied: Counter[str] = Counter()
    machines: set[str] = set()
    for record in records:
        crop = str(record["crop_id"])
        crops.add(crop)
        verdicts = _verdicts(record)
        if not verdicts:
            continue
        best = _best_index(record)
        for name, votes in verdicts.items():
            machines.add(name)
            if all(v is None for v in votes):
                continue
            applicable_crops[name].add(crop)
            if votes[best] is not None:
                judged[name] += 1
                unsatisfied[name] += votes[best] is False
    return [
        {
            "machine": name,
            "applicability": len(applicable_crops[name]) / len(crops) if crops else None,
            "applicable_crops": len(applicable_crops[name]),
            "crops": len(crops),
            "noise_floor": unsatisfied[name] / judged[name] if judged[name] else None,
            "judged_items": judged[name],
        }
        for name in sorted(machines)
    ]


def applicable_per_crop(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Median and 10th percentile (lower, an observed count) of machines voting per crop; None without verdicts."""
    per_crop: dict[str, set[str]] = defaultdict(set)
    seen = False
    for record in records:
        verdicts = _verdicts(record)
        if not verdicts:
            continue
        seen = True
        crop = str(record["crop_id"])
        per_crop.setdefault(crop, set())
        for name, votes in verdicts.items():
            if any(v is not None for v in votes):
                per_crop[crop].add(name)
    if not seen:
        return None
    counts = np.array([len(names) for names in per_crop.values()], dtype=np.float64)
    return {
        "crops": int(counts.size),
        "median": float(np.median(counts)),
        "p10": float(np.percentile(counts, 10, method="lower")),
        "min": float(counts.min()),
        "max": float(counts.max()),
    }


def build_time(header: Mapping[str, Any]) -> dict[str, Any]:
    """Total recorded wall time of the build runs, and how many runs (a resumed build has several)."""
    runs = list(header.get("runs") or [])
    return {
        "runs": len(runs),
        "seconds": float(sum(float(run.get("seconds", 0.0)) for run in runs)),
        "items_built": int(sum(int(run.get("built", 0)) for run in runs)),
        "last_run_finished": bool(runs[-1].get("finished", False)) if runs else None,
    }


def dataset_stats(
    records: Sequence[Mapping[str, Any]], header: Mapping[str, Any], label: str = "sur_jnd_proxy"
) -> dict[str, Any]:
    """Every statistic above, as one JSON-able dict."""
    return {
        "recipe": (header.get("recipe") or {}).get("name"),
        "labels_are_proxies": True,
        "items": len(records),
        "splits": split_counts(records, header),
        "levels": levels_per_codec(records, header.get("recipe")),
        "oracle": oracle_hit_rates(records, label=label),
        "machines": machine_stats(records),
        "applicable_per_crop": applicable_per_crop(records),
        "build": build_time(header),
    }
