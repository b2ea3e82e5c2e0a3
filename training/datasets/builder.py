"""Build a proxy-labelled SUR/SMR dataset from a :class:`~training.datasets.recipe.Recipe`.

Work unit ("item"): one crop × one codec. The item's worker renders the crop,
encodes and decodes it at every level of the codec plan, labels the sweep
(:func:`~training.datasets.labelling.label_sweep`) and writes two files:

``items/<crop_id>/<codec>.npz``
    ``reference_png`` (uint8 bytes of a PNG), and per level *i* (recipe
    order) ``decoded_png_<i>`` and ``bitstream_<i>``. Decoded pixels are
    stored (as lossless PNG) so training never needs the codecs and never
    pays a BPG/VVC decode; bitstreams are kept for provenance and rate
    numbers (they are a few KB each). Arrays are not re-compressed: PNG
    already is.
``items/<crop_id>/<codec>.json``
    the item record: crop (with its ``source_id``), split, levels, bytes,
    bpp, labels (raw metric scores, Eq. 3 pseudo-SUR, JND SUR proxy,
    per-machine verdicts, SMR), the npz's SHA-256. Written *last*, it is the
    item's done-marker: an item counts as done only when its JSON exists and
    names an npz of the right size.

Both files are written atomically (``sursmr_core.outputs.atomic_write_bytes``),
so a killed build leaves finished items intact and no half files. Running
the build again skips done items and redoes the rest. ``manifest.jsonl`` (one
record per done item) is rebuilt from the item files at the end of every
run, and ``dataset.json`` holds the recipe, the labellers with versions, the
split of every source photo and the crop plan.

``relabel_smr`` narrows the machine jury of a finished build without running
any machine again: every item keeps per-machine verdicts, so the SMR proxy
of a subset is recomputed from them.

Splitting is by *source photo* (:func:`assign_splits`): all crops of a photo
land in the same split.

This module plans and runs the build; one item's job, worker and files are in
:mod:`training.datasets.items`, ``relabel_smr`` in
:mod:`training.datasets.relabel` (both re-exported here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import codec_adapters
from sursmr_core.errors import CodecUnavailableError, InputError
from training.datasets.executors import create_executor
from training.datasets.items import (
    DATASET_FORMAT,
    ItemJob,
    ItemOutcome,
    decode_png,
    item_is_done,
    png_bytes,
    read_items,
    rebuild_manifest,
    run_item,
    write_header_document,
    write_item_record,
)
from training.datasets.labelling import PipelineFactory, RegistryLabellers
from training.datasets.recipe import Recipe
from training.datasets.relabel import RelabelReport, relabel_smr
from training.datasets.sources import SourcePhoto, gather_sources, plan_crops, stable_seed

SPLITS = ("train", "val", "test")


def assign_splits(source_ids: Iterable[str], shares: Sequence[float], seed: int) -> dict[str, str]:
    """Map every source id to "train", "val" or "test" with about the given shares.

    Deterministic for a seed; each id's position depends only on (seed, id),
    so adding a photo moves few others. Counts use largest remainders; with
    ≥ 3 sources every split with a positive share gets at least one.
    """
    ids = sorted(set(source_ids), key=lambda s: (stable_seed(seed, "split", s), s))
    n = len(ids)
    if n == 0:
        return {}
    raw = [share * n for share in shares]
    counts = [int(np.floor(r)) for r in raw]
    for i in sorted(range(3), key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3:
        for i in range(3):
            if shares[i] > 0 and counts[i] == 0:
                donor = max(range(3), key=lambda k: counts[k])
                counts[donor] -= 1
                counts[i] += 1
    result: dict[str, str] = {}
    start = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for source_id in ids[start : start + count]:
            result[source_id] = split
        start += count
    return result


# --- the whole build --------------------------------------------------------------


@dataclass
class BuildReport:
    out_dir: Path
    items: int
    already_done: int
    built: int
    failed: list[ItemOutcome] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "items": self.items,
            "already_done": self.already_done,
            "built": self.built,
            "failed": len(self.failed),
            "failures": [{"item_id": f.item_id, "error": f.error} for f in self.failed],
            "seconds": round(self.seconds, 2),
            "manifest": str(self.manifest) if self.manifest else None,
        }


def choose_sources(photos: Sequence[SourcePhoto], max_sources: int | None, seed: int) -> list[SourcePhoto]:
    """``max_sources`` photos drawn by the seed (each photo's rank depends only on (seed, id)); all when None."""
    if max_sources is None or max_sources >= len(photos):
        return list(photos)
    ranked = sorted(photos, key=lambda p: (stable_seed(seed, "source", p.source_id), p.source_id))
    return sorted(ranked[:max_sources], key=lambda p: p.source_id)


def plan_jobs(
    recipe: Recipe,
    out_dir: Path,
    factory: PipelineFactory,
    limit: int | None = None,
    timeout: float = 120.0,
    only_splits: Sequence[str] | None = None,
) -> tuple[list[ItemJob], dict[str, Any]]:
    """All item jobs of a recipe (the first ``limit`` crops only, if given) and the dataset header.

    Validation and test crops get every level of each codec's grid; training
    crops the per-crop subset of :meth:`CodecPlan.levels_for` when the plan sets ``train_levels``.
    ``only_splits``: keep only the crops of source photos in these splits (the
    split of a photo does not depend on the filter, so a partial build agrees
    with the full one).
    """
    photos = choose_sources(gather_sources(recipe.collections, recipe.source_dirs), recipe.max_sources, recipe.seed)
    crops = plan_crops(
        photos, recipe.crop_sizes, recipe.crop_scales, recipe.crops_per_source, recipe.seed, recipe.scale_reference
    )
    splits = assign_splits((p.source_id for p in photos), recipe.split, recipe.seed)
    if only_splits is not None:
        unknown = sorted(set(only_splits) - set(SPLITS))
        if unknown or not only_splits:
            raise InputError(f"splits must be a non-empty subset of {SPLITS}, got {list(only_splits)}")
        crops = [crop for crop in crops if splits[crop.source_id] in only_splits]
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be ≥ 1, got {limit}")
        crops = crops[:limit]
    jobs = [
        ItemJob(
            str(out_dir),
            crop,
            splits[crop.source_id],
            plan.codec,
            plan.levels_for(splits[crop.source_id], crop.crop_id, recipe.seed),
            dict(plan.options),
            factory,
            timeout,
            len(plan.levels),
        )
        for crop in crops
        for plan in recipe.codecs
    ]
    header = {
        "format": DATASET_FORMAT,
        "recipe": recipe.to_dict(),
        # labels hold only for these codec settings (options, chroma path): a resume under others is refused
        "codec_settings": {plan.codec: codec_adapters.get(plan.codec).settings() for plan in recipe.codecs},
        "labels_are_proxies": True,
        "sources": [
            {
                "source_id": p.source_id,
                "path": str(p.path),
                "collection": p.collection,
                "licence": p.licence,
                "split": splits[p.source_id],
            }
            for p in photos
        ],
        "crops": [c.to_dict() for c in crops],
        "limit": limit,
        "only_splits": None if only_splits is None else sorted(only_splits),
    }
    return jobs, header


def _crop_number(job: ItemJob) -> int:
    tail = job.crop.crop_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _check_codecs(recipe: Recipe) -> None:
    for plan in recipe.codecs:
        cls = codec_adapters.get(plan.codec)
        for level in plan.levels:
            cls.levels.check(level, plan.codec)
        status = cls.availability()
        if not status.available:
            raise CodecUnavailableError(f"codec {plan.codec!r} is not available here: {status.reason}")


# recipe fields that do not change what is built (a renamed recipe resumes its build)
_COSMETIC = ("name", "description", "format")


def _comparable(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe dict in today's format (older formats read and written again), cosmetic fields dropped."""
    try:
        current = Recipe.from_dict(recipe).to_dict()
    except InputError:
        current = dict(recipe)
    return {k: v for k, v in current.items() if k not in _COSMETIC}


def _extends(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when ``new`` is ``old`` with more codecs: the finished items stay valid, the build adds the rest."""
    same_otherwise = {k: v for k, v in old.items() if k != "codecs"} == {k: v for k, v in new.items() if k != "codecs"}
    return same_otherwise and all(plan in new.get("codecs", []) for plan in old.get("codecs", []))


def _write_header(out_dir: Path, header: Mapping[str, Any], labellers: Mapping[str, Any]) -> list[Any]:
    """Write ``dataset.json``; returns the build runs recorded so far (kept across resumes)."""
    path = out_dir / "dataset.json"
    runs: list[Any] = []
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("recipe") is not None:
            before, now = _comparable(old["recipe"]), _comparable(header["recipe"])
            if before != now and not _extends(before, now):
                raise InputError(
                    f"{out_dir} holds a build of a different recipe ({old['recipe'].get('name')!r}); "
                    "use another --out, or delete it to start over"
                )
        changed = sorted(
            codec
            for codec, settings in (old.get("codec_settings") or {}).items()
            if codec in header.get("codec_settings", {}) and header["codec_settings"][codec] != settings
        )
        if changed:
            raise InputError(
                f"{out_dir} was built with other settings of codec(s) {', '.join(changed)} "
                f"(was {old['codec_settings'][changed[0]]}, now {header['codec_settings'][changed[0]]}), "
                "so its labels do not hold for today's codecs; use another --out, or delete it to start over"
            )
        runs = list(old.get("runs") or [])
    document = {**header, "labellers": labellers, "runs": runs}
    write_header_document(path, document)
    return runs


def _record_run(out_dir: Path, index: int, run: Mapping[str, Any]) -> None:
    """Write run number ``index`` (wall time so far, items built) into ``dataset.json``'s ``runs``."""
    path = out_dir / "dataset.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    runs = list(document.get("runs") or [])
    runs[index:] = [dict(run)]
    document["runs"] = runs
    write_header_document(path, document)


def build_seconds(header: Mapping[str, Any]) -> float:
    """Total wall time of every recorded build run of a dataset (``dataset.json``), in seconds."""
    return float(sum(float(run.get("seconds", 0.0)) for run in header.get("runs") or []))


def build_dataset(
    recipe: Recipe,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    limit: int | None = None,
    factory: PipelineFactory | None = None,
    timeout: float = 120.0,
    on_item: Callable[[ItemOutcome], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    only_splits: Sequence[str] | None = None,
) -> BuildReport:
    """Build (or resume) the dataset of ``recipe`` in ``out_dir``.

    ``factory`` builds the labellers in each worker (default: the registries,
    filtered by the recipe). ``on_plan(total_items, already_done)`` is called
    once before work starts, ``on_item`` after each item finishes; an
    exception raised from ``on_item`` stops the build (finished items stay).
    """
    start = time.perf_counter()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    root = Path(out_dir)
    _check_codecs(recipe)
    chosen = factory or RegistryLabellers(
        recipe.metrics,
        recipe.machines,
        recipe.jnd_proxy,
        recipe.min_applicable_machines,
        jnd_proxy_name=recipe.jnd_proxy_name,
    )
    labellers = chosen.describe()
    jobs, header = plan_jobs(recipe, root.resolve(), chosen, limit, timeout, only_splits)
    root.mkdir(parents=True, exist_ok=True)
    run_index = len(_write_header(root, header, labellers))
    for stale in (root / "items").glob("*/.*.part"):
        stale.unlink(missing_ok=True)  # temp files of a worker that was killed mid-write
    # breadth-first over photos (crop 0 of every photo, then crop 1...): a build stopped early covers every photo
    todo = sorted((job for job in jobs if not item_is_done(job)), key=_crop_number)
    report = BuildReport(root, len(jobs), len(jobs) - len(todo), 0)
    if on_plan is not None:
        on_plan(len(jobs), report.already_done)

    def record(finished: bool) -> None:
        # written every ~30 s as well as at the end, so a killed run still leaves its wall time
        run = {
            "started": started_at,
            "seconds": round(time.perf_counter() - start, 2),
            "finished": finished,
            "built": report.built,
            "failed": len(report.failed),
            "already_done": report.already_done,
            "items": report.items,
            "executor": executor,
            "workers": workers,
            "limit": limit,
        }
        _record_run(root, run_index, run)

    record(False)
    last = time.perf_counter()
    try:
        for outcome in create_executor(executor, workers).map_unordered(run_item, todo):
            if outcome.ok:
                report.built += 1
            else:
                report.failed.append(outcome)
            if time.perf_counter() - last > 30.0:
                record(False)
                last = time.perf_counter()
            if on_item is not None:
                on_item(outcome)
    finally:
        report.manifest = rebuild_manifest(root)
        report.seconds = time.perf_counter() - start
        record(True)
    return report


__all__ = [
    "DATASET_FORMAT",
    "SPLITS",
    "BuildReport",
    "ItemJob",
    "ItemOutcome",
    "RelabelReport",
    "assign_splits",
    "build_dataset",
    "build_seconds",
    "choose_sources",
    "decode_png",
    "item_is_done",
    "plan_jobs",
    "png_bytes",
    "read_items",
    "rebuild_manifest",
    "relabel_smr",
    "run_item",
    "write_header_document",
    "write_item_record",
]
