"""One dataset item (one crop × one codec): its job, the worker that makes it, and its files on disk.

See :mod:`training.datasets.builder` for the two files an item writes (the
``.npz`` of pixels and bitstreams, then the ``.json`` record that marks it
done) and how a build runs items; this module makes, checks and reads them.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import codec_adapters
from sursmr.encoding import encode_levels
from sursmr_core.imaging import RGBImage
from sursmr_core.outputs import atomic_write_bytes
from training.datasets.labelling import PipelineFactory, label_sweep, pipeline_for
from training.datasets.sources import CropSpec, slug

DATASET_FORMAT = 1


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


def write_item_record(path: Path, record: Mapping[str, Any]) -> None:
    """An item's JSON record (its done-marker), one line, written atomically."""
    atomic_write_bytes(path, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))


def write_header_document(path: Path, document: Mapping[str, Any]) -> None:
    """``dataset.json``, indented, written atomically."""
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))


HEADER_NAME = "dataset.json"


def read_header(data: str | Path, *, required: bool = True) -> dict[str, Any]:
    """A built dataset's ``dataset.json`` (recipe, labellers, build runs) as a dict.

    ``required``: a missing or unreadable header raises :class:`InputError`
    naming the folder; otherwise it reads as ``{}`` (a folder of items copied
    without their header still loads).
    """
    from sursmr_core.errors import InputError

    path = Path(data) / HEADER_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document
    except FileNotFoundError:
        if not required:
            return {}
        raise InputError(f"{path} not found; is {Path(data)} a dataset built by 'sursmr-train build'?") from None
    except (OSError, ValueError) as exc:
        if not required:
            return {}
        raise InputError(f"{path} is unreadable ({exc}); rebuild or restore it") from None


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
        write_item_record(json_path, record)
        failed_path.unlink(missing_ok=True)
        return ItemOutcome(job.item_id, True, time.perf_counter() - start)
    except Exception as exc:  # one bad item must not end a two-hour build; it is recorded and retried
        message = f"{type(exc).__name__}: {exc}"
        detail = {"item_id": job.item_id, "error": message, "traceback": traceback.format_exc()}
        atomic_write_bytes(failed_path, (json.dumps(detail, indent=2) + "\n").encode("utf-8"))
        return ItemOutcome(job.item_id, False, time.perf_counter() - start, message)


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
