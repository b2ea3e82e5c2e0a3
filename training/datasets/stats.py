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
* **Applicability** and **best-level noise floor** of a machine, and
  **applicable machines per crop** (median, 10th percentile, crops below
  K): as defined by the SMR jury in :mod:`training.labels.smr`
  (``machine_report``, ``applicable_per_crop``). Training subsets hold the
  grid's best level, so every item counts for the noise floor.
* **Build time**: the sum of the wall times of every recorded build run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SUR_TARGETS = (0.5, 0.75, 0.9)
EVAL_SPLITS = ("val", "test")


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


def machine_stats(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per machine: applicability and best-level noise floor (:func:`training.labels.smr.machine_report`).

    Empty when no record carries per-machine verdicts.
    """
    from training.labels.smr import machine_report

    rows = []
    for stats in machine_report(records):
        rows.append(
            {
                "machine": stats.machine,
                "applicability": stats.applicability_rate,
                "applicable_items": stats.applicable,
                "items": stats.items,
                "noise_floor": stats.noise_floor,
                "worst_level_unsatisfied": stats.worst_level_unsatisfied,
            }
        )
    return rows


def applicable_per_crop(records: Sequence[Mapping[str, Any]], min_applicable: int = 4) -> dict[str, Any] | None:
    """Median, 10th percentile and count below K of machines voting per crop; None without verdicts."""
    from training.labels.smr import applicable_per_crop as per_crop
    from training.labels.smr import applicable_summary

    with_verdicts = [r for r in records if (r.get("labels") or {}).get("machine_verdicts")]
    if not with_verdicts:
        return None
    return applicable_summary(per_crop(with_verdicts).values(), min_applicable)


NOISE_LIMIT = 0.05
"""Goal for a machine's best-level noise floor; :func:`smr_coverage` also reports a jury without noisier ones."""


def smr_coverage(records: Sequence[Mapping[str, Any]], machines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Share of crops with an SMR label for K = 1…4, for the whole jury and for the quiet jury.

    The quiet jury leaves out machines whose measured noise floor exceeds
    :data:`NOISE_LIMIT` (machines never applicable, hence unmeasured, stay).
    Empty without per-machine verdicts.
    """
    from training.labels.smr import applicable_per_crop as per_crop

    with_verdicts = [r for r in records if (r.get("labels") or {}).get("machine_verdicts")]
    if not with_verdicts:
        return []
    quiet = [m["machine"] for m in machines if m.get("noise_floor") is None or m["noise_floor"] <= NOISE_LIMIT]
    rows = []
    for name, jury in (("all", None), ("quiet", quiet)):
        counts = list(per_crop(with_verdicts, jury).values())
        row: dict[str, Any] = {"jury": name, "machines": len(machines) if jury is None else len(jury)}
        for k in (1, 2, 3, 4):
            row[f"K={k}"] = sum(c >= k for c in counts) / len(counts)
        rows.append(row)
    return rows


def build_time(header: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Recorded wall time of the build runs (a resumed build has several) and the items' core-seconds.

    ``core_seconds``: CPU time the done items used (workers and their tools),
    whatever else shared the machine; ``core_seconds / 2`` is the wall time
    the same work needs on 2 otherwise idle cores.
    """
    runs = list(header.get("runs") or [])
    timed = [float(r["cpu_seconds"]) for r in records if r.get("cpu_seconds") is not None]
    return {
        "runs": len(runs),
        "seconds": float(sum(float(run.get("seconds", 0.0)) for run in runs)),
        "items_built": int(sum(int(run.get("built", 0)) for run in runs)),
        "last_run_finished": bool(runs[-1].get("finished", False)) if runs else None,
        "items_timed": len(timed),
        "core_seconds": float(sum(timed)),
    }


def dataset_stats(
    records: Sequence[Mapping[str, Any]], header: Mapping[str, Any], label: str = "sur_jnd_proxy"
) -> dict[str, Any]:
    """Every statistic above, as one JSON-able dict."""
    machines = machine_stats(records)
    return {
        "recipe": (header.get("recipe") or {}).get("name"),
        "labels_are_proxies": True,
        "items": len(records),
        "splits": split_counts(records, header),
        "levels": levels_per_codec(records, header.get("recipe")),
        "oracle": oracle_hit_rates(records, label=label),
        "machines": machines,
        "smr_coverage": smr_coverage(records, machines),
        "applicable_per_crop": applicable_per_crop(
            records, int((header.get("recipe") or {}).get("min_applicable_machines", 4))
        ),
        "build": build_time(header, records),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def stats_markdown(result: Mapping[str, Any]) -> str:
    """The statistics of :func:`dataset_stats` as Markdown (for READMEs: generated, never typed by hand)."""
    lines = [
        f"Dataset statistics of recipe `{result['recipe']}` ({result['items']} done items; every label is a proxy).",
        "",
        *_table(result["splits"], ["split", "photos", "photos_planned", "collections", "crops", "items"]),
        "",
        *_table(result["levels"], ["codec", "grid", "range", "eval_levels", "train_levels"]),
        "",
        "Label-oracle hit rate over val+test (share of items whose grid holds a level meeting the SUR target):",
        "",
        *_table(result["oracle"], ["codec", "target", "items", "hit_rate", "oracle_mean_bytes"]),
        "",
    ]
    if result["machines"]:
        lines += [
            *_table(result["machines"], ["machine", "applicability", "noise_floor", "worst_level_unsatisfied"]),
            "",
        ]
    if result.get("smr_coverage"):
        lines += [
            f"Share of crops with an SMR label at K applicable machines, whole jury and quiet jury (machines whose "
            f"noise floor is at most {NOISE_LIMIT:g}):",
            "",
            *_table(result["smr_coverage"], ["jury", "machines", "K=1", "K=2", "K=3", "K=4"]),
            "",
        ]
    per_crop = result["applicable_per_crop"]
    if per_crop:
        lines.append(
            f"Applicable machines per crop: median {per_crop['median']:g}, 10th percentile {per_crop['p10']:g} "
            f"({per_crop['below_k']} of {per_crop['crops']} crops below K = {per_crop['k']}: no SMR label)."
        )
    build = result["build"]
    lines.append(
        f"Build: {build['seconds'] / 3600:.2f} h wall over {build['runs']} run(s); "
        f"{build['core_seconds'] / 3600:.2f} core-hours in {build['items_timed']} timed items."
    )
    return "\n".join(lines) + "\n"
