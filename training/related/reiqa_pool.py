"""Re-IQA training data: the distorted photo pool, view sampling, collapse and retrieval checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from training.related.distortions import apply
from training.related.reiqa_model import (
    DEFAULT_CLASSES,
    DistortionClass,
    Moco,
    MocoConfig,
    MocoQuality,
    grouped_forward,
)


def to_batch(crops: Sequence[RGBImage]) -> torch.Tensor:
    """uint8 (H, W, 3) crops → float (B, 3, H, W) in [0, 1] (the quality encoder sees raw pixels)."""
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def _shrink(rgb: RGBImage, max_side: int) -> RGBImage:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


@dataclass
class Pool:
    """pool[c][p]: photo ``p`` distorted by class ``c``."""

    classes: tuple[DistortionClass, ...]
    images: list[list[RGBImage]] = field(default_factory=list)


def build_pool(
    photos: Sequence[RGBImage], classes: Sequence[DistortionClass] = DEFAULT_CLASSES, max_side: int = 320
) -> Pool:
    """Every photo (shrunk to ``max_side``) under every distortion class."""
    shrunk = [_shrink(p, max_side) for p in photos]
    images = [
        [p if c.kind == "none" else apply(p, c.kind, c.param, seed=i) for i, p in enumerate(shrunk)] for c in classes
    ]
    return Pool(tuple(classes), images)


def _crop(rng: np.random.Generator, image: RGBImage, side: int) -> RGBImage:
    h, w = image.shape[:2]
    if h < side or w < side:
        raise InputError(f"photo {w}x{h} is smaller than the {side} px crop")
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = image[top : top + side, left : left + side]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def sample_labelled_views(
    pool: Pool, rng: np.random.Generator, config: MocoConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of (query, key) views and their distortion class (B,): each pair shares the class and differs in
    crop (and maybe photo)."""
    queries, keys, labels = [], [], []
    photos = len(pool.images[0])
    for _ in range(config.batch):
        c = int(rng.integers(len(pool.classes)))
        p = int(rng.integers(photos))
        other = int(rng.integers(photos)) if rng.random() < config.other_photo else p
        queries.append(_crop(rng, pool.images[c][p], config.crop))
        keys.append(_crop(rng, pool.images[c][other], config.crop))
        labels.append(c)
    return to_batch(queries), to_batch(keys), torch.tensor(labels, dtype=torch.long)


def sample_views(pool: Pool, rng: np.random.Generator, config: MocoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (query, key) views: each pair shares a distortion class and differs in crop (and maybe photo)."""
    queries, keys, _ = sample_labelled_views(pool, rng, config)
    return queries, keys


def stationary_loss(model: MocoQuality, pool: Pool, config: MocoConfig, batches: int = 6, seed: int = 777) -> float:
    """InfoNCE of one network against itself (query = key model, queue filled with its own keys of fresh views,
    same-class keys masked as in training): comparable between the start and the end of training, unlike the
    running loss, whose key model lags the query model."""
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.train()  # batch statistics, as in training
    probe = Moco.create(
        model,
        config.queue,
        1.0,
        config.temperature,
        bn_groups=config.bn_groups,
        batch_negatives=config.batch_negatives,
    )
    probe.key = model
    losses = []
    with torch.no_grad():
        for _ in range(-(-config.queue // config.batch)):
            _, views_k, labels = sample_labelled_views(pool, rng, config)
            probe.fill_queue(grouped_forward(model, views_k, config.bn_groups), labels)
        for _ in range(batches):
            views_q, views_k, labels = sample_labelled_views(pool, rng, config)
            loss, _ = probe.loss(views_q, views_k, labels if config.mask_same_class else None)
            losses.append(float(loss))
    model.train(was_training)
    return float(np.mean(losses))


def class_retrieval(encoder: nn.Module, pool: Pool, crop: int, per_class: int = 8, seed: int = 12345) -> float:
    """Leave-one-out 1-NN accuracy (cosine) of the distortion class from pooled features of fresh crops.

    Crops come from different photos where the pool has enough; chance is 1 / classes.
    """
    rng = np.random.default_rng(seed)
    photos = len(pool.images[0])
    crops, labels = [], []
    for c, images in enumerate(pool.images):
        for i in range(per_class):
            crops.append(_crop(rng, images[(i * 7 + c) % photos], crop))
            labels.append(c)
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        features = F.normalize(encoder(to_batch(crops)), dim=1)
    encoder.train(was_training)
    similarity = features @ features.t()
    similarity.fill_diagonal_(float("-inf"))
    nearest = similarity.argmax(dim=1)
    truth = torch.tensor(labels)
    return float((truth[nearest] == truth).float().mean())
