"""PCMP-style pairs from our photos: which metric agrees with our machine jury at matched PSNR?

After ML-CLIPSim's PCMP (Ding et al. 2026): versions of one crop distorted
in different ways (JPEG, BPG, VVC, Gaussian blur, Gaussian noise) at the
SAME PSNR (bisection on each codec's level / each σ, kept when within
``--tolerance`` dB of the crop's target), labelled by the votes of our
machine jury (:mod:`training.machines`): a machine votes on a crop only when
its task applies to the original (the SMR rule of :mod:`training.labels.smr`);
of two versions the jury prefers the one that more applicable machines
still judge "unchanged" (satisfied); ties are dropped. The jury is a PROXY
of the paper's model population.

For every metric the 2AFC agreement is the share of jury-decided pairs on
which the metric prefers the same version (a metric tie counts ½), with a
95 % bootstrap CI resampling crops (pairs of one crop move together).
Because the PSNRs are matched, PSNR itself sits near 50 % by construction.

Writes ``results/pcmp.json`` and ``results/pcmp.md``. Per-crop work is
cached under ``--work`` so an interrupted run resumes.

Example::

    nice -n 5 python benchmarks/pcmp.py --crops 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.run_info import host_text, run_footer
from sursmr_core.imaging import RGBImage

HERE = Path(__file__).resolve().parent
KINDS = ("jpeg", "bpg", "vvc", "blur", "noise")
SLOW_MACHINES = ("rapidocr", "tesseract")  # OCR: ~2–3 s per image each; machines named so are left out by default
BOOTSTRAP = 2000


def plan(count: int, size: int, seed: int) -> list[Any]:
    """``count`` crops spread over the offline photos (round robin over sources), deterministic."""
    from training.datasets.sources import gather_sources, plan_crops

    photos = gather_sources(["skimage", "opencv-doc"])
    crops = plan_crops(photos, [(size, size)], [1.0, 0.5], crops_per_source=4, seed=seed)
    crops = [c for c in crops if (c.height, c.width) == (size, size)]
    by_source: dict[str, list[Any]] = {}
    for crop in crops:
        by_source.setdefault(crop.source_id, []).append(crop)
    picked: list[Any] = []
    while len(picked) < count and any(by_source.values()):
        for source in sorted(by_source):
            if by_source[source] and len(picked) < count:
                picked.append(by_source[source].pop(0))
    return picked


def scorers(with_predictor: bool) -> dict[str, tuple[Callable[[RGBImage, Sequence[RGBImage]], list[float]], str]]:
    """metric name → (score all versions of one reference, what it is); higher is better for every entry."""
    from training.labels.jnd_proxy import jnd_sur_for_images
    from training.metrics import METRICS

    out: dict[str, tuple[Callable[[RGBImage, Sequence[RGBImage]], list[float]], str]] = {}
    for name in ("psnr", "ssim", "ms_ssim", "ml_clipsim_effnet", "ml_clipsim", "re_iqa"):
        cls = METRICS.get(name)
        status = cls.availability()
        if not status.available:
            out[name] = (lambda r, vs: [], f"unavailable: {status.reason}")
            continue
        metric = cls()
        sign = -1.0 if cls.lower_is_better else 1.0

        def run(r: RGBImage, vs: Sequence[RGBImage], m: Any = metric, s: float = sign) -> list[float]:
            return [s * m.score(r, v) for v in vs]

        encoder = cls.encoder_name()
        out[name] = (run, (cls.description or name) + (f" [encoder here: {encoder}]" if encoder else ""))
    out["sur_proxy"] = (
        lambda r, vs: [jnd_sur_for_images(r, v) for v in vs],
        "SUR proxy (sur_jnd_proxy, konjnd calibration)",
    )
    if with_predictor:
        from sursmr.predictor import load

        predictor = load("sursmr-effnet-lite0", device="cpu")
        out["predictor_smr"] = (
            lambda r, vs: [p.smr for p in predictor.predict(r, list(vs))],
            "SMR predicted by the shipped model sursmr-effnet-lite0",
        )
        out["predictor_sur"] = (
            lambda r, vs: [p.sur for p in predictor.predict(r, list(vs))],
            "SUR predicted by the shipped model sursmr-effnet-lite0",
        )
    return out


def process_crop(
    crop: Any, target: float, tolerance: float, machines: Sequence[Any], score_fns: dict[str, Any]
) -> dict[str, Any]:
    from training.datasets.sources import render_crop, stable_seed
    from training.labels.smr import analyse_all, judge_all
    from training.related.distortions import match_psnr

    rgb = render_crop(crop)
    versions = []
    for kind in KINDS:
        found = match_psnr(rgb, kind, target, seed=stable_seed(crop.crop_id, kind) % 2**32)
        if abs(found.psnr - target) <= tolerance:
            versions.append(found)
    original = analyse_all(machines, rgb)
    rows = []
    for version in versions:
        verdicts = judge_all(machines, original, analyse_all(machines, version.image))
        votes = [v for v in verdicts.values() if v is not None]
        rows.append(
            {
                "kind": version.kind,
                "param": version.param,
                "psnr": round(version.psnr, 3),
                "applicable": len(votes),
                "satisfied": int(sum(bool(v) for v in votes)),
                "verdicts": verdicts,
            }
        )
    images = [v.image for v in versions]
    scores = {name: fn(rgb, images) if images else [] for name, (fn, _) in score_fns.items()}
    for i, row in enumerate(rows):
        row["scores"] = {name: float(values[i]) for name, values in scores.items() if values}
    return {"crop_id": crop.crop_id, "source_id": crop.source_id, "target_psnr": target, "versions": rows}


def rescore(crop: Any, record: dict[str, Any], names: Sequence[str], score_fns: dict[str, Any]) -> None:
    """Recompute ``names``' scores of a cached record in place (the versions are rebuilt from kind, param and
    the seed ``process_crop`` used; the jury's verdicts, the expensive part, are kept)."""
    from training.datasets.sources import render_crop, stable_seed
    from training.related.distortions import apply

    if not record["versions"]:
        return
    rgb = render_crop(crop)
    images = [
        apply(rgb, v["kind"], v["param"], seed=stable_seed(crop.crop_id, v["kind"]) % 2**32) for v in record["versions"]
    ]
    for name in names:
        values = score_fns[name][0](rgb, images)
        for version, value in zip(record["versions"], values, strict=True):
            version["scores"].pop(name, None)
            if values:
                version["scores"][name] = float(value)


def pairs_of(record: dict[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Jury-decided pairs of one crop: (+1 if the first version is preferred else −1, first, second)."""
    out = []
    for a, b in combinations(record["versions"], 2):
        if a["applicable"] == 0:
            continue
        diff = a["satisfied"] - b["satisfied"]
        if diff != 0:
            out.append((1 if diff > 0 else -1, a, b))
    return out


def agreement(records: Sequence[dict[str, Any]], metric: str, seed: int = 0) -> dict[str, Any]:
    """2AFC agreement of ``metric`` with the jury over decided pairs, crop-bootstrap 95 % CI."""
    per_crop: list[tuple[float, int]] = []
    for record in records:
        hits, n = 0.0, 0
        for sign, a, b in pairs_of(record):
            if metric not in a["scores"] or metric not in b["scores"]:
                continue
            delta = a["scores"][metric] - b["scores"][metric]
            hits += 0.5 if delta == 0 else float((delta > 0) == (sign > 0))
            n += 1
        if n:
            per_crop.append((hits, n))
    if not per_crop:
        return {"pairs": 0, "crops": 0, "agreement": None, "ci95": None}
    hits_arr = np.array([h for h, _ in per_crop])
    n_arr = np.array([n for _, n in per_crop], dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_crop), size=(BOOTSTRAP, len(per_crop)))
    boot = hits_arr[draws].sum(axis=1) / n_arr[draws].sum(axis=1)
    return {
        "pairs": int(n_arr.sum()),
        "crops": len(per_crop),
        "agreement": round(float(hits_arr.sum() / n_arr.sum()), 4),
        "ci95": [round(float(np.percentile(boot, 2.5)), 4), round(float(np.percentile(boot, 97.5)), 4)],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# PCMP-style 2AFC agreement with our machine jury (PSNR-matched pairs, proxy labels)",
        "",
        f"{result['crops']} crops of {result['size']}×{result['size']} px from offline photos "
        f"(skimage, opencv-doc), PSNR targets {result['targets']} dB (±{result['tolerance']} dB), versions "
        f"{', '.join(KINDS)}; {result['versions']} versions, {result['pairs_total']} pairs, "
        f"{result['pairs_decided']} decided by the jury ({result['pairs_tied']} ties dropped).",
        f"Jury: {', '.join(result['jury'])} (a PROXY of PCMP's model population; left out for cost: "
        f"{', '.join(result['jury_left_out']) or 'none'}). CI: 95 % bootstrap over crops ({BOOTSTRAP} draws).",
        "",
        "| metric | agreement | 95 % CI | pairs | what |",
        "|---|---:|---|---:|---|",
    ]
    for name, row in result["metrics"].items():
        if row["agreement"] is None:
            lines.append(f"| {name} | n/a | n/a | 0 | {row['what']} |")
        else:
            lo, hi = row["ci95"]
            lines.append(f"| {name} | {row['agreement']:.3f} | {lo:.3f}–{hi:.3f} | {row['pairs']} | {row['what']} |")
    lines += [
        "",
        run_footer(result),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--targets", default="28,31,34,37", help="PSNR targets (dB), used in turn per crop")
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--jury", default=None, help="comma-separated machines (default: all available but OCR)")
    parser.add_argument("--no-predictor", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sursmr-pcmp"))
    parser.add_argument("--shard", default=None, help="i/n: only fill the cache for crops i, i+n, ... (no results)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--rescore",
        default="",
        help="comma-separated metrics to recompute on cached crops (after their weights or encoder changed)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from training.labels.smr import zoo, zoo_status

    available = [n for n, reason in zoo_status().items() if reason is None]
    names = args.jury.split(",") if args.jury else [n for n in available if not n.startswith(SLOW_MACHINES)]
    machines = zoo(names)
    score_fns = scorers(not args.no_predictor)
    targets = [float(t) for t in args.targets.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records = []
    shard, shards = (int(v) for v in args.shard.split("/")) if args.shard else (0, 1)
    rescored = [n for n in args.rescore.split(",") if n]
    unknown = sorted(set(rescored) - set(score_fns))
    if unknown:
        parser.error(f"--rescore: unknown metrics {', '.join(unknown)}; known: {', '.join(score_fns)}")
    for i, crop in enumerate(plan(args.crops, args.size, args.seed)):
        if i % shards != shard:
            continue
        target = targets[i % len(targets)]
        jury_key = hashlib.sha256("+".join(sorted(names)).encode()).hexdigest()[:10]
        cache = args.work / f"{crop.crop_id}-{target:g}-{jury_key}.json"
        if cache.is_file():
            record = json.loads(cache.read_text())
            if rescored:
                rescore(crop, record, rescored, score_fns)
                cache.write_text(json.dumps(record, default=lambda o: bool(o) if isinstance(o, np.bool_) else str(o)))
        else:
            record = process_crop(crop, target, args.tolerance, machines, score_fns)
            cache.write_text(json.dumps(record, default=lambda o: bool(o) if isinstance(o, np.bool_) else str(o)))
        records.append(record)
        print(
            f"[{i + 1}/{args.crops}] {crop.crop_id} {len(record['versions'])} versions "
            f"{time.perf_counter() - start:.0f}s",
            file=sys.stderr,
        )
    if args.shard:
        return 0
    total = sum(math.comb(len(r["versions"]), 2) for r in records)
    decided = sum(len(pairs_of(r)) for r in records)
    result: dict[str, Any] = {
        "what": "PCMP-style 2AFC agreement with the machine-jury preference at matched PSNR (proxy labels)",
        "crops": len(records),
        "size": args.size,
        "targets": targets,
        "tolerance": args.tolerance,
        "versions": sum(len(r["versions"]) for r in records),
        "pairs_total": total,
        "pairs_decided": decided,
        "pairs_tied": total - decided,
        "jury": sorted(names),
        "jury_left_out": sorted(set(zoo_status()) - set(names)),
        "metrics": {
            name: {**agreement(records, name, args.seed), "what": what} for name, (_, what) in score_fns.items()
        },
        "command": "python benchmarks/pcmp.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "wall_s": round(time.perf_counter() - start, 1),
        "host": host_text(torch_threads=1),
        "records": records,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pcmp.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / "pcmp.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
