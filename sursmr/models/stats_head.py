"""The ``stats`` head of predictor v2: pooled difference statistics → standardised → small MLP ensemble.

Why a second head: on a 2-core CPU the paper's DFRL/MHAAP/Mixer head can only
learn from cached full-resolution difference maps, which do not fit in
memory for a dense-grid dataset, and the proxy SUR it must learn is driven by
chroma and fine-texture errors that ImageNet features barely encode. This
head therefore summarises each (reference, candidate) pair into a fixed
vector of statistics that cost one backbone pass and a few pooling
operations, and learns only the map from that vector to (SUR, SMR):

* **backbone stream**, per backbone stage with reference features F0 and
  candidate features Fq (B, C, h, w): the channel-wise spatial mean of
  F0 − Fq and of |F0 − Fq| (as the pre-training head), the channel-wise
  mean |F0 − Fq| relative to the mean |F0| (texture masking), and the mean
  and worst-decile regional mean of the squared difference of unit-length feature
  vectors (an LPIPS-like distance map without learned weights);
* **pixel stream**, in an opponent colour space (luma and two
  colour-difference channels of the gamma-encoded RGB), at ``pixel_scales``
  dyadic scales: log mean squared error, the mean and worst-decile regional mean of the
  local error energy divided by the local contrast energy of the reference
  (contrast masking), the SSIM structure/contrast term (mean and worst-decile
  regional mean), and the
  relative loss of local variance (blur: coding removes texture).

Everything before the MLP has no trainable parameters, so a trainer can
cache the vectors (:meth:`StatsHead.pool`) and train
:meth:`StatsHead.forward_pooled` alone, which is exactly the network that
runs at prediction time. The standardisation (``feature_mean`` /
``feature_std``) is set from the training split and saved with the weights.
The ensemble's members see the same batches from different initialisations;
their outputs are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sursmr_core.errors import ModelError

PIXEL_STATS = 6
"""Statistics per colour channel and scale in the pixel stream."""

_EPS = 1e-6
_C2 = (0.03**2) / 2  # SSIM's C2 / 2 for signals in [0, 1] (C3 = C2 / 2 in the structure-contrast term)
_MASK_C = 1e-4  # contrast-energy floor of the masking ratio (flat areas mask nothing)

# gamma-domain opponent transform: luma (BT.601 weights) and two colour differences
_OPPONENT = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)


def backbone_stats_size(channels: list[int], streams: Sequence[str] = ("channels", "distance")) -> int:
    """Length of the backbone part of the vector for stages of these channel counts."""
    per_channel = 3 if "channels" in streams else 0
    return sum(per_channel * c + (2 if "distance" in streams else 0) for c in channels)


def pixel_stats_size(scales: int) -> int:
    """Length of the pixel stream's vector with ``scales`` scales."""
    return 3 * scales * PIXEL_STATS


_REGIONS = 16
"""Maps are averaged over a grid of at most this many regions per side before their worst regions are found."""


def _worst_regions(values: Tensor, share: float, *, lowest: bool = False) -> Tensor:
    """(B, C, H, W) map → (B, C): mean of the largest ``share`` of its regional means (at least one region).

    Regions: the map averaged over an up to 16×16 grid (16×16-pixel regions of
    a 256×256 tile at full resolution), so one value is a local error level,
    not a single pixel. ``lowest``: of the negated map (the same numbers as
    passing ``-values``: region means of negated values are the negated means, bit for bit).
    """
    # int(): plain numbers even while the network is traced for export (ONNX)
    height, width = int(values.shape[2]), int(values.shape[3])
    rows, cols = min(height, _REGIONS), min(width, _REGIONS)
    if height % rows == 0 and width % cols == 0:  # the same means as adaptive pooling, and exportable
        grid = F.avg_pool2d(values, (height // rows, width // cols))
    else:
        grid = F.adaptive_avg_pool2d(values, (rows, cols))
    flat = (grid.neg() if lowest else grid).flatten(2)
    k = max(1, round(int(flat.shape[2]) * share))
    return torch.topk(flat, k, dim=2).values.mean(dim=2)


BLOCK_VALUES = 1 << 18
"""Candidate values (batch × channels × pixels of one map) the statistics work on at a time on the CPU.

Working tile by tile (a 256² tile's 3-channel pixel maps, or its 16-channel first backbone stage) keeps a
block's temporaries in the processor's cache instead of streaming the whole batch through memory for
each of the ~70 elementwise passes: measured ~1.7x faster for the box filter on one core. Every value
is computed exactly as on the whole batch (per-tile reductions are the same reductions).
"""


def _blocks(candidates: int, references: int, per_block: int) -> list[tuple[slice, slice]]:
    """(candidate rows, reference rows) of blocks of at most ``per_block`` candidates (at least one).

    Candidate ``i`` is scored against reference ``i mod references``; ``references`` is 1 (broadcast over
    every candidate) or divides ``candidates`` (the candidates are groups of the references' tiles).
    """
    if references < 1 or candidates % references:
        raise ModelError(
            f"{candidates} candidate tiles cannot be matched with {references} reference tiles: "
            "give one reference, or the candidates as whole groups of the reference tiles"
        )
    size = max(1, per_block)
    if references == 1:
        return [(slice(a, min(a + size, candidates)), slice(0, 1)) for a in range(0, candidates, size)]
    return [
        (slice(group + a, group + min(a + size, references)), slice(a, min(a + size, references)))
        for group in range(0, candidates, references)
        for a in range(0, references, size)
    ]


def _per_block(sample: Tensor) -> int:
    """Candidates per block for maps like ``sample`` (B, C, H, W): :data:`BLOCK_VALUES` on the CPU, all elsewhere."""
    if sample.device.type != "cpu":
        return int(sample.shape[0])
    return BLOCK_VALUES // max(1, int(sample[0].numel()))


def _backbone_parts(streams: Sequence[str]) -> int:
    """Tensors :func:`prepare_backbone` returns per stage for ``streams``."""
    return (2 if "channels" in streams else 0) + (1 if "distance" in streams else 0)


def _unit(features: Tensor) -> Tensor:
    unit: Tensor = features / features.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return unit


def prepare_backbone(reference: Tensor, streams: Sequence[str] = ("channels", "distance")) -> list[Tensor]:
    """The reference-only part of :func:`backbone_stats`, batch first: computed once per reference.

    ``channels``: the features and their channel-wise mean |F0| (B, C); ``distance``: unit-length features.
    """
    parts: list[Tensor] = []
    if "channels" in streams:
        parts += [reference, reference.abs().mean(dim=(2, 3))]
    if "distance" in streams:
        parts.append(_unit(reference))
    return parts


def backbone_stats_prepared(
    prepared: Sequence[Tensor], candidate: Tensor, streams: Sequence[str] = ("channels", "distance")
) -> Tensor:
    """:func:`backbone_stats` from :func:`prepare_backbone`'s tensors and the candidate's features.

    The prepared tensors hold 1 reference (shared by every candidate) or R, the candidates being groups
    of R (:func:`_blocks`); the work goes block by block (:data:`BLOCK_VALUES`).
    """
    blocks = _blocks(int(candidate.shape[0]), int(prepared[0].shape[0]), _per_block(candidate))
    return torch.cat([_backbone_block([p[r] for p in prepared], candidate[c], streams) for c, r in blocks])


def _backbone_block(prepared: Sequence[Tensor], candidate: Tensor, streams: Sequence[str]) -> Tensor:
    parts: list[Tensor] = []
    at = 0
    if "channels" in streams:
        reference, ref_abs_mean = prepared[0], prepared[1]
        at = 2
        diff = reference - candidate
        signed = diff.mean(dim=(2, 3))
        mean_abs = diff.abs_().mean(dim=(2, 3))
        relative = mean_abs / (ref_abs_mean + 1e-3)
        parts += [signed, mean_abs, relative]
    if "distance" in streams:
        distance = (prepared[at] - _unit(candidate)).pow_(2).sum(dim=1, keepdim=True)  # (B, 1, h, w), in [0, 4]
        parts += [distance.mean(dim=(2, 3)), _worst_regions(distance, 0.1)]
    return torch.cat(parts, dim=1)


def backbone_stats(reference: Tensor, candidate: Tensor, streams: Sequence[str] = ("channels", "distance")) -> Tensor:
    """(B, C, h, w) features of one stage → (B, 3C + 2) statistics (see the module docstring).

    ``streams`` selects the parts: ``channels`` (3C numbers) and/or ``distance`` (2).
    """
    return backbone_stats_prepared(prepare_backbone(reference, streams), candidate, streams)


def _mean3x3(padded: Tensor) -> Tensor:
    """``F.avg_pool2d(padded, 3, stride=1)`` on (B, C, H + 2, W + 2), bit for bit, as 8 vectorised shifted adds.

    The nine taps are summed in the CPU pooling kernel's order (row by row, left to right), then divided
    by 9, so the values are identical there (tested); it is several times faster than that NCHW kernel.
    """
    height, width = padded.shape[2] - 2, padded.shape[3] - 2
    total = padded[:, :, :height, :width] + padded[:, :, :height, 1 : width + 1]
    for dy, dx in ((0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)):
        total += padded[:, :, dy : dy + height, dx : dx + width]
    return total.div_(9)


def _box(x: Tensor) -> Tensor:
    """3×3 local mean with edge replication, shape-preserving on (B, C, H, W).

    Callers stack every map of one scale along C, so one pad and one filter serve them all.
    """
    return _mean3x3(F.pad(x, (1, 1, 1, 1), mode="replicate"))


def _opponent(rgb: Tensor) -> Tensor:
    return torch.einsum("oc,bchw->bohw", _OPPONENT.to(rgb.device, rgb.dtype), rgb)


def _downscale(x: Tensor) -> Tensor:
    """The next pyramid level: 2×2 means, or 2×2 area resampling when a side is under 4 (tiny inputs)."""
    if min(x.shape[2:]) < 4:
        return F.interpolate(x, size=(2, 2), mode="area")  # tiny inputs: keep shapes defined
    height, width = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    # F.avg_pool2d(x, 2) bit for bit (its four taps in its order, then / 4), in fewer passes over memory
    out = x[:, :, 0:height:2, 0:width:2] + x[:, :, 0:height:2, 1:width:2]
    out += x[:, :, 1:height:2, 0:width:2]
    out += x[:, :, 1:height:2, 1:width:2]
    return out.div_(4)


def prepare_pixels(reference: Tensor, scales: int) -> list[Tensor]:
    """The reference-only part of :func:`pixel_stats`, batch first: computed once per reference.

    Per scale: the opponent-colour reference (B, 3, H, W) and its local means, variances and the
    masking denominators (variances + the contrast floor) (B, 9, H, W).
    """
    ref = _opponent(reference)
    out: list[Tensor] = []
    for scale in range(scales):
        if scale:
            ref = _downscale(ref)
        mu_r, mean_sq = _box(torch.cat([ref, ref * ref], dim=1)).chunk(2, dim=1)
        var_r = (mean_sq - mu_r * mu_r).clamp_min(0)
        out += [ref, torch.cat([mu_r, var_r, var_r + _MASK_C], dim=1)]
    return out


def _box_of_products(factors: Sequence[tuple[Tensor, Tensor | None]]) -> tuple[Tensor, Tensor]:
    """:func:`_box` of the maps ``a · b`` (``a`` when ``b`` is None) stacked along C, and the stacked maps.

    The products are written straight into one replicate-padded buffer (no separate stacking and
    padding copies); the same values as ``_box(torch.cat([a * b, ...], dim=1))``.
    """
    first = factors[0][0]
    batch, channels, height, width = first.shape
    size = (batch, channels * len(factors), height + 2, width + 2)
    padded = torch.empty(size, dtype=first.dtype, device=first.device)
    maps = padded[:, :, 1:-1, 1:-1]
    for i, (a, b) in enumerate(factors):
        part = maps[:, channels * i : channels * (i + 1)]
        if b is None:
            part.copy_(a)
        else:
            torch.mul(a, b, out=part)
    padded[:, :, 0, 1:-1] = padded[:, :, 1, 1:-1]  # edge replication: rows, then whole columns (corners)
    padded[:, :, -1, 1:-1] = padded[:, :, -2, 1:-1]
    padded[:, :, :, 0] = padded[:, :, :, 1]
    padded[:, :, :, -1] = padded[:, :, :, -2]
    return _mean3x3(padded), maps


def pixel_stats_prepared(prepared: Sequence[Tensor], candidate: Tensor, scales: int) -> Tensor:
    """:func:`pixel_stats` from :func:`prepare_pixels`'s tensors and the candidate's RGB in [0, 1].

    The prepared tensors hold 1 reference or R, the candidates being groups of R (:func:`_blocks`).
    Per scale and block of candidates (:data:`BLOCK_VALUES`), one stacked box filter
    (:func:`_box_of_products`); the arithmetic after it is :func:`pixel_stats`'s, done in place
    on the filter's output to spare allocations.
    """
    cand = _opponent(candidate)
    out: list[Tensor] = []
    for scale in range(scales):
        if scale:
            cand = _downscale(cand)
        ref, ref_stats = prepared[2 * scale], prepared[2 * scale + 1]
        blocks = _blocks(int(cand.shape[0]), int(ref.shape[0]), _per_block(cand))
        out.append(torch.cat([_pixel_block(ref[r], ref_stats[r], cand[c]) for c, r in blocks]))
    return torch.cat(out, dim=1)


def _scalar(value: float, like: Tensor) -> Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def _pixel_block(ref: Tensor, ref_stats: Tensor, cand: Tensor) -> Tensor:
    """(B, 3 · 6) statistics of one scale: candidates (B, 3, H, W) against references (B or 1, …)."""
    mu_r, var_r, masking = ref_stats.chunk(3, dim=1)  # batch 1 broadcasts over the candidates
    err = cand - ref
    means, maps = _box_of_products([(cand, None), (cand, cand), (ref, cand), (err, err)])
    mu_c, mean_cc, mean_rc, mean_err = means.chunk(4, dim=1)
    sq_err = maps[:, 3 * cand.shape[1] :]
    var_c = mean_cc.sub_(mu_c * mu_c).clamp_min_(0)  # (E[c²] − μc²)⁺
    cov = mean_rc.sub_(mu_r * mu_c)  # E[rc] − μr μc
    # fused forms of the same operations, bit for bit: ε + a / b is a / b + ε, and C2 + 2 cov is exact in 2 cov
    masked = torch.addcdiv(_scalar(_EPS, cov), mean_err, masking, out=mean_err)  # E[err²] / (σr² + c) + ε
    log_masked = masked.log_()
    numerator = torch.add(_scalar(_C2, cov), cov, alpha=2, out=cov)
    structure = numerator.div_((var_r + var_c).add_(_C2))  # (2 cov + C2) / (σr² + σc² + C2)
    blur = var_c.sub_(var_r).div_(masking).clamp_(-1, 1)  # ((σc² − σr²) / (σr² + c)) in [−1, 1]
    stats = [
        torch.log(sq_err.mean(dim=(2, 3)) + 1e-8),
        log_masked.mean(dim=(2, 3)),
        _worst_regions(log_masked, 0.1),
        structure.mean(dim=(2, 3)),
        _worst_regions(structure, 0.1, lowest=True),
        blur.mean(dim=(2, 3)),
    ]
    return torch.stack(stats, dim=2).flatten(1)  # (B, 3·6)


def pixel_stats(reference: Tensor, candidate: Tensor, scales: int) -> Tensor:
    """RGB in [0, 1], (B, 3, H, W) each → (B, 3 · scales · 6) opponent-colour statistics."""
    return pixel_stats_prepared(prepare_pixels(reference, scales), candidate, scales)


STREAM_ORDER = ("channels", "distance", "pixel")


def stream_columns(channels: list[int], streams: Sequence[str], pixel_scales: int) -> dict[str, list[int]]:
    """Column indices of each stream in the vector :meth:`StatsHead.pool` builds for ``streams``.

    Layout: per backbone stage its ``channels`` part (3C) then its ``distance`` part (2); then ``pixel``.
    """
    columns: dict[str, list[int]] = {s: [] for s in streams}
    at = 0
    for c in channels if ({"channels", "distance"} & set(streams)) else []:
        for stream, width in (("channels", 3 * c), ("distance", 2)):
            if stream in streams:
                columns[stream] += list(range(at, at + width))
                at += width
    if "pixel" in streams:
        columns["pixel"] = list(range(at, at + pixel_stats_size(pixel_scales)))
    return columns


class StackedMembers(nn.Module):
    """An ensemble of :func:`~sursmr.models.network.regression_mlp` members run as batched products.

    (B, in) → (M, B, 2), the members' outputs as ``torch.stack([member(x) for member in members])``
    gives them to float rounding (~1e-7): one product for every member's first layer and a batched
    product per later layer, instead of three small products, two GELUs and a sigmoid per member
    (measured ~3x fewer milliseconds for the 8 members of ``sursmr-v2-lite0`` on 6 rows, one CPU
    thread). A copy of the weights at construction, for inference (:meth:`StatsHead.stack_members`).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        layers = [[m for m in member.modules() if isinstance(m, nn.Linear)] for member in members]
        if not layers or any(len(linear) != 3 for linear in layers):
            raise ModelError("StackedMembers takes regression_mlp members (three linear layers each)")
        first, second, third = ([linear[i] for linear in layers] for i in range(3))
        self.members = len(layers)
        self.hidden = int(first[0].out_features)
        self.w1: Tensor
        self.b1: Tensor
        self.w2: Tensor
        self.b2: Tensor
        self.w3: Tensor
        self.b3: Tensor
        with torch.no_grad():
            self.register_buffer("w1", torch.cat([layer.weight for layer in first]), persistent=False)
            self.register_buffer("b1", torch.cat([layer.bias for layer in first]), persistent=False)
            self.register_buffer("w2", torch.stack([layer.weight.t() for layer in second]), persistent=False)
            self.register_buffer("b2", torch.stack([layer.bias for layer in second]).unsqueeze(1), persistent=False)
            self.register_buffer("w3", torch.stack([layer.weight.t() for layer in third]), persistent=False)
            self.register_buffer("b3", torch.stack([layer.bias for layer in third]).unsqueeze(1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.gelu(F.linear(x, self.w1, self.b1))  # (B, M · h1)
        hidden = hidden.view(x.shape[0], self.members, self.hidden).transpose(0, 1)  # (M, B, h1)
        hidden = F.gelu(torch.baddbmm(self.b2, hidden, self.w2))  # (M, B, h2)
        return torch.sigmoid(torch.baddbmm(self.b3, hidden, self.w3))  # (M, B, 2)


class StatsHead(nn.Module):
    """Pooled statistics → standardisation → mean of ``members`` 3-layer MLPs → (SUR, SMR) in [0, 1].

    ``channels``: the backbone stages' channel counts (empty when no backbone
    runs). ``streams``: the parts of the vector the members read
    (``NetConfig.stats_streams``). ``smr_streams``: when given and different,
    SMR comes from a second ensemble reading these parts instead (machines
    react to what ImageNet features encode, people to the colour and texture
    errors the pixel stream measures), and SUR from the first.
    The feature lists given to :meth:`pool` / :meth:`forward` hold the
    backbone stages followed by the network's input image in [0, 1].
    """

    def __init__(
        self,
        channels: list[int],
        pixel_scales: int,
        hidden: tuple[int, int],
        dropout: float,
        members: int,
        streams: Sequence[str] = STREAM_ORDER,
        smr_streams: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        from sursmr.models.network import regression_mlp

        self.pixel_scales = pixel_scales
        split = smr_streams is not None and set(smr_streams) != set(streams)
        union = set(streams) | set(smr_streams or ())
        self.streams = tuple(s for s in STREAM_ORDER if s in union)
        self.backbone_streams = tuple(s for s in self.streams if s != "pixel")
        self.size = (backbone_stats_size(channels, self.backbone_streams) if self.backbone_streams else 0) + (
            pixel_stats_size(pixel_scales) if "pixel" in self.streams else 0
        )
        layout = stream_columns(channels, self.streams, pixel_scales)

        def index(parts: Sequence[str]) -> Tensor:
            return torch.tensor(sorted(c for p in parts for c in layout[p]), dtype=torch.long)

        self.feature_mean: Tensor
        self.feature_std: Tensor
        self.sur_columns: Tensor
        self.smr_columns: Tensor
        self.register_buffer("feature_mean", torch.zeros(self.size))
        self.register_buffer("feature_std", torch.ones(self.size))
        self.register_buffer("sur_columns", index(streams), persistent=False)
        self.register_buffer("smr_columns", index(smr_streams or streams), persistent=False)
        self.split = split
        width = len(self.sur_columns)
        self.members = nn.ModuleList(regression_mlp(width, hidden, dropout) for _ in range(members))
        self.smr_members = nn.ModuleList(
            regression_mlp(len(self.smr_columns), hidden, dropout) for _ in range(members if split else 0)
        )
        self.stacked: nn.ModuleList | None = None

    def stack_members(self) -> None:
        """Run the ensembles as :class:`StackedMembers` from now on (inference: a copy of today's weights).

        The members stay as they are (and in the state dict); training them again needs a new head.
        """
        self.stacked = nn.ModuleList(
            StackedMembers(list(group)) for group in (self.members, self.smr_members) if len(group)
        ).to(self.feature_mean.device)

    def prepare_reference(self, reference: list[Tensor]) -> list[Tensor]:
        """The reference-only work of :meth:`pool` for feature list ``[stage_0, …, stage_k, image]``.

        Tensors with the reference batch first (so a caller can select or expand rows), done once per
        reference and reused for every candidate by :meth:`pool_prepared`.
        """
        parts: list[Tensor] = []
        if self.backbone_streams:
            for r in reference[:-1]:
                parts += prepare_backbone(r.float(), self.backbone_streams)
        if "pixel" in self.streams:
            parts += prepare_pixels(reference[-1].float(), self.pixel_scales)
        return parts

    def pool_prepared(self, prepared: list[Tensor], candidate: list[Tensor]) -> Tensor:
        """:meth:`pool` from :meth:`prepare_reference`'s tensors: batch 1 (shared by every candidate), or R
        with the candidates' batch a multiple of R (groups of the R references, see :func:`_blocks`)."""
        parts = []
        at = 0
        if self.backbone_streams:
            step = _backbone_parts(self.backbone_streams)
            for c in candidate[:-1]:
                parts.append(backbone_stats_prepared(prepared[at : at + step], c.float(), self.backbone_streams))
                at += step
        if "pixel" in self.streams:
            parts.append(pixel_stats_prepared(prepared[at:], candidate[-1].float(), self.pixel_scales))
        return torch.cat(parts, dim=1)

    def pool(self, reference: list[Tensor], candidate: list[Tensor]) -> Tensor:
        """(B, size) raw statistics of feature lists ``[stage_0, …, stage_k, image]`` (no parameters)."""
        return self.pool_prepared(self.prepare_reference(reference), candidate)

    @torch.no_grad()
    def set_standardisation(self, pooled: Tensor) -> None:
        """Standardise inputs with the mean and standard deviation of these (N, size) training vectors."""
        self.feature_mean.copy_(pooled.float().mean(dim=0))
        self.feature_std.copy_(pooled.float().std(dim=0).clamp_min(1e-4))

    def member_outputs(self, pooled: Tensor) -> Tensor:
        """(M, B, 2): every member's prediction from raw pooled vectors (B, size)."""
        x = ((pooled - self.feature_mean) / self.feature_std).clamp(-8, 8)
        sur_x = x[:, self.sur_columns]
        if self.stacked is not None:
            sur: Tensor = self.stacked[0](sur_x)
            if not self.split:
                return sur
            return torch.stack([sur[..., 0], self.stacked[1](x[:, self.smr_columns])[..., 1]], dim=2)
        if not self.split:
            return torch.stack([member(sur_x) for member in self.members])
        smr_x = x[:, self.smr_columns]
        return torch.stack(
            [
                torch.stack([a(sur_x)[:, 0], b(smr_x)[:, 1]], dim=1)
                for a, b in zip(self.members, self.smr_members, strict=True)
            ]
        )

    def forward_pooled(self, pooled: Tensor) -> Tensor:
        """(B, 2) = the members' mean prediction from raw pooled vectors (B, size)."""
        return self.member_outputs(pooled).mean(dim=0)

    def forward_prepared(self, prepared: list[Tensor], candidate: list[Tensor]) -> Tensor:
        """(B, 2) from :meth:`prepare_reference`'s tensors and the candidates' feature lists."""
        return self.forward_pooled(self.pool_prepared(prepared, candidate))

    def forward(self, reference: list[Tensor], candidate: list[Tensor]) -> Tensor:
        return self.forward_pooled(self.pool(reference, candidate))
