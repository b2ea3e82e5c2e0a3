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
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = build(args.crops, args.seed, args.work)
    rows, reiqa = evaluate(data["samples"])
    ridge = reiqa.pop("ridge")
    from sursmr.models.reiqa import QUALITY_WEIGHTS

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


if __name__ == "__main__":
    raise SystemExit(main())
