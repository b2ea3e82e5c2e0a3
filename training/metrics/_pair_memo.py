"""A small per-process memo keyed on an image pair's pixels.

Some tools compute several metrics in one run (butteraugli's max and 3-norm,
libvmaf's models). The label pipeline scores one metric over a whole level
sweep, then the next, so each metric asks for the same pairs in turn; this
memo lets the second metric reuse the first one's run.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

from sursmr_core.imaging import RGBImage

T = TypeVar("T")


class PairMemo(Generic[T]):
    """Remember ``compute(reference, distorted)`` for the last ``size`` distinct pairs."""

    def __init__(self, compute: Callable[[RGBImage, RGBImage], T], size: int = 256) -> None:
        self._compute = compute
        self._size = size
        self._recent: OrderedDict[bytes, T] = OrderedDict()

    @staticmethod
    def key(reference: RGBImage, distorted: RGBImage) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        for image in (reference, distorted):
            digest.update(repr((image.shape, image.dtype.str)).encode())
            digest.update(np.ascontiguousarray(image).data)
        return digest.digest()

    def __call__(self, reference: RGBImage, distorted: RGBImage) -> T:
        key = self.key(reference, distorted)
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        value = self._compute(reference, distorted)
        self._recent[key] = value
        while len(self._recent) > self._size:
            self._recent.popitem(last=False)
        return value
