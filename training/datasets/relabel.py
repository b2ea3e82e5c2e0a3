"""Narrow the machine jury of a finished build without running any machine again (``sursmr-train relabel``).

Every item keeps per-machine verdicts, so the SMR proxy of a subset is
recomputed from them; re-exported by :mod:`training.datasets.builder`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sursmr_core.errors import InputError
from training.datasets.items import read_items, rebuild_manifest, write_header_document, write_item_record


@dataclass
class RelabelReport:
    out_dir: Path
    items: int
    changed_labels: int
    machines: tuple[str, ...]
    manifest: Path
    min_applicable: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "items": self.items,
            "changed_labels": self.changed_labels,
            "machines": ",".join(self.machines),
            "min_applicable": self.min_applicable,
            "manifest": str(self.manifest),
        }


def relabel_smr(
    out_dir: str | Path, machines: Iterable[str] | None = None, min_applicable: int | None = None
) -> RelabelReport:
    """Recompute every item's SMR proxy over the machine subset ``machines`` (no machine runs again).

    ``machines``: default the dataset's own jury (its recipe's machines, or
    every machine with stored verdicts when the recipe named none).

    ``min_applicable`` (K): crops with fewer applicable jurors get no SMR
    label (None); default: the recipe's ``min_applicable_machines`` (1 for
    datasets built before K existed, which is what their labels used).

    Verdicts of the machines left out move to ``labels.machine_verdicts_excluded``;
    the recipe in ``dataset.json`` records the new jury, so a later build with
    the same recipe resumes this dataset. Each item file is rewritten
    atomically; a machine missing from an item's verdicts is an
    :class:`InputError` raised before any file changes (rebuild those items).
    """
    from training.labels.smr import smr_over_levels

    root = Path(out_dir)
    header_path = root / "dataset.json"
    if not header_path.is_file():
        raise InputError(f"{header_path} not found; build the dataset first (sursmr-train build)")
    header = json.loads(header_path.read_text(encoding="utf-8"))
    if machines is None:
        machines = header["recipe"].get("machines") or [
            name for record in read_items(root)[:1] for name in record["labels"]["machine_verdicts"]
        ]
    jury = tuple(sorted(set(machines)))
    if not jury:
        raise InputError("relabel needs at least one machine")
    k = int(header["recipe"].get("min_applicable_machines", 1)) if min_applicable is None else min_applicable
    paths = sorted((root / "items").glob("*/*.json"))
    records = []
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        labels = record["labels"]
        known = {**labels.get("machine_verdicts_excluded", {}), **labels["machine_verdicts"]}
        missing = [name for name in jury if name not in known]
        if missing:
            raise InputError(
                f"{path}: no verdicts of machine(s) {', '.join(missing)}; these items were built without them"
            )
        records.append((path, record, known))
    changed = 0
    for path, record, known in records:
        labels = record["labels"]
        levels = len(record["levels"])
        smr = smr_over_levels(known, levels, jury, k)
        changed += sum(1 for old, new in zip(labels["smr"], smr, strict=True) if old != new)
        labels["smr"] = smr
        labels["machine_verdicts"] = {name: known[name] for name in jury}
        labels["machine_verdicts_excluded"] = {name: v for name, v in sorted(known.items()) if name not in jury}
        record["smr_machines"] = list(jury)
        write_item_record(path, record)
    header["recipe"]["machines"] = list(jury)
    header["recipe"]["min_applicable_machines"] = k
    write_header_document(header_path, header)
    return RelabelReport(root, len(records), changed, jury, rebuild_manifest(root), k)
