"""Do the related systems' features help? ML-CLIPSim for SMR, the Re-IQA quality encoder for SUR.

A small labelled set is made directly with the labelling functions: crops
of offline photos (skimage, opencv-doc) × codec levels (JPEG, BPG, VVC),
each labelled with the SUR PROXY (``sur_jnd_proxy``, konjnd calibration)
and the SMR PROXY of our machine jury (OCR machines left out for cost;
K = 4 applicable machines, else no SMR label). Features are cached; ridge
regressors (:mod:`training.related.ridge`) are evaluated by grouped
cross-validation over SOURCE photos (no photo in both train and validation).

Rows ("with" vs "without" a feature stream):

* ``ridge`` on base features (PSNR, SSIM, EfficientNet-Lite0 content
  embedding of the distorted image and its difference from the reference's)
  vs base + the new stream (SMR: the 6 ML-CLIPSim-effnet parts; SUR: the
  quality encoder's features of the distorted image and their difference
  from the reference's);
* the shipped predictor ``sursmr-effnet-lite0`` alone vs the predictor plus a
  ridge correction (fitted on its residual) from the new stream.

Also fits and writes the ``re_iqa`` regressor (``sursmr/weights/reiqa-ridge.json``:
ridge on [quality, content] features of the distorted image, originals
included with SUR 1) and reports its own cross-validated MAE.

Example::

    nice -n 5 python benchmarks/related_features.py --crops 24
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.run_info import host_text, run_footer

HERE = Path(__file__).resolve().parent
LEVELS = {"jpeg": (10, 30, 70), "bpg": (30, 42), "vvc": (32, 44)}
SLOW_MACHINES = ("rapidocr", "tesseract")
FOLDS = 5
ALPHA = {"small": 1.0, "wide": 300.0}


def build(crops: int, seed: int, work: Path) -> dict[str, Any]:
    """Labels and features of every (crop, level) sample; cached per crop under ``work``."""
    from benchmarks.pcmp import plan
    from sursmr.fidelity import psnr, ssim
    from sursmr.predictor import load
    from training.datasets.sources import render_crop
    from training.labels.jnd_proxy import jnd_sur_for_images
    from training.labels.smr import analyse_all, judge_all, smr_from_verdicts, zoo, zoo_status
    from training.metrics import METRICS
    from training.metrics.re_iqa import ReIqaFeatures
    from training.related.distortions import apply

    jury = [n for n, reason in zoo_status().items() if reason is None and not n.startswith(SLOW_MACHINES)]
    machines = zoo(jury)
    clipsim = METRICS.get("ml_clipsim_effnet")()
    features = ReIqaFeatures()
    predictor = load("sursmr-effnet-lite0", device="cpu")
    work.mkdir(parents=True, exist_ok=True)
    samples: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, crop in enumerate(plan(crops, 256, seed)):
        cache = work / f"{crop.crop_id}.json"
        if cache.is_file():
            samples.extend(json.loads(cache.read_text()))
            continue
        rgb = render_crop(crop)
        ref_f = features(rgb)
        original = analyse_all(machines, rgb)
        rows: list[dict[str, Any]] = [
            {
                "crop_id": crop.crop_id,
                "source_id": crop.source_id,
                "codec": "none",
                "level": None,
                "sur": 1.0,
                "smr": None,
                "reiqa_input": np.concatenate([ref_f["quality"], ref_f["content"]]).tolist(),
            }
        ]
        for codec, levels in LEVELS.items():
            versions = [apply(rgb, codec, level) for level in levels]
            predictions = predictor.predict(rgb, versions)
            for level, version, prediction in zip(levels, versions, predictions, strict=True):
                dist_f = features(version)
                verdicts = judge_all(machines, original, analyse_all(machines, version))
                rows.append(
                    {
                        "crop_id": crop.crop_id,
                        "source_id": crop.source_id,
                        "codec": codec,
                        "level": level,
                        "sur": jnd_sur_for_images(rgb, version),
                        "smr": smr_from_verdicts(verdicts),
                        "pred_sur": prediction.sur,
                        "pred_smr": prediction.smr,
                        "psnr": psnr(rgb, version),
                        "ssim": ssim(rgb, version),
                        "clipsim": [v for k, v in sorted(clipsim.parts(rgb, version).items())],
                        "content": dist_f["content"].tolist(),
                        "content_diff": (ref_f["content"] - dist_f["content"]).tolist(),
                        "quality": dist_f["quality"].tolist(),
                        "quality_diff": (ref_f["quality"] - dist_f["quality"]).tolist(),
                        "reiqa_input": np.concatenate([dist_f["quality"], dist_f["content"]]).tolist(),
                    }
                )
        cache.write_text(json.dumps(rows))
        samples.extend(rows)
        print(f"[{i + 1}/{crops}] {crop.crop_id} {time.perf_counter() - start:.0f}s", file=sys.stderr)
    return {"samples": samples, "jury": jury}


def _png(data: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data.tobytes())) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _spread_levels(count: int, most: int) -> list[int]:
    """Up to ``most`` level indices spread evenly over ``count`` (all of them when ``count <= most``)."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def dataset_items(root: Path, crops_per_source: int | None = None) -> list[Path]:
    """Finished items of a dataset build (their JSON is written last, after the arrays); with
    ``crops_per_source``, only the items of each source photo's first (sorted) finished crops."""
    items = sorted(p for p in (root / "items").glob("*/*.json") if p.with_suffix(".npz").is_file())
    if crops_per_source is None:
        return items
    header = json.loads((root / "dataset.json").read_text())
    source_of = {c["crop_id"]: c["source_id"] for c in header["crops"]}
    kept: dict[str, list[str]] = {}
    for path in items:
        crop_id = path.parent.name
        crops = kept.setdefault(source_of.get(crop_id, crop_id), [])
        if crop_id not in crops and len(crops) < crops_per_source:
            crops.append(crop_id)
    allowed = {c for crops in kept.values() for c in crops}
    return [p for p in items if p.parent.name in allowed]


def build_from_dataset(root: Path, work: Path, max_levels: int, crops_per_source: int | None = None) -> dict[str, Any]:
    """Samples from a dataset build's finished items (read only): labels as stored, SMR recomputed at K = 2 from
    the stored per-machine verdicts (and at the recipe's K), features of the decoded versions.

    Two caches per item under ``work``: encoder-independent parts (labels, PSNR/SSIM, content, ML-CLIPSim parts,
    the shipped predictor's output) and the quality encoder's features, keyed by its weights' hash."""
    import hashlib

    from sursmr.fidelity import psnr, ssim
    from sursmr.models.reiqa import QUALITY_WEIGHTS, quality_encoder
    from sursmr.predictor import load
    from training.labels.smr import smr_from_verdicts
    from training.metrics.ml_clipsim import EffnetEncoder, aggregate, similarity_parts
    from training.metrics.piq_metrics import to_tensor

    header = json.loads((root / "dataset.json").read_text())
    recipe_k = int(header["recipe"].get("min_applicable_machines", 4))
    weights_key = hashlib.sha256(QUALITY_WEIGHTS.read_bytes()).hexdigest()[:12]
    quality = quality_encoder()  # now, so that the features match the hash even if the file is replaced later
    encoder: EffnetEncoder | None = None  # built with the predictor, on the first uncached item
    predictor = None
    work.mkdir(parents=True, exist_ok=True)
    samples: list[dict[str, Any]] = []
    start = time.perf_counter()
    items = dataset_items(root, crops_per_source)
    for n, path in enumerate(items):
        item = json.loads(path.read_text())
        base_cache = work / f"{item['item_id']}-base-{max_levels}.json"
        quality_cache = work / f"{item['item_id']}-quality-{max_levels}-{weights_key}.json"
        if base_cache.is_file() and quality_cache.is_file():
            rows = json.loads(base_cache.read_text())
            for row, extra in zip(rows, json.loads(quality_cache.read_text()), strict=True):
                row.update(extra)
            samples.extend(rows)
            continue
        with np.load(path.with_suffix(".npz")) as arrays:
            reference = _png(arrays["reference_png"])
            picked = _spread_levels(len(item["levels"]), max_levels)
            versions = [_png(arrays[f"decoded_png_{i}"]) for i in picked]
        if not base_cache.is_file():
            if predictor is None or encoder is None:
                predictor = load("sursmr-effnet-lite0", device="cpu")
                encoder = EffnetEncoder()
            labels = item["labels"]
            verdicts = labels.get("machine_verdicts", {})
            predictions = predictor.predict(reference, versions)
            # one EfficientNet-Lite0 pass per image gives both the content feature (its pooled embedding) and
            # the ML-CLIPSim-on-EfficientNet parts (same encoder and aggregation as ml_clipsim_effnet)
            with torch.inference_mode():
                ref_layers, ref_embedding = encoder.encode(to_tensor(reference))
                layers, embeddings = encoder.encode(torch.cat([to_tensor(v) for v in versions]))
                count = len(versions)
                parts = similarity_parts(
                    ([t.expand(count, -1, -1, -1) for t in ref_layers], ref_embedding.expand(count, -1)),
                    (list(layers), embeddings),
                )
                parts["score"] = aggregate(parts)
            ref_content = ref_embedding[0].numpy().astype(np.float64)
            rows = [
                {
                    "crop_id": item["crop_id"],
                    "source_id": item["source_id"],
                    "split": item["split"],
                    "codec": "none",
                    "level": None,
                    "sur": 1.0,
                    "smr": None,
                    "smr_recipe_k": None,
                    "content": ref_content.tolist(),
                }
            ]
            for j, (i, version, prediction) in enumerate(zip(picked, versions, predictions, strict=True)):
                at_level = {m: v[i] for m, v in verdicts.items()}
                content = embeddings[j].numpy().astype(np.float64)
                rows.append(
                    {
                        "crop_id": item["crop_id"],
                        "source_id": item["source_id"],
                        "split": item["split"],
                        "codec": item["codec"],
                        "level": item["levels"][i],
                        "sur": labels["sur_jnd_proxy"][i],
                        "smr": smr_from_verdicts(at_level, min_applicable=2),
                        "smr_recipe_k": smr_from_verdicts(at_level, min_applicable=recipe_k),
                        "pred_sur": prediction.sur,
                        "pred_smr": prediction.smr,
                        "psnr": psnr(reference, version),
                        "ssim": ssim(reference, version),
                        "clipsim": [float(v[j]) for _, v in sorted(parts.items())],
                        "content": content.tolist(),
                        "content_diff": (ref_content - content).tolist(),
                    }
                )
            base_cache.write_text(json.dumps(rows))
        rows = json.loads(base_cache.read_text())
        with torch.inference_mode():
            feats = [quality(to_tensor(image))[0].numpy().astype(np.float64) for image in [reference, *versions]]
        extras = [{"quality": feat.tolist(), "quality_diff": (feats[0] - feat).tolist()} for feat in feats]
        quality_cache.write_text(json.dumps(extras))
        for row, extra in zip(rows, extras, strict=True):
            row.update(extra)
        samples.extend(rows)
        print(f"[{n + 1}/{len(items)}] {item['item_id']} {time.perf_counter() - start:.0f}s", file=sys.stderr)
    return {"samples": samples, "recipe_k": recipe_k, "items": len(items)}


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=24)
    parser.add_argument("--seed", type=int, default=61)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sursmr-related-features"))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--ridge-out", type=Path, default=None, help="write the re_iqa regressor here")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="use a dataset build's finished items (read only) instead of crops"
    )
    parser.add_argument("--max-levels", type=int, default=12, help="with --dataset: levels per item, spread")
    parser.add_argument(
        "--crops-per-source", type=int, default=None, help="with --dataset: only each photo's first N finished crops"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    from sursmr.models.reiqa import QUALITY_WEIGHTS

    if args.dataset is not None:
        return _main_dataset(args, argv, start)
    data = build(args.crops, args.seed, args.work)
    rows, reiqa = evaluate(data["samples"])
    ridge = reiqa.pop("ridge")

    card = json.loads(QUALITY_WEIGHTS.with_suffix(".json").read_text())
    encoder = (
        f"`{card['command']}`: {card['steps']} MoCo steps in {card['seconds']:.0f} s "
        f"({card['hardware']['torch_threads']} torch thread, {card['hardware']['note']}), "
        f"{card['data']['photos']} photos × {len(card['data']['classes'])} distortion classes, "
        f"{card['bytes'] / 1e6:.2f} MB float16"
    )
    command = "python benchmarks/related_features.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {
        "what": "validation MAE with vs without the related systems' feature streams (proxy labels)",
        "crops": args.crops,
        "levels": {k: list(v) for k, v in LEVELS.items()},
        "jury": data["jury"],
        "rows": rows,
        "re_iqa": reiqa,
        "encoder": encoder,
        "command": command,
        "wall_s": round(time.perf_counter() - start, 1),
        "host": host_text(torch_threads=1),
    }
    if args.ridge_out is not None:
        ridge.save(
            args.ridge_out,
            what="re_iqa regressor: ridge on [reiqa_quality 1024-d, EfficientNet-Lite0 1280-d] of the distorted "
            "image -> SUR proxy (sur_jnd_proxy)",
            fitted_on=f"{reiqa['samples']} images ({args.crops} crops x codec levels + originals), {command}",
            cv=reiqa,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "related_features.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "related_features.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def _encoder_line() -> str:
    from sursmr.models.reiqa import QUALITY_WEIGHTS

    card = json.loads(QUALITY_WEIGHTS.with_suffix(".json").read_text())
    retrieval = card.get("class_retrieval_1nn")
    line = (
        f"`{card['command']}`: {card['steps']} MoCo steps in {card['seconds']:.0f} s "
        f"({card['hardware']['torch_threads']} torch thread, {card['hardware']['note']}), "
        f"{card['data']['photos']} photos × {len(card['data']['classes'])} distortion classes, "
        f"{card['bytes'] / 1e6:.2f} MB float16"
    )
    stationary = card.get("stationary_loss")
    curve = card.get("loss_curve") or []
    if stationary:
        line += (
            f"; InfoNCE of the network against itself on fresh views {stationary['before']:.4f} before → "
            f"{stationary['after']:.4f} after training"
        )
    if curve and isinstance(curve[0], dict):
        line += (
            f"; running loss (mean of {curve[0]['step']} steps) {curve[0]['loss']:.4f} at the start → "
            f"{curve[-1]['loss']:.4f} up to step {curve[-1]['step']}"
        )
    if retrieval:
        line += (
            f"; distortion-class 1-NN accuracy of its features {retrieval['before']:.3f} before → "
            f"{retrieval['after']:.3f} after training (chance {retrieval['chance']:.3f})"
        )
    return line


def _main_dataset(args: argparse.Namespace, argv: Sequence[str] | None, start: float) -> int:
    data = build_from_dataset(args.dataset, args.work, args.max_levels, args.crops_per_source)
    rows, reiqa = evaluate_split(data["samples"])
    ridge = reiqa.pop("ridge")
    command = "python benchmarks/related_features.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {
        "what": "held-out MAE with vs without the related systems' feature streams (dataset items, proxy labels)",
        "dataset": str(args.dataset),
        "items": data["items"],
        "max_levels": args.max_levels,
        "crops_per_source": args.crops_per_source,
        "recipe_k": data["recipe_k"],
        "smr_recipe_k_labelled": sum(
            1 for s in data["samples"] if s["codec"] != "none" and s["smr_recipe_k"] is not None
        ),
        "rows": rows,
        "re_iqa": reiqa,
        "encoder": _encoder_line(),
        "command": command,
        "wall_s": round(time.perf_counter() - start, 1),
        "host": host_text(torch_threads=1),
    }
    if args.ridge_out is not None:
        ridge.save(
            args.ridge_out,
            what="re_iqa regressor: ridge on [reiqa_quality 1024-d, EfficientNet-Lite0 1280-d] of the image "
            "-> SUR proxy (sur_jnd_proxy)",
            fitted_on=f"{reiqa['train_samples']} images of the train split of {args.dataset} "
            f"({data['items']} finished items), {command}",
            held_out=reiqa,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "related_features.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "related_features.md").write_text(markdown_split(result))
    print(markdown_split(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
