"""Related-features benchmark: grouped-fold ridge evaluation, held-out split with CIs, markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.related_features_data import (
    ALPHA,
    FOLDS,
    LEVELS,
)
from benchmarks.run_info import run_footer


def grouped_folds(groups: Sequence[str], folds: int) -> list[np.ndarray]:
    """Fold index per sample: sources dealt round robin in sorted order."""
    names = sorted(set(groups))
    fold_of = {name: i % folds for i, name in enumerate(names)}
    ids = np.array([fold_of[g] for g in groups])
    return [ids == k for k in range(folds)]


def cv_mae(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], alpha: float, offset: np.ndarray | None = None
) -> float:
    """Grouped-CV MAE of ridge(x) (+ ``offset``, e.g. the predictor's output: then ridge fits the residual)."""
    from training.related.ridge import Ridge

    base = np.zeros_like(y) if offset is None else offset
    errors = np.full_like(y, np.nan)
    if len(set(groups)) < 2:
        return float("nan")  # no source left to validate on
    for held in grouped_folds(groups, FOLDS):
        if not held.any() or held.all():
            continue
        ridge = Ridge.fit(x[~held], (y - base)[~held], alpha=alpha)
        errors[held] = np.abs(np.clip(base[held] + ridge.predict(x[held]), 0.0, 1.0) - y[held])
    return float(np.nanmean(errors))


def evaluate(samples: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from training.related.ridge import Ridge

    rows: list[dict[str, Any]] = []
    distorted = [s for s in samples if s["codec"] != "none"]

    def matrix(subset: Sequence[dict[str, Any]], keys: Sequence[str]) -> np.ndarray:
        parts = []
        for key in keys:
            column = np.array([s[key] for s in subset], dtype=np.float64)
            parts.append(column[:, None] if column.ndim == 1 else column)
        return np.concatenate(parts, axis=1)

    base_keys = ["psnr", "ssim", "content", "content_diff"]
    for target, stream, extra_keys in (
        ("sur", "Re-IQA quality encoder (ours, MoCo)", ["quality", "quality_diff"]),
        ("smr", "ML-CLIPSim on EfficientNet-Lite0 (6 parts)", ["clipsim"]),
    ):
        subset = [s for s in distorted if s[target] is not None]
        y = np.array([s[target] for s in subset], dtype=np.float64)
        groups = [s["source_id"] for s in subset]
        predicted = np.array([s[f"pred_{target}"] for s in subset], dtype=np.float64)
        extra = matrix(subset, extra_keys)
        alpha_extra = ALPHA["wide"] if extra.shape[1] > 50 else ALPHA["small"]
        base_mae = cv_mae(matrix(subset, base_keys), y, groups, ALPHA["wide"])
        with_mae = cv_mae(matrix(subset, base_keys + extra_keys), y, groups, ALPHA["wide"])
        pred_mae = float(np.mean(np.abs(predicted - y)))
        corrected = cv_mae(extra, y, groups, alpha_extra, offset=predicted)
        for model, without, with_ in (
            ("ridge on base features", base_mae, with_mae),
            ("shipped predictor", pred_mae, corrected),
        ):
            rows.append(
                {
                    "target": target,
                    "model": model,
                    "stream": stream,
                    "samples": len(subset),
                    "sources": len(set(groups)),
                    "mae_without": round(without, 4),
                    "mae_with": round(with_, 4),
                    "helps": bool(with_ < without) if np.isfinite(with_) and np.isfinite(without) else None,
                }
            )
    # the re_iqa regressor: no-reference [quality, content] of the distorted image (originals: SUR 1)
    y_all = np.array([s["sur"] for s in samples], dtype=np.float64)
    x_all = matrix(samples, ["reiqa_input"])
    groups_all = [s["source_id"] for s in samples]
    constant = float(np.mean(np.abs(y_all - y_all.mean())))
    reiqa_mae = cv_mae(x_all, y_all, groups_all, ALPHA["wide"])
    content_only = cv_mae(x_all[:, 1024:], y_all, groups_all, ALPHA["wide"])
    quality_only = cv_mae(x_all[:, :1024], y_all, groups_all, ALPHA["wide"])
    ridge = Ridge.fit(x_all, y_all, alpha=ALPHA["wide"])
    reiqa = {
        "samples": len(samples),
        "sources": len(set(groups_all)),
        "alpha": ALPHA["wide"],
        "cv_mae": round(reiqa_mae, 4),
        "cv_mae_content_only": round(content_only, 4),
        "cv_mae_quality_only": round(quality_only, 4),
        "mae_constant_mean": round(constant, 4),
        "ridge": ridge,
    }
    return rows, reiqa


STREAMS = {
    "quality": (
        "Re-IQA quality encoder (ours, MoCo): features + difference from the reference's",
        ["quality", "quality_diff"],
    ),
    "clipsim": ("ML-CLIPSim on EfficientNet-Lite0 (substitute for CLIP): 4 layers, local, global, score", ["clipsim"]),
}
HELD_OUT = ("val", "test")


def _matrix(subset: Sequence[dict[str, Any]], keys: Sequence[str]) -> np.ndarray:
    parts = []
    for key in keys:
        column = np.array([s[key] for s in subset], dtype=np.float64)
        parts.append(column[:, None] if column.ndim == 1 else column)
    return np.concatenate(parts, axis=1)


def _paired_ci(
    with_err: np.ndarray, without_err: np.ndarray, groups: Sequence[str], seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap CI (resampling held-out source photos) of MAE(with) − MAE(without)."""
    names = sorted(set(groups))
    index = {g: i for i, g in enumerate(names)}
    g = np.array([index[x] for x in groups])
    diff_sum = np.bincount(g, weights=with_err - without_err, minlength=len(names))
    count = np.bincount(g, minlength=len(names)).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(BOOTSTRAP, len(names)))
    boot = diff_sum[draws].sum(axis=1) / count[draws].sum(axis=1)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


BOOTSTRAP = 2000


def evaluate_split(samples: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit on the dataset's train split, measure on its held-out photos (val + test splits): MAE without/with each
    stream, for a ridge on base features and for the shipped predictor plus a ridge correction of its residual."""
    from training.related.ridge import Ridge

    base_keys = ["psnr", "ssim", "content", "content_diff"]
    distorted = [s for s in samples if s["codec"] != "none"]
    rows: list[dict[str, Any]] = []
    for target in ("sur", "smr"):
        train = [s for s in distorted if s["split"] == "train" and s[target] is not None]
        held = [s for s in distorted if s["split"] in HELD_OUT and s[target] is not None]
        for stream, (what, keys) in STREAMS.items():
            row: dict[str, Any] = {
                "target": target,
                "stream": stream,
                "what": what,
                "train_samples": len(train),
                "train_sources": len({s["source_id"] for s in train}),
                "held_samples": len(held),
                "held_sources": len({s["source_id"] for s in held}),
            }
            if len(train) < 10 or len({s["source_id"] for s in held}) < 2:
                rows.append({**row, "models": []})
                continue
            y_train = np.array([s[target] for s in train])
            y_held = np.array([s[target] for s in held])
            groups = [s["source_id"] for s in held]
            models = []
            predicted_train = np.array([s[f"pred_{target}"] for s in train])
            predicted_held = np.array([s[f"pred_{target}"] for s in held])
            extra_train, extra_held = _matrix(train, keys), _matrix(held, keys)
            alpha_extra = ALPHA["wide"] if extra_train.shape[1] > 50 else ALPHA["small"]
            for model, without, with_ in (
                (
                    "ridge on base features",
                    Ridge.fit(_matrix(train, base_keys), y_train, ALPHA["wide"]).predict(_matrix(held, base_keys)),
                    Ridge.fit(_matrix(train, base_keys + keys), y_train, ALPHA["wide"]).predict(
                        _matrix(held, base_keys + keys)
                    ),
                ),
                (
                    "shipped predictor (+ ridge on its residual)",
                    predicted_held,
                    predicted_held + Ridge.fit(extra_train, y_train - predicted_train, alpha_extra).predict(extra_held),
                ),
            ):
                err_without = np.abs(np.clip(without, 0, 1) - y_held)
                err_with = np.abs(np.clip(with_, 0, 1) - y_held)
                lo, hi = _paired_ci(err_with, err_without, groups)
                models.append(
                    {
                        "model": model,
                        "mae_without": round(float(err_without.mean()), 4),
                        "mae_with": round(float(err_with.mean()), 4),
                        "delta_ci95": [round(lo, 4), round(hi, 4)],
                        "helps": bool(hi < 0),
                    }
                )
            rows.append({**row, "models": models})

    # the re_iqa regressor: no-reference [quality, content] of the image (originals: SUR 1)
    def reiqa_x(subset: Sequence[dict[str, Any]]) -> np.ndarray:
        return _matrix(subset, ["quality", "content"])

    train_all = [s for s in samples if s["split"] == "train"]
    held_all = [s for s in samples if s["split"] in HELD_OUT]
    y_train = np.array([s["sur"] for s in train_all])
    y_held = np.array([s["sur"] for s in held_all])
    x_train, x_held = reiqa_x(train_all), reiqa_x(held_all)
    width = len(train_all[0]["quality"])

    def held_mae(columns: slice) -> float:
        ridge = Ridge.fit(x_train[:, columns], y_train, ALPHA["wide"])
        return float(np.mean(np.abs(np.clip(ridge.predict(x_held[:, columns]), 0, 1) - y_held)))

    ridge = Ridge.fit(x_train, y_train, alpha=ALPHA["wide"])
    reiqa = {
        "train_samples": len(train_all),
        "train_sources": len({s["source_id"] for s in train_all}),
        "held_samples": len(held_all),
        "held_sources": len({s["source_id"] for s in held_all}),
        "alpha": ALPHA["wide"],
        "held_mae": round(held_mae(slice(None)), 4),
        "held_mae_content_only": round(held_mae(slice(width, None)), 4),
        "held_mae_quality_only": round(held_mae(slice(0, width)), 4),
        "held_mae_train_mean": round(float(np.mean(np.abs(y_held - y_train.mean()))), 4),
        "ridge": ridge,
    }
    return rows, reiqa


def markdown_split(result: dict[str, Any]) -> str:
    per_source = result["crops_per_source"]
    crops = "all crops" if per_source is None else f"the first {per_source} finished crop(s) per photo, for CPU time"
    lines = [
        "# Related systems as extra features (dataset v2 items, proxy labels)",
        "",
        f"Finished items of `{result['dataset']}` at the time of the run: {result['items']} items "
        f"(crop × codec; {crops}; "
        f"up to {result['max_levels']} levels each, spread over the item's grid). Fit on the "
        f"dataset's train split, measured on its held-out photos (splits {' + '.join(HELD_OUT)}; by photo as "
        "dataset.json says). SUR = SUR proxy (`sur_jnd_proxy`). SMR = SMR proxy of the stored per-machine "
        f"verdicts **recomputed at K = 2** applicable machines (the recipe's K = {result['recipe_k']} leaves "
        f"{result['smr_recipe_k_labelled']} labelled samples). MAE with 95 % bootstrap CI of the change "
        "(resampling held-out photos); 'helps' only when the whole CI is below 0. A stream that does not help "
        "stays out of the default model (registered and tested); a 'yes' is a candidate feature for the predictor, "
        "not wired into the default model by this benchmark. The shipped predictor's own training photos may "
        "overlap these items' photos.",
        "",
        "| target | new stream | model | train samples (photos) | held-out samples (photos) | MAE without | "
        "MAE with | change, 95 % CI | helps |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for row in result["rows"]:
        counts = f"{row['train_samples']} ({row['train_sources']}) | {row['held_samples']} ({row['held_sources']})"
        if not row["models"]:
            lines.append(f"| {row['target'].upper()} | {row['what']} | n/a (too few samples) | {counts} | | | | n/a |")
        for m in row["models"]:
            lo, hi = m["delta_ci95"]
            lines.append(
                f"| {row['target'].upper()} | {row['what']} | {m['model']} | {counts} | {m['mae_without']:.4f} | "
                f"{m['mae_with']:.4f} | {lo:+.4f} … {hi:+.4f} | {'yes' if m['helps'] else 'no'} |"
            )
    r = result["re_iqa"]
    lines += [
        "",
        f"`re_iqa` (no-reference, ridge α={r['alpha']:g} on [quality, content] features; originals included with "
        f"SUR 1), fitted on {r['train_samples']} train images ({r['train_sources']} photos): held-out MAE "
        f"{r['held_mae']:.4f} on {r['held_samples']} images ({r['held_sources']} photos); content features only "
        f"{r['held_mae_content_only']:.4f}, quality features only {r['held_mae_quality_only']:.4f}, predicting the "
        f"train mean {r['held_mae_train_mean']:.4f}.",
        "",
        f"Quality encoder: {result['encoder']}.",
        "",
        run_footer(result, note="items already in the --work cache are not recomputed"),
    ]
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Related systems as extra features (proxy labels, grouped CV over source photos)",
        "",
        f"{result['crops']} crops × {sum(len(v) for v in LEVELS.values())} codec levels ({result['levels']}); "
        f"SUR = SUR proxy (sur_jnd_proxy), SMR = SMR proxy of the jury ({', '.join(result['jury'])}). "
        f"Validation MAE, {FOLDS}-fold CV grouped by source photo. 'helps' = lower MAE with the stream; "
        "a stream that does not help is not in the default model.",
        "",
        "| target | model | new stream | samples | sources | MAE without | MAE with | helps |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['target'].upper()} | {row['model']} | {row['stream']} | {row['samples']} | {row['sources']} | "
            f"{row['mae_without']:.4f} | {row['mae_with']:.4f} | "
            f"{'n/a' if row['helps'] is None else 'yes' if row['helps'] else 'no'} |"
        )
    r = result["re_iqa"]
    lines += [
        "",
        f"`re_iqa` (no-reference, ridge α={r['alpha']:g} on [quality 1024, content 1280]; originals included "
        f"with SUR 1): CV MAE {r['cv_mae']:.4f} on {r['samples']} images from {r['sources']} sources "
        f"(content features only {r['cv_mae_content_only']:.4f}, quality features only "
        f"{r['cv_mae_quality_only']:.4f}, predicting the mean {r['mae_constant_mean']:.4f}).",
        "",
        f"Quality encoder: {result['encoder']}.",
        "",
        run_footer(result),
    ]
    return "\n".join(lines) + "\n"
