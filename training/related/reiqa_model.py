"""Re-IQA quality encoder: distortion classes, MoCo config, network, InfoNCE loss and MoCo state."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sursmr_core.errors import InputError

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
