"""What scoring a sample of a 768×512 photo's six 256² tiles (``max_tiles``) costs in accuracy, against every tile.

The predictor scores a 768×512 photo as six 256² tiles; ``max_tiles`` = k < 6 scores the
:func:`sursmr.predictor.sample_tiles` sample of k (ranked by luma activity, one per stratum), so a
candidate costs about k/6 of the time. Two checks, with the shipped model (or ``--model``):

* **labelled mosaics**: the split's 256² crops (one tile each) placed six at a time in a 2×3 mosaic
  (crops m..m+5 of a codec in name order, m over every crop) at each stored level. A mosaic's label is
  the mean of its six crops' proxy labels (the predictor's ``mean`` aggregate), its bytes their sum;
  each tile's prediction is its crop's own. Per k: MAE against the labels with every tile and with
  the sample, MAE between the two, how often a level's pass/fail at the targets changes, and the
  level a search would keep (the cheapest the predictions pass): same level as with every tile, label
  hit rate, bytes. SMR rows use only the crops with an SMR label at every level. Six photos per mosaic
  are harder on a sample than one photo's tiles.
* **photos**: the split's source photos resized and centre-cropped to 768×512, JPEG at six qualities:
  the sample against every tile (no labels exist at this size).

Labels are proxies (``sur_jnd_proxy``, the dataset's SMR jury).

Usage::

    python benchmarks/tile_sampling.py --data /root/sursmr-data/test1-quiet
    python benchmarks/tile_sampling.py --data DIR --keep 5,4 --threads 2

Writes ``benchmarks/results/tile_sampling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results"
ORIGINS = [(top, left) for top in (0, 256) for left in (0, 256, 512)]
JPEG_QUALITIES = (15, 35, 55, 70, 80, 90)


def crop_predictions(predictor: Any, data: Path, split: str) -> list[dict[str, Any]]:
    """Every square 256² item of the split: its reference, per-level predictions, labels and bytes."""
    from training.datasets.torch_dataset import decode_png
    from training.evaluate import read_records

    out = []
    for record in read_records(data, split):
        if (record["height"], record["width"]) != (256, 256):
            continue
        arrays = np.load(data / record["npz"])
        reference = decode_png(arrays["reference_png"])
        decoded = [decode_png(arrays[f"decoded_png_{i}"]) for i in range(len(record["levels"]))]
        smr = record["labels"].get("smr")
        out.append(
            {
                "crop": record["crop_id"],
                "codec": record["codec"],
                "reference": reference,
                "pred": np.array([(p.sur, p.smr) for p in predictor.predict(reference, decoded)]),
                "sur": np.array(record["labels"]["sur_jnd_proxy"], dtype=float),
                "smr": None if smr is None or any(v is None for v in smr) else np.array(smr, dtype=float),
                "bytes": np.array(record["bytes"], dtype=float),
            }
        )
    return out


def mosaics(crops: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """Per mosaic of six consecutive crops: every-tile and sampled predictions, mean labels, summed bytes."""
    from sursmr.predictor import sample_tiles

    rows = []
    for m in range(len(crops)):
        group = [crops[(m + j) % len(crops)] for j in range(6)]
        image = np.zeros((512, 768, 3), np.uint8)
        for (top, left), crop in zip(ORIGINS, group, strict=True):
            image[top : top + 256, left : left + 256] = crop["reference"]
        picked = [ORIGINS.index(o) for o in sample_tiles(image, ORIGINS, 256, keep)]
        pred = np.stack([c["pred"] for c in group])
        rows.append(
            {
                "every": pred.mean(axis=0),
                "sample": pred[picked].mean(axis=0),
                "sur": np.mean([c["sur"] for c in group], axis=0),
                "smr": None if any(c["smr"] is None for c in group) else np.mean([c["smr"] for c in group], axis=0),
                "bytes": np.sum([c["bytes"] for c in group], axis=0),
            }
        )
    return rows


def kept_level(row: dict[str, Any], which: str, sur: float, smr: float, smr_hit: bool) -> tuple[int, float, bool]:
    """(level index, bytes, label hit) a search keeps: the fewest bytes the predictions pass, else the most.

    The hit is on the SUR label, and on the SMR label too with ``smr_hit``.
    """
    pred = row[which]
    passing = (pred[:, 0] >= sur) & (pred[:, 1] >= smr)
    index = int(np.argmin(np.where(passing, row["bytes"], np.inf))) if passing.any() else int(np.argmax(row["bytes"]))
    hit = row["sur"][index] >= sur and (not smr_hit or row["smr"][index] >= smr)
    return index, float(row["bytes"][index]), bool(hit)


def mosaic_summary(rows: list[dict[str, Any]], column: int, sur: float, smr: float) -> dict[str, Any]:
    """Accuracy of every tile and of the sample on these mosaics (``column`` 0: SUR against labels, 1: SMR)."""
    name = ("sur", "smr")[column]
    every = np.concatenate([r["every"] for r in rows])
    sample = np.concatenate([r["sample"] for r in rows])
    labels = np.concatenate([r[name] for r in rows])
    flips = ((every[:, 0] >= sur) & (every[:, 1] >= smr)) != ((sample[:, 0] >= sur) & (sample[:, 1] >= smr))
    kept_every = [kept_level(r, "every", sur, smr, column == 1) for r in rows]
    kept_sample = [kept_level(r, "sample", sur, smr, column == 1) for r in rows]
    same = statistics.fmean(a[0] == b[0] for a, b in zip(kept_every, kept_sample, strict=True))
    return {
        "mosaics": len(rows),
        "pairs": len(every),
        "mae_vs_labels_every_tile": round(float(np.abs(every[:, column] - labels).mean()), 4),
        "mae_vs_labels_sample": round(float(np.abs(sample[:, column] - labels).mean()), 4),
        "sur_mae_sample_vs_every_tile": round(float(np.abs(sample[:, 0] - every[:, 0]).mean()), 4),
        "smr_mae_sample_vs_every_tile": round(float(np.abs(sample[:, 1] - every[:, 1]).mean()), 4),
        "pass_fail_changed": round(float(flips.mean()), 4),
        "same_level_kept": round(same, 3),
        "hit_rate_every_tile": round(statistics.fmean(k[2] for k in kept_every), 3),
        "hit_rate_sample": round(statistics.fmean(k[2] for k in kept_sample), 3),
        "bytes_sample_over_every_tile": round(sum(k[1] for k in kept_sample) / sum(k[1] for k in kept_every), 4),
    }


def photo_768x512(path: str) -> np.ndarray:
    """``path`` resized to cover 768×512 (Lanczos) and centre-cropped to it."""
    from sursmr_core.imaging import load_image

    rgb = load_image(path)
    height, width = rgb.shape[:2]
    scale = max(768 / width, 512 / height)
    size = (max(768, round(width * scale)), max(512, round(height * scale)))
    big = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    top, left = (big.shape[0] - 512) // 2, (big.shape[1] - 768) // 2
    return np.ascontiguousarray(big[top : top + 512, left : left + 768])


def photo_check(predictor: Any, paths: list[str], keeps: list[int], sur: float, smr: float) -> dict[str, Any]:
    """Sample against every tile on 768×512 photos at JPEG ``JPEG_QUALITIES`` (no labels)."""
    import codec_adapters

    jpeg = codec_adapters.create("jpeg")
    diffs: dict[int, list[np.ndarray]] = {k: [] for k in keeps}
    flips: dict[int, list[np.ndarray]] = {k: [] for k in keeps}
    for path in paths:
        rgb = photo_768x512(path)
        decoded = [jpeg.decode(jpeg.encode(rgb, q)) for q in JPEG_QUALITIES]
        predictor.max_tiles = None
        every = np.array([(p.sur, p.smr) for p in predictor.predict(rgb, decoded)])
        for keep in keeps:
            predictor.max_tiles = keep
            sample = np.array([(p.sur, p.smr) for p in predictor.predict(rgb, decoded)])
            diffs[keep].append(np.abs(sample - every))
            passing = [(p[:, 0] >= sur) & (p[:, 1] >= smr) for p in (every, sample)]
            flips[keep].append(passing[0] != passing[1])
    out = {}
    for keep in keeps:
        d, f = np.concatenate(diffs[keep]), np.concatenate(flips[keep])
        out[str(keep)] = {
            "pairs": len(d),
            "sur_mae_sample_vs_every_tile": round(float(d[:, 0].mean()), 4),
            "smr_mae_sample_vs_every_tile": round(float(d[:, 1].mean()), 4),
            "sur_max_sample_vs_every_tile": round(float(d[:, 0].max()), 4),
            "smr_max_sample_vs_every_tile": round(float(d[:, 1].max()), 4),
            "pass_fail_changed": round(float(f.mean()), 4),
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    sur, smr = result["targets"]["sur"], result["targets"]["smr"]
    lines = [
        "# Tile sampling at 768×512: accuracy of scoring k of the six 256² tiles",
        "",
        f"Model `{result['model']}`, `{result['data']}` ({result['split']} split, proxy labels); "
        f"targets SUR ≥ {sur}, SMR ≥ {smr}. A candidate costs about k/6 of the predictor time of every tile. "
        "Generated by `benchmarks/tile_sampling.py`.",
        "",
        "## Labelled mosaics (six 256² crops of different photos in a 2×3 mosaic)",
        "",
        "MAE against the mosaic's label (the mean of its crops' labels) with every tile → with the sample; "
        "sample against every tile; pass/fail: share of (mosaic, level) pairs whose pass/fail at the targets "
        "changes; kept level: the cheapest level the predictions pass, as a search would keep it.",
        "",
        "| k | target | codec | mosaics | MAE vs labels (every tile → sample) | SUR / SMR MAE sample vs every tile "
        "| pass/fail changed | same level kept | label hit rate (every tile → sample) | bytes sample / every tile |",
        "|---:|---|---|---:|---|---|---:|---:|---|---:|",
    ]
    for keep, by_target in result["mosaics"].items():
        for target, by_codec in by_target.items():
            for codec, r in by_codec.items():
                lines.append(
                    f"| {keep} | {target.upper()} | {codec} | {r['mosaics']} | "
                    f"{r['mae_vs_labels_every_tile']:.4f} → {r['mae_vs_labels_sample']:.4f} | "
                    f"{r['sur_mae_sample_vs_every_tile']:.4f} / {r['smr_mae_sample_vs_every_tile']:.4f} | "
                    f"{r['pass_fail_changed']:.1%} | {r['same_level_kept']:.0%} | "
                    f"{r['hit_rate_every_tile']:.0%} → {r['hit_rate_sample']:.0%} | "
                    f"{r['bytes_sample_over_every_tile']:.3f} |"
                )
    lines += [
        "",
        "SUR rows: mosaics of every square crop (label hit on the SUR label only); SMR rows: mosaics of the crops "
        "with an SMR label at every level (label hit on both). Both search on both predicted targets.",
        "",
        f"## Photos ({result['photos']} test photos resized and cropped to 768×512, JPEG q {list(JPEG_QUALITIES)})",
        "",
        "| k | pairs | SUR MAE / max vs every tile | SMR MAE / max vs every tile | pass/fail changed |",
        "|---:|---:|---|---|---:|",
    ]
    for keep, r in result["photo_check"].items():
        sur_text = f"{r['sur_mae_sample_vs_every_tile']:.4f} / {r['sur_max_sample_vs_every_tile']:.4f}"
        smr_text = f"{r['smr_mae_sample_vs_every_tile']:.4f} / {r['smr_max_sample_vs_every_tile']:.4f}"
        lines.append(f"| {keep} | {r['pairs']} | {sur_text} | {smr_text} | {r['pass_fail_changed']:.1%} |")
    lines += ["", f"Run: {result['seconds']} s on {result['host']}, {result['threads']} torch threads.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a built dataset with 256² crops")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="weights name or path [default: shipped]")
    parser.add_argument("--keep", default="5,4,3", help="tile counts to sample (of 6)")
    parser.add_argument("--target-sur", type=float, default=0.75)
    parser.add_argument("--target-smr", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-photos", action="store_true", help="skip the 768×512 photo check")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import sursmr.predictor

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    keeps = [int(k) for k in args.keep.split(",")]
    sur, smr = args.target_sur, args.target_smr
    predictor = sursmr.predictor.load(args.model, "cpu")
    crops = crop_predictions(predictor, args.data, args.split)
    result: dict[str, Any] = {
        "model": predictor.name,
        "data": str(args.data),
        "split": args.split,
        "targets": {"sur": sur, "smr": smr},
        "crops": len(crops),
        "mosaics": {},
    }
    for keep in keeps:
        by_target: dict[str, dict[str, Any]] = {"sur": {}, "smr": {}}
        every_sur: list[dict[str, Any]] = []
        every_smr: list[dict[str, Any]] = []
        for codec in sorted({c["codec"] for c in crops}):
            own = sorted((c for c in crops if c["codec"] == codec), key=lambda c: c["crop"])
            rows = mosaics(own, keep)
            labelled = mosaics([c for c in own if c["smr"] is not None], keep)
            every_sur += rows
            by_target["sur"][codec] = mosaic_summary(rows, 0, sur, smr)
            if labelled:
                every_smr += labelled
                by_target["smr"][codec] = mosaic_summary(labelled, 1, sur, smr)
        by_target["sur"]["all"] = mosaic_summary(every_sur, 0, sur, smr)
        if every_smr:
            by_target["smr"]["all"] = mosaic_summary(every_smr, 1, sur, smr)
        result["mosaics"][str(keep)] = by_target
    paths = []
    if not args.no_photos:
        dataset = json.loads((args.data / "dataset.json").read_text())
        wanted = {c["crop"] for c in crops}
        paths = sorted({c["path"] for c in dataset["crops"] if c["crop_id"] in wanted and Path(c["path"]).is_file()})
        result["photo_check"] = photo_check(predictor, paths, keeps, sur, smr)
    else:
        result["photo_check"] = {}
    result.update(
        photos=len(paths),
        seconds=round(time.perf_counter() - start, 1),
        host=platform.machine(),
        threads=torch.get_num_threads(),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tile_sampling.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "tile_sampling.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
