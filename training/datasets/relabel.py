"""Narrow the machine jury of a finished build without running any machine again (``sursmr-train relabel``).

Every item keeps per-machine verdicts, so the SMR proxy of a subset is
recomputed from them; re-exported by :mod:`training.datasets.builder`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sursmr_core.errors import InputError
from training.datasets.items import (
    HEADER_NAME,
    read_header,
    read_items,
    rebuild_manifest,
    write_header_document,
    write_item_record,
)


@dataclass(frozen=True)
class SmrJury:
    """Which SMR labels a dataset holds: the machine jury and K (applicable machines a crop needs for a label)."""

    machines: tuple[str, ...]
    min_applicable: int

    @classmethod
    def of_recipe(cls, recipe: Mapping[str, Any]) -> SmrJury | None:
        """The jury a recipe (``dataset.json``'s, or a model card's ``training.dataset_recipe``) records.

        ``relabel_smr`` rewrites both fields, so a relabelled build names the
        jury its labels use. None when the recipe names no machine; K is 1
        when it predates K (what such builds used).
        """
        machines = recipe.get("machines")
        if not machines:
            return None
        return cls(tuple(sorted(str(m) for m in machines)), int(recipe.get("min_applicable_machines", 1)))

    def command(self) -> str:
        """The ``sursmr-train relabel`` call (without ``--data``) that gives a build these labels."""
        return f"sursmr-train relabel --min-applicable {self.min_applicable} --machines {','.join(self.machines)}"

    def to_dict(self) -> dict[str, Any]:
        return {"machines": list(self.machines), "min_applicable": self.min_applicable, "relabel": self.command()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmrJury:
        return cls(tuple(data["machines"]), int(data["min_applicable"]))

    def describe(self) -> str:
        """E.g. ``10 machines at K = 2``."""
        return f"{len(self.machines)} machine{'s' if len(self.machines) != 1 else ''} at K = {self.min_applicable}"


def dataset_smr_jury(data: str | Path) -> SmrJury | None:
    """The jury behind a built dataset's SMR labels; None without a readable ``dataset.json`` or any jury.

    From the recipe in ``dataset.json``; a recipe that names no machine
    judged with every machine whose verdicts its items store (read from one
    item, as :func:`relabel_smr` does).
    """
    root = Path(data)
    try:
        recipe = dict(read_header(root).get("recipe") or {})
        if not recipe.get("machines"):
            first = next(iter(sorted((root / "items").glob("*/*.json"))), None)
            if first is not None:
                verdicts = json.loads(first.read_text(encoding="utf-8"))["labels"].get("machine_verdicts") or {}
                recipe["machines"] = list(verdicts)
    except (InputError, OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return SmrJury.of_recipe(recipe)


def model_smr_jury(training: Mapping[str, Any] | None) -> SmrJury | None:
    """The jury of the SMR labels a model was trained on (its card's ``training.dataset_recipe``), if recorded."""
    recipe = (training or {}).get("dataset_recipe")
    return SmrJury.of_recipe(recipe) if isinstance(recipe, Mapping) else None


def smr_labels_note(data: SmrJury | None, model: SmrJury | None, *, command: bool = True) -> str:
    """One clause for reports: which SMR labels a dataset holds and whether the model was trained on the same kind.

    SMR labels over another jury or K measure something the model was not
    taught to predict, so a benchmark that judges SMR targets says which.
    ``command``: name the ``sursmr-train relabel`` call that gives the labels.
    """

    def jury(j: SmrJury) -> str:
        return f"{j.describe()}: `{j.command()}`" if command else j.describe()

    if data is None:
        return "SMR labels: the dataset records no machine jury"
    if model is None:
        return f"SMR labels: {jury(data)}; the model card records no training jury"
    if data == model:
        return (
            f"SMR labels: the jury and K the model was trained on ({jury(data)}), so SMR targets are judged on the "
            "labels the model learnt to predict"
        )
    return (
        f"SMR labels: {data.describe()}, not the jury and K the model was trained on ({jury(model)}), so SMR "
        "targets are judged on labels the model did not learn to predict"
    )


def smr_labels_note_of(labels: Mapping[str, Any], key: str, *, command: bool = True) -> str:
    """:func:`smr_labels_note` from a report's ``{key: jury, "model": jury}`` (``SmrJury.to_dict`` or None)."""

    def jury(name: str) -> SmrJury | None:
        value = labels.get(name)
        return SmrJury.from_dict(value) if isinstance(value, Mapping) else None

    return smr_labels_note(jury(key), jury("model"), command=command)


def smr_labels_of(data: str | Path, training: Mapping[str, Any] | None, key: str = "test") -> dict[str, Any]:
    """A report's record of the SMR labels: ``{key: the dataset's jury, "model": the model's}`` (dicts or None)."""
    return {
        name: None if jury is None else jury.to_dict()
        for name, jury in ((key, dataset_smr_jury(data)), ("model", model_smr_jury(training)))
    }


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
    header_path = root / HEADER_NAME
    header = read_header(root)
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
