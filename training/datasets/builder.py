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
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import codec_adapters
from sursmr.encoding import encode_levels
from sursmr_core.errors import CodecUnavailableError, InputError
from sursmr_core.imaging import RGBImage
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.executors import create_executor
from training.datasets.labelling import PipelineFactory, RegistryLabellers, label_sweep, pipeline_for
from training.datasets.recipe import Recipe
from training.datasets.sources import CropSpec, SourcePhoto, gather_sources, plan_crops, slug, stable_seed

DATASET_FORMAT = 1
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


# --- one item -------------------------------------------------------------------


@dataclass(frozen=True)
class ItemJob:
    """Everything a worker needs for one item (picklable)."""

    out_dir: str
    crop: CropSpec
    split: str
    codec: str
    levels: tuple[int, ...]
    options: Mapping[str, Any]
    factory: PipelineFactory
    timeout: float = 120.0
    grid_size: int = 0  # levels in the codec's grid (``levels`` may be a per-crop subset of it)

    @property
    def item_id(self) -> str:
        return f"{self.crop.crop_id}.{self.codec}"

    def paths(self) -> tuple[Path, Path]:
        folder = Path(self.out_dir) / "items" / slug(self.crop.crop_id)
        return folder / f"{self.codec}.npz", folder / f"{self.codec}.json"


@dataclass(frozen=True)
class ItemOutcome:
    item_id: str
    ok: bool
    seconds: float
    error: str | None = None


def png_bytes(rgb: RGBImage) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def decode_png(data: bytes | np.ndarray) -> RGBImage:
    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    with Image.open(io.BytesIO(raw)) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def _write_item_record(path: Path, record: Mapping[str, Any]) -> None:
    """An item's JSON record (its done-marker), one line, written atomically."""
    atomic_write_bytes(path, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))


def _write_header_document(path: Path, document: Mapping[str, Any]) -> None:
    """``dataset.json``, indented, written atomically."""
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def item_is_done(job: ItemJob) -> bool:
    npz_path, json_path = job.paths()
    if not json_path.is_file() or not npz_path.is_file():
        return False
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(record.get("npz_bytes") == npz_path.stat().st_size)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_item(job: ItemJob) -> ItemOutcome:
    """Encode, decode, label and store one item; never raises for a failed item (see ``failed/``)."""
    from training.datasets.sources import render_crop

    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    failed_path = Path(job.out_dir) / "failed" / f"{slug(job.item_id)}.json"
    try:
        reference = render_crop(job.crop)
        candidates = encode_levels(reference, job.codec, job.levels, jobs=1, options=job.options, timeout=job.timeout)
        pipeline = pipeline_for(job.factory)
        labels = label_sweep(reference, [c.decoded for c in candidates], pipeline)
        arrays: dict[str, np.ndarray] = {"reference_png": np.frombuffer(png_bytes(reference), dtype=np.uint8)}
        for i, cand in enumerate(candidates):
            arrays[f"decoded_png_{i}"] = np.frombuffer(png_bytes(cand.decoded), dtype=np.uint8)
            arrays[f"bitstream_{i}"] = np.frombuffer(cand.data, dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        payload = buffer.getvalue()
        npz_path, json_path = job.paths()
        atomic_write_bytes(npz_path, payload)
        cls = codec_adapters.get(job.codec)
        record = {
            "format": DATASET_FORMAT,
            "item_id": job.item_id,
            "crop_id": job.crop.crop_id,
            "source_id": job.crop.source_id,
            "split": job.split,
            "crop": job.crop.to_dict(),
            "codec": job.codec,
            "better": cls.levels.better,
            "options": dict(job.options),
            "levels": [c.level for c in candidates],
            "grid_size": job.grid_size or len(job.levels),
            "level_subset": bool(job.grid_size and len(job.levels) < job.grid_size),
            "bytes": [c.nbytes for c in candidates],
            "bpp": [round(c.bpp, 6) for c in candidates],
            "height": int(reference.shape[0]),
            "width": int(reference.shape[1]),
            "labels": labels.to_dict(),
            "labels_are_proxies": True,
            "jnd_proxy": pipeline.jnd_sur_name,
            "npz": str(npz_path.relative_to(job.out_dir)),
            "npz_bytes": len(payload),
            "npz_sha256": hashlib.sha256(payload).hexdigest(),
            "seconds": {
                "encode": round(sum(c.encode_seconds for c in candidates), 4),
                "decode": round(sum(c.decode_seconds for c in candidates), 4),
                **{k: round(v, 4) for k, v in labels.seconds.items()},
                "total": round(time.perf_counter() - start, 4),
            },
            # core-seconds of this worker and the tools it ran (encoders, butteraugli, ffmpeg) for this item:
            # what the item costs whatever else shares the machine
            "cpu_seconds": round(_cpu_seconds() - cpu_start, 3),
        }
        _write_item_record(json_path, record)
        failed_path.unlink(missing_ok=True)
        return ItemOutcome(job.item_id, True, time.perf_counter() - start)
    except Exception as exc:  # one bad item must not end a two-hour build; it is recorded and retried
        message = f"{type(exc).__name__}: {exc}"
        detail = {"item_id": job.item_id, "error": message, "traceback": traceback.format_exc()}
        atomic_write_bytes(failed_path, (json.dumps(detail, indent=2) + "\n").encode("utf-8"))
        return ItemOutcome(job.item_id, False, time.perf_counter() - start, message)


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
        runs = list(old.get("runs") or [])
    document = {**header, "labellers": labellers, "runs": runs}
    _write_header_document(path, document)
    return runs


def _record_run(out_dir: Path, index: int, run: Mapping[str, Any]) -> None:
    """Write run number ``index`` (wall time so far, items built) into ``dataset.json``'s ``runs``."""
    path = out_dir / "dataset.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    runs = list(document.get("runs") or [])
    runs[index:] = [dict(run)]
    document["runs"] = runs
    _write_header_document(path, document)


def build_seconds(header: Mapping[str, Any]) -> float:
    """Total wall time of every recorded build run of a dataset (``dataset.json``), in seconds."""
    return float(sum(float(run.get("seconds", 0.0)) for run in header.get("runs") or []))


def read_items(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every done item record under ``out_dir``, sorted by item id."""
    records = []
    for path in sorted((Path(out_dir) / "items").glob("*/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        npz = Path(out_dir) / str(record.get("npz", ""))
        if npz.is_file() and npz.stat().st_size == record.get("npz_bytes"):
            records.append(record)
    return sorted(records, key=lambda r: str(r["item_id"]))


def rebuild_manifest(out_dir: str | Path) -> Path:
    """Write ``manifest.jsonl`` (one item record per line) from the item files; returns its path."""
    lines = [json.dumps(record, sort_keys=True) for record in read_items(out_dir)]
    return atomic_write_bytes(Path(out_dir) / "manifest.jsonl", ("\n".join(lines) + ("\n" if lines else "")).encode())


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
        _write_item_record(path, record)
    header["recipe"]["machines"] = list(jury)
    header["recipe"]["min_applicable_machines"] = k
    _write_header_document(header_path, header)
    return RelabelReport(root, len(records), changed, jury, rebuild_manifest(root), k)
