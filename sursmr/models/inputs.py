"""From 8-bit RGB images to network input, and from tile scores back to one score.

The trainer and :class:`sursmr.predictor.Predictor` both call
:func:`image_to_input`, so a model sees the same pixels at training and at
prediction time. Two modes (``NetConfig.input_mode``):

* ``resize224``: one input per image, the whole image resized (bilinear,
  antialiased) to S×S, S = ``input_size``. The paper's setting.
* ``native``: no resampling. Tile origins along each axis are spread evenly
  from 0 to ``side − S`` with ⌈side / S⌉ tiles, so edge tiles overlap their
  neighbours instead of being padded; a side shorter than S is padded at the
  bottom/right by edge replication (the padding is identical in reference
  and candidate, so it adds no difference). Tile scores are aggregated by
  :func:`aggregate_tiles`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sursmr.models.config import NetConfig, PatchAggregate
from sursmr_core.imaging import RGBImage


def tile_origins(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length`` pixels (overlapping at the end)."""
    if length <= tile:
        return [0]
    count = math.ceil(length / tile)
    span = length - tile
    return [round(i * span / (count - 1)) for i in range(count)]


def rgb_to_tensor(image: RGBImage, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (H, W, 3) → float32 (3, H, W) in [0, 1] on ``device`` (converted there, after a uint8 copy)."""
    # torch refuses to share read-only buffers (e.g. arrays viewing a PIL image) without a warning
    array = np.ascontiguousarray(image) if image.flags.writeable else np.array(image, order="C")
    raw = torch.from_numpy(array).to(device)
    return raw.permute(2, 0, 1).to(torch.float32).div_(255.0)


def tensor_to_input(image: Tensor, config: NetConfig) -> Tensor:
    """Float (3, H, W) in [0, 1] → (P, 3, S, S) network input; P = 1 for ``resize224``."""
    side = config.input_size
    if config.input_mode == "resize224":
        if image.shape[1:] == (side, side):
            return image.unsqueeze(0)
        resized = F.interpolate(image.unsqueeze(0), size=(side, side), mode="bilinear", antialias=True)
        return resized.clamp_(0.0, 1.0)
    height, width = image.shape[1:]
    padded = image
    if height < side or width < side:
        pad = (0, max(0, side - width), 0, max(0, side - height))
        padded = F.pad(image.unsqueeze(0), pad, mode="replicate").squeeze(0)
    tiles = [
        padded[:, top : top + side, left : left + side]
        for top in tile_origins(height, side)
        for left in tile_origins(width, side)
    ]
    return torch.stack(tiles)


def image_to_input(image: RGBImage, config: NetConfig, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (H, W, 3) → (P, 3, S, S) float network input in [0, 1]; see the module docstring."""
    return tensor_to_input(rgb_to_tensor(image, device), config)


def tile_count(height: int, width: int, config: NetConfig) -> int:
    """P for an image of this size: 1 in ``resize224`` mode, the number of tiles in ``native`` mode."""
    if config.input_mode == "resize224":
        return 1
    side = config.input_size
    return len(tile_origins(height, side)) * len(tile_origins(width, side))


def aggregate_tiles(scores: Tensor, rule: PatchAggregate) -> Tensor:
    """(P, 2) tile scores → (2,) image score, each output aggregated independently.

    ``mean``: the mean over tiles. ``worst_quarter``: the mean of the lowest
    ⌈P/4⌉ tile scores.
    """
    if rule == "mean":
        return scores.mean(dim=0)
    k = max(1, math.ceil(scores.shape[0] / 4))
    lowest = torch.topk(scores, k, dim=0, largest=False).values
    return lowest.mean(dim=0)
