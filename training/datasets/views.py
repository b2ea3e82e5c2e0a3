"""Views of a built dataset: the same items under another split, without copying or re-labelling anything.

A view is a folder whose ``items`` is a symbolic link to the dataset's item
folder, with its own ``manifest.jsonl`` (the item records with their
``split`` rewritten) and a ``view.json`` saying how it was made. Training,
evaluation and the benchmarks read the manifest, so they run on a view
unchanged.

:func:`collection_holdout` is the cross-collection check: every item of one
photo collection becomes the test split, and the other collections' test
items are set aside (split ``unused``), so the test split holds only photos
from a collection the model never saw.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sursmr_core.errors import InputError
from sursmr_core.outputs import atomic_write_bytes

UNUSED = "unused"
"""Split name of items a view leaves out of training, validation and test."""


def collection_of(record: dict[str, Any]) -> str:
    """The photo collection of an item record (the part of ``source_id`` before the first ``/``)."""
    return str(record["source_id"]).split("/", 1)[0]


def read_manifest(data: Path) -> list[dict[str, Any]]:
    manifest = data / "manifest.jsonl"
    if not manifest.is_file():
        raise InputError(f"{manifest} not found; build the dataset first (sursmr-train build)")
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def holdout_splits(records: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
    """Records with ``collection``'s items in ``test`` and the other collections' test items ``unused``."""
    found = {collection_of(r) for r in records}
    if collection not in found:
        raise InputError(f"collection {collection!r} has no items here; collections: {', '.join(sorted(found))}")
    out = []
    for record in records:
        if collection_of(record) == collection:
            split = "test"
        else:
            split = UNUSED if record["split"] == "test" else record["split"]
        out.append({**record, "split": split})
    if not any(r["split"] == "train" for r in out):
        raise InputError(f"holding out {collection!r} leaves no training items")
    return out


def collection_holdout(data: str | Path, collection: str, out: str | Path) -> Path:
    """Write the view of :func:`holdout_splits` at ``out``; returns its manifest path."""
    source = Path(data).resolve()
    target = Path(out)
    records = holdout_splits(read_manifest(source), collection)
    target.mkdir(parents=True, exist_ok=True)
    link = target / "items"
    if link.is_symlink() or link.exists():
        if not (link.is_symlink() and Path(os.readlink(link)) == source / "items"):
            raise InputError(f"{link} exists and is not a link to {source / 'items'}; choose an empty --out")
    else:
        link.symlink_to(source / "items", target_is_directory=True)
    counts: dict[str, int] = {}
    for record in records:
        counts[record["split"]] = counts.get(record["split"], 0) + 1
    info = {"view": "collection_holdout", "data": str(source), "collection": collection, "items": counts}
    atomic_write_bytes(target / "view.json", (json.dumps(info, indent=2) + "\n").encode())
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    return atomic_write_bytes(target / "manifest.jsonl", lines.encode())
