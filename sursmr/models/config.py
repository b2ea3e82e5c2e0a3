"""The frozen configuration of a SUR/SMR predictor network.

Every hyper-parameter of the network (paper §III-B) and of its input
pipeline lives here, so a model card can rebuild the exact architecture from
JSON without consulting the registry. Registered configurations are in
:mod:`sursmr.models.configs`; :func:`sursmr.models.create_model` applies
overrides with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sursmr_core.errors import InputError, ModelError

InputMode = Literal["resize224", "native"]
"""How an image of any size becomes network input.

``resize224``: the whole image is resized to ``input_size``×``input_size``
(224 in the paper, which scores the whole image, not patches).
``native``: no resizing; the image is cut into ``input_size``×``input_size``
tiles at native resolution (edges covered by overlapping the last tile,
images smaller than a tile padded by edge replication), every tile pair is
scored and the tile scores are aggregated with ``patch_aggregate``.
"""

Head = Literal["mixer", "pretrain", "stats"]
"""``mixer``: DFRL → MHAAP → MLP-Mixer → MLP (the fine-tuned network).
``pretrain``: pooled difference features → 3-layer MLP (the pre-training network).
``stats``: pooled backbone and opponent-colour pixel statistics → ensemble of 3-layer MLPs
(predictor v2, :mod:`sursmr.models.stats_head`)."""

StatsStream = Literal["channels", "distance", "pixel"]
"""Parts of the ``stats`` head's input vector (:mod:`sursmr.models.stats_head`).

``channels``: per backbone stage and channel, spatial means of F0 − Fq, |F0 − Fq| and
|F0 − Fq| relative to |F0|. ``distance``: per stage, the mean and worst-decile regional
mean of the unit-feature distance map (2 numbers). ``pixel``: opponent-colour pixel
statistics at ``pixel_scales`` scales. A config with neither ``channels`` nor
``distance`` runs no backbone at all.
"""

PatchAggregate = Literal["mean", "worst_quarter"]
"""How ``native`` mode turns tile scores into one image score.

``mean``: mean over tiles of each output.
``worst_quarter``: mean of the lowest quarter of tiles (at least one), per
output; conservative, for content where one bad region decides.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class NetConfig:
    """Architecture and input pipeline of one SUR/SMR network.

    Attributes:
        name: registry name of this configuration.
        backbone: name in :data:`sursmr.models.backbones.BACKBONES`.
        stages: backbone feature indices (timm ``out_indices``) whose
            difference features are used; the paper uses all four CAFormer stages.
        head: ``mixer`` (paper Fig. 2) or ``pretrain`` (pre-training network).
        input_mode: see :data:`InputMode`.
        input_size: side in pixels of the square network input (resize target or tile).
        patch_aggregate: see :data:`PatchAggregate` (``native`` mode only).
        mean, std: per-channel RGB normalisation applied inside the network to
            inputs in [0, 1] (ImageNet statistics for ImageNet backbones).
        dfrl_kernel: kernel size of the three DFRL convolutions (odd).
        fuse_size: (H, W) every stage's difference features are interpolated to
            (bilinear) before MHAAP. The paper does not state it; 28×28 (the
            stride-8 grid at 224²) is the size at which the paper config counts
            22.95 GFLOPs against the paper's 22.56 (14×14: 20.48, 56×56: 32.81;
            multiply-add = 2 FLOPs, see benchmarks/model_complexity.py).
        fuse_antialias: when a stage map is larger than ``fuse_size``, average
            it down (antialiased bilinear) instead of sampling it (plain
            bilinear, the literal reading of the paper). Plain sampling keeps
            about 1 in 16 stride-4 positions at 14×14, so most of the
            fine-grained coding differences never reach MHAAP.
        feature_norm: scale each stage's feature vector at every position to
            unit length over channels (times √C, to keep activations near 1)
            before the difference, as LPIPS does. The difference then
            measures a change of feature *direction*, relative to the local
            feature energy of the original: strong texture masks a
            distortion of the same absolute size. The paper differences raw
            features (False).
        queries: Y, the number of learnable MHAAP queries (paper: 7×7 = 49).
        heads: h, attention heads (paper: 8); must divide the summed channels C.
        embed_dim: Z, width of the pooled tokens (paper: 512).
        attn_qo_proj: also project the queries and attention output (as
            ``nn.MultiheadAttention`` does); the paper describes only K/V projections.
        mixer_layers: number of MLP-Mixer layers (paper: 4).
        mixer_token_hidden: hidden width of the token-mixing MLPs.
        mixer_channel_hidden: hidden width of the channel-mixing MLPs.
        head_hidden: the two hidden widths of the final 3-layer MLP (both heads).
        dropout: dropout before each layer of that MLP while training (0: none, the paper).
        pixel_scales: dyadic scales of the ``stats`` head's opponent-colour pixel stream.
        members: MLPs in the ``stats`` head's ensemble (their outputs are averaged).
        stats_streams: the parts of the ``stats`` head's input (see :data:`StatsStream`).
        smr_streams: the parts SMR is predicted from, when they differ from
            ``stats_streams`` (then SUR comes from ``stats_streams`` and SMR from a second
            ensemble on these); ``None``: one ensemble predicts both.
        description: one line for ``sursmr models``.
    """

    name: str
    backbone: str
    stages: tuple[int, ...]
    head: Head = "mixer"
    input_mode: InputMode = "resize224"
    input_size: int = 224
    patch_aggregate: PatchAggregate = "mean"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    dfrl_kernel: int = 3
    fuse_size: tuple[int, int] = (28, 28)
    fuse_antialias: bool = False
    feature_norm: bool = False
    queries: int = 49
    heads: int = 8
    embed_dim: int = 512
    attn_qo_proj: bool = False
    mixer_layers: int = 4
    mixer_token_hidden: int = 256
    mixer_channel_hidden: int = 2048
    head_hidden: tuple[int, int] = (512, 256)
    dropout: float = 0.0
    pixel_scales: int = 5
    members: int = 1
    stats_streams: tuple[StatsStream, ...] = ("channels", "distance", "pixel")
    smr_streams: tuple[StatsStream, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check_choice("head", self.head, Head)
        _check_choice("input_mode", self.input_mode, InputMode)
        _check_choice("patch_aggregate", self.patch_aggregate, PatchAggregate)
        for key in ("stats_streams", "smr_streams"):
            value = getattr(self, key)
            if value is None and key == "smr_streams":
                continue
            streams = set(value)
            if not streams or not streams <= set(get_args(StatsStream)) or len(streams) != len(value):
                allowed = ", ".join(get_args(StatsStream))
                raise InputError(f"{self.name}: {key} must be distinct names among {allowed}")
        if not self.stages or len(set(self.stages)) != len(self.stages) or min(self.stages) < 0:
            raise InputError(f"{self.name}: stages must be distinct non-negative indices, got {self.stages}")
        positive = {
            "input_size": self.input_size,
            "queries": self.queries,
            "heads": self.heads,
            "embed_dim": self.embed_dim,
            "mixer_token_hidden": self.mixer_token_hidden,
            "mixer_channel_hidden": self.mixer_channel_hidden,
            "pixel_scales": self.pixel_scales,
            "members": self.members,
        }
        for key, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        if self.input_size < 32:
            raise InputError(f"{self.name}: input_size must be at least 32 (the backbones downsample 32×)")
        if self.mixer_layers < 0:
            raise InputError(f"{self.name}: mixer_layers must be ≥ 0, got {self.mixer_layers}")
        if self.dfrl_kernel < 1 or self.dfrl_kernel % 2 == 0:
            raise InputError(f"{self.name}: dfrl_kernel must be odd and positive, got {self.dfrl_kernel}")
        if len(self.fuse_size) != 2 or min(self.fuse_size) < 1:
            raise InputError(f"{self.name}: fuse_size must be (H, W) with positive sides, got {self.fuse_size}")
        if len(self.head_hidden) != 2 or min(self.head_hidden) < 1:
            raise InputError(f"{self.name}: head_hidden must be two positive widths, got {self.head_hidden}")
        if not 0 <= self.dropout < 1:
            raise InputError(f"{self.name}: dropout must lie in [0, 1), got {self.dropout}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise InputError(f"{self.name}: mean and std need 3 values each, std > 0")

    @property
    def uses_backbone(self) -> bool:
        """Whether the network runs its backbone (a ``stats`` head may read pixels only)."""
        streams = set(self.stats_streams) | set(self.smr_streams or ())
        return self.head != "stats" or bool({"channels", "distance"} & streams)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (tuples become lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ModelError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"model config has fields this version of sursmr does not know: {', '.join(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise ModelError(f"model config is incomplete or malformed: {exc}") from None
        except InputError as exc:
            raise ModelError(f"model config is invalid: {exc}") from None

    def for_inference(
        self,
        input_mode: InputMode | None = None,
        input_size: int | None = None,
        patch_aggregate: PatchAggregate | None = None,
    ) -> NetConfig:
        """A copy with another input pipeline; the weights do not depend on it (the head fuses to ``fuse_size``).

        A network trained on small crops resized to 224² can score large
        images as native-resolution 224² tiles, so it sees coding artefacts
        at the scale it was trained on instead of shrunk away.
        """
        changes: dict[str, Any] = {}
        if input_mode is not None:
            changes["input_mode"] = input_mode
        if input_size is not None:
            changes["input_size"] = input_size
        if patch_aggregate is not None:
            changes["patch_aggregate"] = patch_aggregate
        return dataclasses.replace(self, **changes) if changes else self

    def with_overrides(self, **overrides: Any) -> NetConfig:
        """A copy with some fields replaced; unknown field names raise :class:`InputError`."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(
                f"{self.name}: unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(self, **values)


def _check_choice(field: str, value: object, choices: Any) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        raise InputError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
