"""Batch benchmark: constants, the photo folder it runs on, and reading runs.jsonl (moved from batch.py)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WIDTH, HEIGHT = 768, 512
COLLECTIONS = (
    "skimage",
    "opencv-doc",
    "opencv-doc-more",
    "matplotlib",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "ukui-wallpapers",
    "gnome-backgrounds",
    "lxqt-themes",
)
"""Colour photo collections the folder is cut from (greyscale ``skimage-grey`` and ``lomiri-wallpapers*`` out)."""
ZOOMS = (1.0, 1.6, 2.5, 4.0, 6.0)
"""Crop k of a photo: the photo scaled to ``ZOOMS[k]`` × the scale that just covers 768×512."""
FOLDER_VERSION = 1
RAY_STARTED = re.compile(r"(?:started a local Ray|connected to the Ray cluster)\S*.* in ([0-9.]+) s")


# --- the folder ---------------------------------------------------------------------------------------------------


def plan_folder(count: int) -> list[dict[str, Any]]:
    """``count`` crops: photos round-robin over collections, crop k of each photo at zoom ``ZOOMS[k]``."""
    import numpy as np

    from training.datasets.crops import stable_seed
    from training.datasets.sources import COLLECTIONS as REGISTERED
    from training.datasets.sources import gather_sources

    names = [name for name in COLLECTIONS if name in REGISTERED.names()]
    photos = gather_sources(names)
    by_collection: dict[str, list[Any]] = {}
    for photo in photos:
        by_collection.setdefault(photo.collection, []).append(photo)
    order: list[Any] = []
    queues = [by_collection[name] for name in sorted(by_collection)]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    from PIL import Image

    plan: list[dict[str, Any]] = []
    for k in range(len(ZOOMS)):
        for photo in order:
            if len(plan) == count:
                return plan
            with Image.open(photo.path) as im:
                width, height = im.size
            scale = max(WIDTH / width, HEIGHT / height) * ZOOMS[k]
            scaled_w, scaled_h = max(WIDTH, round(width * scale)), max(HEIGHT, round(height * scale))
            if k == 0:
                top, left = (scaled_h - HEIGHT) // 2, (scaled_w - WIDTH) // 2
            else:
                rng = np.random.default_rng(stable_seed("benchmarks.batch", photo.source_id, k))
                top, left = int(rng.integers(0, scaled_h - HEIGHT + 1)), int(rng.integers(0, scaled_w - WIDTH + 1))
            plan.append(
                {
                    "name": f"photo{len(plan):04d}.png",
                    "source_id": photo.source_id,
                    "collection": photo.collection,
                    "licence": photo.licence,
                    "path": str(photo.path),
                    "zoom": ZOOMS[k],
                    "scale": round(scale, 6),
                    "top": top,
                    "left": left,
                }
            )
    if len(plan) < count:
        raise SystemExit(f"only {len(plan)} crops can be made from the installed collections; use --photos {len(plan)}")
    return plan


def make_folder(work: Path, count: int) -> list[str]:
    """The folder ``work/photos`` (made once; ``photos.json`` says what is in it); returns the image names."""
    folder, listing = work / "photos", work / "photos.json"
    if listing.is_file():
        known = json.loads(listing.read_text(encoding="utf-8"))
        if known.get("version") == FOLDER_VERSION and len(known["crops"]) >= count:
            names = [crop["name"] for crop in known["crops"][:count]]
            if all((folder / name).is_file() for name in names):
                return names
    import numpy as np
    from PIL import Image

    from training.datasets.crops import CropSpec, render_crop

    plan = plan_folder(count)
    folder.mkdir(parents=True, exist_ok=True)
    for crop in _bar(plan, "making the folder"):
        spec = CropSpec(
            crop["name"], crop["source_id"], crop["path"], crop["scale"], HEIGHT, WIDTH, crop["top"], crop["left"]
        )
        target = folder / crop["name"]
        if not target.is_file():
            rgb = render_crop(spec)
            temp = target.with_name(f".{target.name}.part")
            Image.fromarray(np.ascontiguousarray(rgb)).save(temp, format="PNG")
            os.replace(temp, target)
    listing.write_text(json.dumps({"version": FOLDER_VERSION, "crops": plan}, indent=1) + "\n", encoding="utf-8")
    return [crop["name"] for crop in plan]


def _bar(items: list[Any], desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, file=sys.stderr, dynamic_ncols=True)


def read_runs(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a kill
    return records
