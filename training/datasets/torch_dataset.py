"""A ``torch.utils.data.Dataset`` over a built dataset (``manifest.jsonl`` + item shards).

One sample is one (item, level): the reference crop and its decoded version
at that level, with the SUR and SMR *proxy* labels of that level. Labels:

``label_kind="eq3"``
    pseudo-SUR of paper Eq. 3 (IQA ensemble, normalised over the image's own
    level set), in [0, 1].
``label_kind="jnd"``
    the absolute JND-calibrated SUR proxy, in [0, 1]; levels where it is
    undefined are left out of the index.

``smr_label`` is the share of satisfied machines in [0, 1], or NaN where no
machine could judge the image (mask it out of the loss).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from sursmr_core.errors import InputError
from training.datasets.builder import SPLITS, decode_png

LabelKind = Literal["eq3", "jnd"]
LABEL_KEYS: dict[str, str] = {"eq3": "pseudo_sur_eq3", "jnd": "sur_jnd_proxy"}


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) → float32 (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


class SurSmrDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]]):
    """Samples ``(reference, distorted, sur_label, smr_label, meta)`` of one split.

    ``reference`` / ``distorted``: float32 tensors (3, H, W) in [0, 1] (crops
    of one build may differ in size: batch with a resize/crop transform or
    ``batch_size=1``). ``sur_label`` / ``smr_label``: float32 scalars.
    ``meta``: item id, source id, codec, level, bpp. With ``flip=True`` the
    same random horizontal and vertical flips are applied to both images
    (the paper's only augmentation), drawn from ``seed`` and the sample index
    so that runs are repeatable.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = "train",
        *,
        label_kind: LabelKind = "eq3",
        flip: bool = False,
        seed: int = 0,
        cache_items: int = 8,
    ) -> None:
        if label_kind not in LABEL_KEYS:
            raise InputError(f"label_kind must be one of {sorted(LABEL_KEYS)}, got {label_kind!r}")
        if split is not None and split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.root = Path(root)
        manifest = self.root / "manifest.jsonl"
        if not manifest.is_file():
            raise InputError(f"{manifest} not found; build the dataset first (sursmr-train build)")
        self.label_kind = label_kind
        self.flip = flip
        self.seed = seed
        self.records: list[dict[str, Any]] = []
        self.index: list[tuple[int, int]] = []
        key = LABEL_KEYS[label_kind]
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if split is not None and record["split"] != split:
                continue
            sur = record["labels"].get(key)
            if sur is None:
                continue
            number = len(self.records)
            self.records.append(record)
            for level_index, value in enumerate(sur):
                if value is not None and math.isfinite(float(value)):
                    self.index.append((number, level_index))
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_items = max(1, cache_items)

    def __len__(self) -> int:
        return len(self.index)

    def _arrays(self, number: int) -> dict[str, np.ndarray]:
        cached = self._cache.get(number)
        if cached is not None:
            self._cache.move_to_end(number)
            return cached
        with np.load(self.root / self.records[number]["npz"]) as data:
            arrays = {name: data[name] for name in data.files if not name.startswith("bitstream_")}
        self._cache[number] = arrays
        if len(self._cache) > self._cache_items:
            self._cache.popitem(last=False)
        return arrays

    def sample(self, i: int) -> tuple[int, int, float, float, dict[str, Any]]:
        """``(record number, level index, sur_label, smr_label, meta)`` of sample ``i``, without decoding images."""
        number, level_index = self.index[i]
        record = self.records[number]
        labels = record["labels"]
        sur = float(labels[LABEL_KEYS[self.label_kind]][level_index])
        smr_value = labels["smr"][level_index] if labels.get("smr") is not None else None  # null: no SMR label
        smr = float("nan") if smr_value is None else float(smr_value)
        meta = {
            "item_id": record["item_id"],
            "source_id": record["source_id"],
            "codec": record["codec"],
            "level": int(record["levels"][level_index]),
            "bpp": float(record["bpp"][level_index]),
        }
        return number, level_index, sur, smr, meta

    def images(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The (reference, distorted) uint8 (H, W, 3) arrays of sample ``i``, flipped as :meth:`__getitem__` does."""
        number, level_index = self.index[i]
        arrays = self._arrays(number)
        reference = decode_png(arrays["reference_png"])
        distorted = decode_png(arrays[f"decoded_png_{level_index}"])
        if self.flip:
            rng = np.random.default_rng([self.seed, i])
            flips = rng.integers(0, 2, size=2)
            if flips[0]:
                reference, distorted = reference[:, ::-1], distorted[:, ::-1]
            if flips[1]:
                reference, distorted = reference[::-1], distorted[::-1]
        return reference, distorted

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        _, _, sur, smr, meta = self.sample(i)
        reference, distorted = self.images(i)
        return (
            _to_tensor(reference),
            _to_tensor(distorted),
            torch.tensor(sur, dtype=torch.float32),
            torch.tensor(smr, dtype=torch.float32),
            meta,
        )
