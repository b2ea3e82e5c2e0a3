"""The SUR/SMR prediction network of the paper (§III-B, Fig. 2).

Original and compressed images go through one shared backbone; per stage
the difference features F_Δ = F_0 − F_q are refined by DFRL, aggregated
across stages and pooled by MHAAP into Y tokens of width Z, fused with a
regression token by MLP-Mixer layers, and the regression token is mapped by
a 3-layer MLP to (SUR, SMR) in [0, 1]. The pre-training network (head
``pretrain``) maps pooled difference features straight to the 3-layer MLP.

Inputs of every ``forward``: float RGB tensors in [0, 1], shape (B, 3, S, S)
with S = ``config.input_size``; normalisation happens inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sursmr.models.backbones import BACKBONES, build_backbone, feature_channels
from sursmr.models.config import NetConfig
from sursmr_core.errors import ModelError

if TYPE_CHECKING:
    from sursmr.models.stats_head import StatsHead

FEATURE_NORM_EPS = 1e-6
"""Floor of the channel norm in ``feature_norm`` (all-zero feature vectors stay zero)."""


class DFRL(nn.Module):
    """Difference Feature Residual Learning (Eq. 5): F* = F + Conv3(σ(Conv2(σ(Conv1(F))))).

    Shape-preserving: (B, C, H, W) → (B, C, H, W); σ is GELU.
    """

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.conv3 = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.act = nn.GELU()

    def forward(self, diff: Tensor) -> Tensor:
        out: Tensor = diff + self.conv3(self.act(self.conv2(self.act(self.conv1(diff)))))
        return out


class MHAAP(nn.Module):
    """Multi-Head Attention Aggregation and Pooling (Eq. 6).

    (B, N, C) LayerNorm-ed spatial tokens → (B, Y, Z): Y learnable queries
    attend over the tokens with ``heads`` heads, scale 1/√(C/h), then a linear
    layer pools C to Z.
    """

    def __init__(self, channels: int, queries: int, heads: int, out_dim: int, qo_proj: bool) -> None:
        super().__init__()
        if channels % heads:
            raise ModelError(f"MHAAP: {heads} heads do not divide the {channels} summed feature channels")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.query = nn.Parameter(torch.empty(queries, channels))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.q_proj: nn.Module = nn.Linear(channels, channels) if qo_proj else nn.Identity()
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.o_proj: nn.Module = nn.Linear(channels, channels) if qo_proj else nn.Identity()
        self.pool = nn.Linear(channels, out_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        batch, _, channels = tokens.shape
        head_dim = channels // self.heads
        normed = self.norm(tokens)

        def split(x: Tensor) -> Tensor:  # (B, L, C) → (B, h, L, C/h)
            return x.reshape(x.shape[0], x.shape[1], self.heads, head_dim).transpose(1, 2)

        q = split(self.q_proj(self.query).unsqueeze(0).expand(batch, -1, -1))
        k = split(self.k_proj(normed))
        v = split(self.v_proj(normed))
        attended = F.scaled_dot_product_attention(q, k, v)  # default scale is 1/√(C/h)
        merged = attended.transpose(1, 2).reshape(batch, -1, channels)
        out: Tensor = self.pool(self.o_proj(merged))
        return out


class Mlp(nn.Module):
    """Linear → GELU → Linear on the last dimension."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class MixerLayer(nn.Module):
    """One MLP-Mixer layer (Eq. 7) on (B, T, Z): token mixing then channel mixing, pre-LayerNorm, residual."""

    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = Mlp(tokens, token_hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = Mlp(dim, channel_hidden)

    def forward(self, s: Tensor) -> Tensor:
        u = s + self.token_mlp(self.norm1(s).transpose(1, 2)).transpose(1, 2)
        out: Tensor = u + self.channel_mlp(self.norm2(u))
        return out


def regression_mlp(in_dim: int, hidden: tuple[int, int], dropout: float = 0.0) -> nn.Sequential:
    """The 3-layer MLP to (SUR, SMR): (B, in_dim) → (B, 2) in [0, 1] through a sigmoid.

    ``dropout`` > 0 drops hidden activations while training. It has no
    parameters and sits inside the activation slots, so the layer names (and
    saved weights) are the same with and without it.
    """

    def activation() -> nn.Module:
        return nn.Sequential(nn.GELU(), nn.Dropout(dropout)) if dropout else nn.GELU()

    return nn.Sequential(
        nn.Linear(in_dim, hidden[0]),
        activation(),
        nn.Linear(hidden[0], hidden[1]),
        activation(),
        nn.Linear(hidden[1], 2),
        nn.Sigmoid(),
    )


class MixerHead(nn.Module):
    """DFRL per stage → fuse to one H×W → MHAAP → [T_reg; tokens] → MLP-Mixer → MLP on T_reg."""

    def __init__(self, channels: list[int], config: NetConfig) -> None:
        super().__init__()
        total = sum(channels)
        self.fuse_size = config.fuse_size
        self.fuse_antialias = config.fuse_antialias
        self.dfrl = nn.ModuleList(DFRL(c, config.dfrl_kernel) for c in channels)
        self.mhaap = MHAAP(total, config.queries, config.heads, config.embed_dim, config.attn_qo_proj)
        self.reg_token = nn.Parameter(torch.empty(1, 1, config.embed_dim))
        nn.init.trunc_normal_(self.reg_token, std=0.02)
        tokens = config.queries + 1
        self.mixer = nn.Sequential(
            *(
                MixerLayer(tokens, config.embed_dim, config.mixer_token_hidden, config.mixer_channel_hidden)
                for _ in range(config.mixer_layers)
            )
        )
        self.norm = nn.LayerNorm(config.embed_dim)
        self.mlp = regression_mlp(config.embed_dim, config.head_hidden, config.dropout)

    def forward(self, diffs: list[Tensor]) -> Tensor:
        refined = [
            F.interpolate(
                block(d), size=self.fuse_size, mode="bilinear", align_corners=False, antialias=self.fuse_antialias
            )
            for block, d in zip(self.dfrl, diffs, strict=True)
        ]
        fused = torch.cat(refined, dim=1)  # (B, C, H, W)
        tokens = fused.flatten(2).transpose(1, 2)  # (B, N, C)
        pooled = self.mhaap(tokens)  # (B, Y, Z)
        reg = self.reg_token.expand(pooled.shape[0], -1, -1)
        mixed = self.norm(self.mixer(torch.cat([reg, pooled], dim=1)))
        out: Tensor = self.mlp(mixed[:, 0])
        return out


class PretrainHead(nn.Module):
    """Per stage, channel-wise spatial mean of F_Δ and of |F_Δ|, concatenated → 3-layer MLP.

    The signed mean alone would cancel for zero-mean coding noise, hence the
    absolute mean beside it. (B, 2·C) → (B, 2).
    """

    def __init__(self, channels: list[int], config: NetConfig) -> None:
        super().__init__()
        self.mlp = regression_mlp(2 * sum(channels), config.head_hidden, config.dropout)

    def forward(self, diffs: list[Tensor]) -> Tensor:
        pooled = [torch.cat([d.mean(dim=(2, 3)), d.abs().mean(dim=(2, 3))], dim=1) for d in diffs]
        out: Tensor = self.mlp(torch.cat(pooled, dim=1))
        return out


class NoFeatures(nn.Module):
    """The backbone of a ``stats`` network that reads pixels only: no parameters, no features."""

    def forward(self, images: Tensor) -> list[Tensor]:
        return []


class SurSmrNet(nn.Module):
    """Full-reference SUR/SMR predictor: (reference, distorted) → (B, 2) = (SUR, SMR) in [0, 1].

    ``forward`` is the training entry point. For scoring many candidates of
    one reference, compute :meth:`reference_features` once and call
    :meth:`forward_from_features` per batch of candidates.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        spec = BACKBONES.get(config.backbone)
        self.backbone: nn.Module = build_backbone(spec, config.stages) if config.uses_backbone else NoFeatures()
        self.channels = feature_channels(self.backbone) if config.uses_backbone else []
        self.head: nn.Module
        if config.head == "stats":
            from sursmr.models.stats_head import StatsHead

            self.head = StatsHead(
                self.channels,
                config.pixel_scales,
                config.head_hidden,
                config.dropout,
                config.members,
                config.stats_streams,
                config.smr_streams,
            )
        elif config.head == "mixer":
            self.head = MixerHead(self.channels, config)
        else:
            self.head = PretrainHead(self.channels, config)
        # the stats head also reads the input pixels: feature lists then end with the image itself
        self.pixel_stream = config.head == "stats"
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)

    def _normalised(self, images: Tensor) -> Tensor:
        """(images − mean) / std, written to a contiguous (NCHW) tensor.

        The predictor's tiles are channels-last, where broadcasting the per-channel constants runs
        along an innermost axis of 3 (~5x slower on the CPU); the values are the same, and ONNX Runtime
        takes the NCHW tensor without another copy.
        """
        if images.requires_grad:
            return (images - self.mean) / self.std
        out = torch.empty(images.shape, dtype=torch.result_type(images, self.mean), device=images.device)
        return torch.sub(images, self.mean, out=out).div_(self.std)

    def _features(self, images: Tensor) -> list[Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ModelError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        features: list[Tensor] = self.backbone(self._normalised(images)) if self.config.uses_backbone else []
        if self.config.feature_norm:
            features = [
                f * (f.shape[1] ** 0.5) / f.norm(dim=1, keepdim=True).clamp_min(FEATURE_NORM_EPS) for f in features
            ]
        if self.pixel_stream:
            features = [*features, images]
        return features

    def reference_features(self, reference: Tensor) -> list[Tensor]:
        """Backbone features of references in [0, 1], (R, 3, S, S) → per stage (R, C_i, h_i, w_i).

        With the ``stats`` head the list ends with the input images themselves (its pixel stream).
        """
        return self._features(reference)

    def prepare_reference(self, reference_features: list[Tensor]) -> list[Tensor]:
        """What :meth:`forward_from_prepared` needs of the reference, batch first, computed once per reference.

        The ``stats`` head's reference-only statistics (:meth:`StatsHead.prepare_reference`);
        the features themselves for the other heads.
        """
        if self.pixel_stream:
            return cast("StatsHead", self.head).prepare_reference(reference_features)
        return reference_features

    def forward_from_prepared(self, prepared: list[Tensor], distorted: Tensor) -> Tensor:
        """(SUR, SMR) of ``distorted`` (B, 3, S, S) against :meth:`prepare_reference`'s tensors.

        The prepared batch is 1 (one reference for every candidate), B, or R with B = k·R: the
        candidates are then groups of the R references' tiles (candidate ``i`` against reference
        ``i mod R``), which the ``stats`` head reads without copying them.
        """
        dist = self._features(distorted)
        if self.pixel_stream:
            return cast("StatsHead", self.head).forward_prepared(prepared, dist)
        references, batch = (int(prepared[0].shape[0]) if prepared else 1), int(distorted.shape[0])
        if 1 < references < batch:  # the per-pair heads take the references repeated for each group
            prepared = [p.repeat(batch // references, *([1] * (p.ndim - 1))) for p in prepared]
        diffs = [ref - d for ref, d in zip(prepared, dist, strict=True)]
        out: Tensor = self.head(diffs)
        return out

    def forward_from_features(self, reference_features: list[Tensor], distorted: Tensor) -> Tensor:
        """(SUR, SMR) of ``distorted`` (B, 3, S, S) against precomputed reference features.

        ``reference_features`` have batch B, or 1 to share one reference across the batch.
        """
        return self.forward_from_prepared(self.prepare_reference(reference_features), distorted)

    def forward(self, reference: Tensor, distorted: Tensor) -> Tensor:
        """(B, 2) = (SUR, SMR) for image pairs in [0, 1] of shape (B, 3, S, S) each."""
        if reference.shape != distorted.shape:
            raise ModelError(f"reference {tuple(reference.shape)} and distorted {tuple(distorted.shape)} differ")
        # one backbone pass over both halves: half the kernel launches when training on a GPU
        both = self._features(torch.cat([reference, distorted], dim=0))
        batch = reference.shape[0]
        if self.pixel_stream:
            stats_out: Tensor = self.head([f[:batch] for f in both], [f[batch:] for f in both])
            return stats_out
        diffs = [f[:batch] - f[batch:] for f in both]
        out: Tensor = self.head(diffs)
        return out


def transfer_backbone(source: SurSmrNet, target: SurSmrNet) -> None:
    """Copy the backbone of a (pre-trained) network into another of the same backbone and stages."""
    if (source.config.backbone, source.config.stages) != (target.config.backbone, target.config.stages):
        raise ModelError(
            f"cannot transfer backbone {source.config.backbone}{source.config.stages} "
            f"to {target.config.backbone}{target.config.stages}"
        )
    target.backbone.load_state_dict(source.backbone.state_dict())


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def config_parameter_count(config: NetConfig) -> int:
    """Parameters of the network ``config`` describes, counted without allocating weights (meta device)."""
    with torch.device("meta"):
        return count_parameters(SurSmrNet(config))
