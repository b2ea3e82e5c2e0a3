"""Proxy-labelled SUR/SMR datasets: offline photos, recipes, the resumable builder, real-dataset loaders.

* :mod:`~training.datasets.sources` — offline photo collections (re-exports the crops).
* :mod:`~training.datasets.crops` — seeded crops of those photos (each remembers its source).
* :mod:`~training.datasets.recipe` — what to build (codecs, levels, crops, split, seed, labellers), as JSON.
* :mod:`~training.datasets.cost` — a recipe's estimated build time and size.
* :mod:`~training.datasets.builder` — the resumable, parallel build into shards + ``manifest.jsonl``.
* :mod:`~training.datasets.items` — one item (crop × codec): its job, worker and files.
* :mod:`~training.datasets.relabel` — a narrower machine jury over a finished build.
* :mod:`~training.datasets.executors` — where jobs run (``local`` processes or ``ray``).
* :mod:`~training.datasets.loaders` — KonJND-1k, MCL-JCI and VVC-JND (real SUR from per-subject JND points).
* :mod:`~training.datasets.torch_dataset` — a ``torch.utils.data.Dataset`` over built shards (imports torch).

Labels built here are proxies (IQA ensemble, JND-calibrated metrics, machine zoo), never real SUR.
"""

from training.datasets.builder import (
    BuildReport,
    RelabelReport,
    assign_splits,
    build_dataset,
    read_items,
    rebuild_manifest,
    relabel_smr,
)
from training.datasets.recipe import DEFAULT_RECIPE, CodecPlan, Recipe, load_recipe, save_recipe

__all__ = [
    "DEFAULT_RECIPE",
    "BuildReport",
    "CodecPlan",
    "Recipe",
    "RelabelReport",
    "assign_splits",
    "build_dataset",
    "load_recipe",
    "read_items",
    "rebuild_manifest",
    "relabel_smr",
    "save_recipe",
]
