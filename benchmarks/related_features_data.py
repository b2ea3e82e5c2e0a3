"""Related-features benchmark: constants and building the feature samples (synthetic or dataset)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
