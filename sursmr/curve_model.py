"""Per-image curve model: where each codec's SUR and SMR curves cross fixed ratios, guessed from the original alone.

The ``predicted`` search (:mod:`sursmr.rate_control`) starts from a prior
curve. A population curve (:func:`sursmr.curves.card_prior`) puts every image
at the same place on the level axis, so its first guess lands a few levels off
on textured or very smooth photos. This model looks at the original first: a
handful of cheap pixel statistics (:func:`image_features`: gradient energy at
three scales, the spread of 8×8 block contrast, flat-block shares, noise,
brightness, colourfulness) and, per codec and ratio, one ridge regression per
*threshold* that predicts the grid index where the image's predicted curve
first reaches that threshold (:func:`crossings`). The card's population curve
is moved along the grid by the median gap between those crossings and its own
(:func:`shift_prior`); that is the prior of :meth:`sursmr.predictor.Predictor.curve`.

It learns the *predictor's* curves (model predictions over every grid level of
training-split crops, no proxy labels; ``sursmr-train curve-model``), because
the search verifies every probe with the predictor: the question it answers is
"where will the predictor say the boundary is", not "where is it". A wrong
guess costs probes, never a wrong answer.

Card format (key :data:`CURVE_MODEL_KEY`)::

    "curve_model": {
      "features": ["grad_log_mean", ...], "mean": [...], "scale": [...],
      "codecs": {"jpeg": {"levels": [20, 23, ...],          # worst to best: index 0 is levels[0]
                          "sur": {"thresholds": [0.1, ...], "intercept": [...], "coef": [[...], ...]},
                          "smr": {...}}, ...},
      ...  # provenance and cross-validation figures, free-form
    }
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import ModelError
from sursmr_core.imaging import RGBImage

CURVE_MODEL_KEY = "curve_model"
"""Model card key holding the per-image curve model."""

THRESHOLDS: dict[str, tuple[float, ...]] = {
    "sur": (0.1, 0.3, 0.5, 0.75, 0.9, 0.97),
    "smr": (0.5, 0.7, 0.8, 0.9, 0.95),
}
"""Ratios whose crossings the model predicts, per output."""

FEATURE_TILE = 256
"""Side of the tiles the features are measured on."""

FEATURE_TILES = 16
"""At most this many tiles (evenly spread) per image, so a 64 MP photo costs what a 4 MP one does."""

_FloatArray = npt.NDArray[np.float32]


def _tile_origins(height: int, width: int, side: int, limit: int) -> list[tuple[int, int]]:
    rows = max(1, height // side)
    cols = max(1, width // side)
    origins = [
        (min(r * side, max(0, height - side)), min(c * side, max(0, width - side)))
        for r in range(rows)
        for c in range(cols)
    ]
    if len(origins) > limit:
        picks = np.linspace(0, len(origins) - 1, limit).round().astype(int)
        origins = [origins[i] for i in sorted(set(picks.tolist()))]
    return origins


def _pool2(x: _FloatArray) -> _FloatArray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return x
    y = x[:h, :w]
    return np.asarray((y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2]) * 0.25, dtype=np.float32)


def _gradient(x: _FloatArray) -> _FloatArray:
    gx = np.abs(np.diff(x, axis=1))[:-1, :] if x.shape[0] > 1 else np.abs(np.diff(x, axis=1))
    gy = np.abs(np.diff(x, axis=0))[:, :-1] if x.shape[1] > 1 else np.abs(np.diff(x, axis=0))
    if gx.size == 0 or gy.size == 0:
        return np.zeros((1,), dtype=np.float32)
    return np.asarray(gx + gy, dtype=np.float32).ravel()


def _block_std(x: _FloatArray, block: int = 8) -> _FloatArray:
    h, w = (x.shape[0] // block) * block, (x.shape[1] // block) * block
    if h == 0 or w == 0:
        return np.asarray([x.std()], dtype=np.float32)
    blocks = x[:h, :w].reshape(h // block, block, w // block, block)
    return np.asarray(blocks.std(axis=(1, 3)), dtype=np.float32).ravel()


FEATURES: tuple[str, ...] = (
    "grad_log_mean",
    "grad_log_p25",
    "grad_log_p50",
    "grad_log_p90",
    "grad2_log_mean",
    "grad4_log_mean",
    "block_log_p10",
    "block_log_p50",
    "block_log_p90",
    "flat_share_1",
    "flat_share_4",
    "noise_log",
    "luma_mean",
    "luma_std",
    "dark_share",
    "bright_share",
    "chroma_std",
    "chroma_grad_log_mean",
)
"""Names of :func:`image_features`, in order."""


def image_features(rgb: RGBImage) -> dict[str, float]:
    """Cheap statistics of an original that say where its quality curves rise (pure numpy, ~10 ms per 256² tile).

    Measured on up to :data:`FEATURE_TILES` tiles of :data:`FEATURE_TILE` px
    (the whole image when smaller), pooled over tiles.
    """
    height, width = rgb.shape[:2]
    side = min(FEATURE_TILE, height, width)
    grads: list[_FloatArray] = []
    grads2: list[_FloatArray] = []
    grads4: list[_FloatArray] = []
    blocks: list[_FloatArray] = []
    noise: list[_FloatArray] = []
    lumas: list[_FloatArray] = []
    chroma: list[_FloatArray] = []
    chroma_grads: list[_FloatArray] = []
    for top, left in _tile_origins(height, width, side, FEATURE_TILES):
        tile = rgb[top : top + side, left : left + side].astype(np.float32) * np.float32(1.0 / 255.0)
        r, g, b = tile[..., 0], tile[..., 1], tile[..., 2]
        luma = np.asarray(0.299 * r + 0.587 * g + 0.114 * b, dtype=np.float32)
        red_green = np.asarray(r - g, dtype=np.float32)
        blue_yellow = np.asarray(b - 0.5 * (r + g), dtype=np.float32)
        grads.append(_gradient(luma))
        half = _pool2(luma)
        grads2.append(_gradient(half))
        grads4.append(_gradient(_pool2(half)))
        blocks.append(_block_std(luma))
        if luma.shape[0] > 2 and luma.shape[1] > 2:
            lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
            noise.append(np.abs(lap).ravel())
        lumas.append(luma.ravel())
        chroma.append(np.stack([red_green.ravel(), blue_yellow.ravel()]))
        chroma_grads.append(_gradient(red_green) + _gradient(blue_yellow))
    eps = 1e-4
    grad = np.concatenate(grads)
    block = np.concatenate(blocks)
    luma_all = np.concatenate(lumas)
    chroma_all = np.concatenate(chroma, axis=1)
    log_grad = np.log(grad + eps)
    log_block = np.log(block + eps)
    values = {
        "grad_log_mean": math.log(float(grad.mean()) + eps),
        "grad_log_p25": float(np.percentile(log_grad, 25)),
        "grad_log_p50": float(np.percentile(log_grad, 50)),
        "grad_log_p90": float(np.percentile(log_grad, 90)),
        "grad2_log_mean": math.log(float(np.concatenate(grads2).mean()) + eps),
        "grad4_log_mean": math.log(float(np.concatenate(grads4).mean()) + eps),
        "block_log_p10": float(np.percentile(log_block, 10)),
        "block_log_p50": float(np.percentile(log_block, 50)),
        "block_log_p90": float(np.percentile(log_block, 90)),
        "flat_share_1": float((block < 1.0 / 255.0).mean()),
        "flat_share_4": float((block < 4.0 / 255.0).mean()),
        "noise_log": math.log(float(np.median(np.concatenate(noise))) + eps) if noise else math.log(eps),
        "luma_mean": float(luma_all.mean()),
        "luma_std": float(luma_all.std()),
        "dark_share": float((luma_all < 0.05).mean()),
        "bright_share": float((luma_all > 0.95).mean()),
        "chroma_std": float(chroma_all.std(axis=1).mean()),
        "chroma_grad_log_mean": math.log(float(np.concatenate(chroma_grads).mean()) + eps),
    }
    return {name: values[name] for name in FEATURES}


def crossings(values: Sequence[float], indices: Sequence[float], thresholds: Sequence[float]) -> list[float]:
    """Where a curve sampled at ``indices`` (ascending, worst to best) first reaches each threshold.

    The curve is made non-decreasing (running maximum) and interpolated
    linearly between samples. A threshold already met at the first sample
    crosses there; one never met crosses one step past the last sample
    (censored: "beyond the grid").
    """
    if len(values) != len(indices) or not values:
        raise ValueError("crossings needs one value per index, at least one")
    running = np.maximum.accumulate(np.asarray(values, dtype=np.float64))
    xs = np.asarray(indices, dtype=np.float64)
    step = float(xs[-1] - xs[-2]) if len(xs) > 1 else 1.0
    out: list[float] = []
    for t in thresholds:
        if running[0] >= t:
            out.append(float(xs[0]))
            continue
        above = np.nonzero(running >= t)[0]
        if not len(above):
            out.append(float(xs[-1] + step))
            continue
        k = int(above[0])
        lo, hi = running[k - 1], running[k]
        out.append(float(xs[k - 1] + (xs[k] - xs[k - 1]) * (t - lo) / (hi - lo)))
    return out


def shift_prior(
    population: Mapping[int, tuple[float, float]],
    order: Sequence[int],
    predicted: Mapping[str, Sequence[tuple[float, float]]],
) -> dict[int, tuple[float, float]]:
    """The population curve moved along the grid onto one image: ``{level: (sur, smr)}`` over ``order``.

    ``order``: the grid's levels worst to best (those the population has are
    used); ``predicted``: per output, ``(crossing index, threshold)`` pairs
    for the image. Each output's curve moves by the median, over the
    thresholds the population crosses inside the grid, of (the image's
    crossing − the population's); the population's shape is kept, which
    anchors later probes better than a curve drawn through noisy crossings
    (replayed searches on held-out crops: fewer probes).
    """
    levels = [level for level in order if level in population]
    if len(levels) < 2:
        raise ModelError("the population curve has fewer than two levels of the curve model's grid")
    xs = [float(i) for i in range(len(levels))]
    moved: dict[str, list[float]] = {}
    for column, output in enumerate(("sur", "smr")):
        values = [population[level][column] for level in levels]
        deltas = []
        for crossing, threshold in predicted[output]:
            at = crossings(values, xs, [threshold])[0]
            if at <= xs[-1]:
                deltas.append(crossing - at)
        delta = float(np.median(deltas)) if deltas else 0.0
        moved[output] = [float(np.interp(x - delta, xs, values)) for x in xs]
    return {level: (moved["sur"][i], moved["smr"][i]) for i, level in enumerate(levels)}


@dataclass(frozen=True)
class _Ridge:
    thresholds: tuple[float, ...]
    intercept: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]  # (thresholds, features)


@dataclass(frozen=True)
class CurveModel:
    """Ridge regressions from :func:`image_features` to per-threshold crossings, per codec and output."""

    features: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    codecs: Mapping[str, tuple[tuple[int, ...], Mapping[str, _Ridge]]]

    @classmethod
    def from_section(cls, section: Mapping[str, Any], where: str) -> CurveModel:
        """Parse the card section; :class:`ModelError` (re-export the card) when it is malformed."""
        try:
            features = tuple(str(f) for f in section["features"])
            unknown = [f for f in features if f not in FEATURES]
            if unknown:
                raise ModelError(f"{where}: unknown features {unknown}; this sursmr is older than the model card")
            mean = np.asarray(section["mean"], dtype=np.float64)
            scale = np.asarray(section["scale"], dtype=np.float64)
            codecs: dict[str, tuple[tuple[int, ...], Mapping[str, _Ridge]]] = {}
            for codec, entry in section["codecs"].items():
                levels = tuple(int(level) for level in entry["levels"])
                ridges = {}
                for output in ("sur", "smr"):
                    part = entry[output]
                    ridge = _Ridge(
                        tuple(float(t) for t in part["thresholds"]),
                        np.asarray(part["intercept"], dtype=np.float64),
                        np.asarray(part["coef"], dtype=np.float64),
                    )
                    if ridge.coef.shape != (len(ridge.thresholds), len(features)) or ridge.intercept.shape != (
                        len(ridge.thresholds),
                    ):
                        raise ModelError(f"{where}: {codec}.{output} has coefficients of the wrong shape")
                    ridges[output] = ridge
                if len(levels) < 2:
                    raise ModelError(f"{where}: {codec} needs at least two levels")
                codecs[str(codec)] = (levels, ridges)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(
                f"{where}: malformed {CURVE_MODEL_KEY} section ({exc!r}); export the model card again"
            ) from None
        if mean.shape != (len(features),) or scale.shape != (len(features),) or not np.all(scale > 0):
            raise ModelError(f"{where}: feature mean/scale do not match the {len(features)} features")
        return cls(features, mean, scale, codecs)

    def standardise(self, features: Mapping[str, float]) -> npt.NDArray[np.float64]:
        row = np.asarray([features[name] for name in self.features], dtype=np.float64)
        return np.asarray((row - self.mean) / self.scale, dtype=np.float64)

    def predicted_crossings(self, z: npt.NDArray[np.float64], codec: str) -> dict[str, list[tuple[float, float]]]:
        """``{output: [(crossing index, threshold), ...]}`` for one standardised feature row."""
        levels, ridges = self.codecs[codec]
        top = len(levels) - 1
        out: dict[str, list[tuple[float, float]]] = {}
        for output, ridge in ridges.items():
            raw = ridge.intercept + ridge.coef @ z
            out[output] = [
                (float(min(top + 1.0, max(-1.0, c))), t) for c, t in zip(raw.tolist(), ridge.thresholds, strict=True)
            ]
        return out

    def prior(
        self, features: Mapping[str, float], codec: str, population: Mapping[int, tuple[float, float]] | None
    ) -> dict[int, tuple[float, float]] | None:
        """The ``population`` curve of ``codec`` moved onto an original with ``features``; None: nothing to move."""
        if codec not in self.codecs or not population:
            return None
        levels = self.codecs[codec][0]
        return shift_prior(population, levels, self.predicted_crossings(self.standardise(features), codec))


def curve_model(extra: Mapping[str, Any], where: str) -> CurveModel | None:
    """The card's curve model (``extra``: the card's free-form fields), or None when it has none."""
    section = extra.get(CURVE_MODEL_KEY)
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ModelError(f"{where}: {CURVE_MODEL_KEY} must be an object")
    return CurveModel.from_section(section, where)


__all__ = [
    "CURVE_MODEL_KEY",
    "FEATURES",
    "THRESHOLDS",
    "CurveModel",
    "crossings",
    "curve_model",
    "image_features",
    "shift_prior",
]
