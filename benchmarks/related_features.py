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

import torch

from benchmarks.related_features_data import ALPHA as ALPHA
from benchmarks.related_features_data import FOLDS as FOLDS
from benchmarks.related_features_data import HERE as HERE
from benchmarks.related_features_data import LEVELS as LEVELS
from benchmarks.related_features_data import SLOW_MACHINES as SLOW_MACHINES
from benchmarks.related_features_data import _spread_levels as _spread_levels
from benchmarks.related_features_data import build as build
from benchmarks.related_features_data import build_from_dataset as build_from_dataset
from benchmarks.related_features_data import dataset_items as dataset_items
from benchmarks.related_features_eval import BOOTSTRAP as BOOTSTRAP
from benchmarks.related_features_eval import HELD_OUT as HELD_OUT
from benchmarks.related_features_eval import STREAMS as STREAMS
from benchmarks.related_features_eval import cv_mae as cv_mae
from benchmarks.related_features_eval import evaluate as evaluate
from benchmarks.related_features_eval import evaluate_split as evaluate_split
from benchmarks.related_features_eval import grouped_folds as grouped_folds
from benchmarks.related_features_eval import markdown as markdown
from benchmarks.related_features_eval import markdown_split as markdown_split
from benchmarks.run_info import host_text


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
