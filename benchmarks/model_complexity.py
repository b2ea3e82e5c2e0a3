"""Parameters, FLOPs and (optionally) speed of every registered SUR/SMR network.

Counting convention: torch's ``FlopCounterMode`` counts a multiply-add as
2 FLOPs and only counts matrix products and convolutions (including
attention via ``scaled_dot_product_attention``); element-wise ops,
normalisations, activations and interpolation are not counted. We print
GMACs (= FLOPs / 2) beside GFLOPs because papers use "FLOPs" for either.

Two costs per network at ``input_size``² (224² for all registered configs):
``pair``, a full forward of one (reference, distorted) pair (two backbone
passes, as in training), and ``candidate``, one more candidate once the
reference features are cached (one backbone pass + head), the rate
controller's marginal cost. For ``native`` configs both are per 224² tile.

The paper (Table II) reports 47.00 M parameters and 22.56 GFLOPs for its
network without saying how FLOPs were counted or which fused size H×W MHAAP
uses; the ``paper variants`` rows show how those choices move the numbers.

Usage::

    python benchmarks/model_complexity.py                 # params + FLOPs, all configs
    python benchmarks/model_complexity.py --time          # + ms per candidate (batch 8, shared reference)
    python benchmarks/model_complexity.py --only sursmr_tiny --time --repeats 3

Writes ``benchmarks/results/model_complexity.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sursmr.models import create_model, get_config, list_models
from sursmr.models.config import NetConfig
from sursmr.models.network import SurSmrNet, count_parameters
from sursmr.predictor import Predictor

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_CONFIG = "sursmr_caformer_s18"
PAPER: dict[str, Any] = {"name": PAPER_CONFIG, "params_m": 47.00, "gflops": 22.56}


def flops_of(fn: Any) -> int:
    # no_grad, not inference_mode: the counter's module tracker hooks autograd on parameters passed as inputs
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def measure(config: NetConfig) -> dict[str, Any]:
    torch.manual_seed(0)
    net = create_model(config).eval()
    side = config.input_size
    reference = torch.rand(1, 3, side, side)
    distorted = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        ref_features = net.prepare_reference(net.reference_features(reference))
    pair = flops_of(lambda: net(reference, distorted))
    candidate = flops_of(lambda: net.forward_from_prepared(ref_features, distorted))
    return {
        "name": config.name,
        "backbone": config.backbone,
        "head": config.head,
        "input_mode": config.input_mode,
        "input_size": side,
        "fuse_size": list(config.fuse_size),
        "attn_qo_proj": config.attn_qo_proj,
        "params_m": count_parameters(net) / 1e6,
        "backbone_params_m": count_parameters(net.backbone) / 1e6,
        "head_params_m": count_parameters(net.head) / 1e6,
        "pair_gflops": pair / 1e9,
        "pair_gmacs": pair / 2e9,
        "candidate_gflops": candidate / 1e9,
        "candidate_gmacs": candidate / 2e9,
    }


def time_per_candidate(net: SurSmrNet, device: str, batch: int, repeats: int) -> float:
    """Median ms per candidate: ``batch`` candidates of a 224² reference, reference features cached."""
    predictor = Predictor.from_model(net, device=device, batch_size=batch)
    side = net.config.input_size
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    candidates = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(batch)]
    predictor.predict(reference, candidates)  # warm-up; also caches the reference features
    runs = []
    for _ in range(repeats):
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        predictor.predict(reference, candidates)
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - start) * 1000 / batch)
    return statistics.median(runs)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Model complexity",
        "",
        f"FLOPs convention: {report['convention']}",
        f"Paper (Table II, {PAPER['name']}): {PAPER['params_m']:.2f} M params, {PAPER['gflops']:.2f} GFLOPs.",
        "",
        "| config | backbone | head | mode | params (M) | backbone (M) | head (M) | pair GMACs | pair GFLOPs "
        "| candidate GMACs | candidate GFLOPs | ms/candidate |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(r: dict[str, Any]) -> str:
        ms = r.get("ms_per_candidate")
        return (
            f"| {r['name']} | {r['backbone']} | {r['head']} | {r['input_mode']} | {r['params_m']:.2f} "
            f"| {r['backbone_params_m']:.2f} | {r['head_params_m']:.2f} | {r['pair_gmacs']:.2f} "
            f"| {r['pair_gflops']:.2f} | {r['candidate_gmacs']:.2f} | {r['candidate_gflops']:.2f} "
            f"| {'-' if ms is None else f'{ms:.1f}'} |"
        )

    lines += [row(r) for r in report["configs"]]
    if report["paper_variants"]:
        lines += ["", "## Paper config variants (choices the paper leaves open)", ""]
        lines += [
            "| variant | fuse H×W | Q/out proj | params (M) | pair GMACs | pair GFLOPs |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in report["paper_variants"]:
            lines.append(
                f"| {r['variant']} | {r['fuse_size'][0]}×{r['fuse_size'][1]} | {r['attn_qo_proj']} "
                f"| {r['params_m']:.2f} | {r['pair_gmacs']:.2f} | {r['pair_gflops']:.2f} |"
            )
    if report.get("timing"):
        t = report["timing"]
        lines += [
            "",
            f"Timing: {t['device']}, torch threads {t['threads']}, batch {t['batch']}, median of {t['repeats']}, "
            "random-init weights, reference features cached, 224×224 inputs (no resize).",
        ]
    lines += ["", f"Host: {report['host']}; torch {report['torch']}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="config names (default: all registered)")
    parser.add_argument("--time", action="store_true", help="also measure ms per candidate")
    parser.add_argument("--device", default="cpu", help="device for --time (cpu, cuda, auto)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-variants", action="store_true", help="skip the paper config variants")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    names = args.only or list_models()
    rows = []
    for name in names:
        row = measure(get_config(name))
        if args.time:
            torch.manual_seed(0)
            row["ms_per_candidate"] = time_per_candidate(create_model(name), args.device, args.batch, args.repeats)
        rows.append(row)
        print(
            f"{name:32s} params {row['params_m']:7.2f} M  pair {row['pair_gmacs']:6.2f} GMACs = "
            f"{row['pair_gflops']:6.2f} GFLOPs  candidate {row['candidate_gmacs']:6.2f} GMACs"
            + (f"  {row['ms_per_candidate']:.1f} ms/candidate" if "ms_per_candidate" in row else "")
        )
    print(f"paper ({PAPER['name']}): {PAPER['params_m']:.2f} M params, {PAPER['gflops']:.2f} GFLOPs")

    variants = []
    if not args.no_variants:
        for fuse in ((14, 14), (28, 28), (56, 56)):
            for qo in (False, True):
                config = get_config(PAPER_CONFIG, fuse_size=fuse, attn_qo_proj=qo)
                variant = {"variant": f"fuse {fuse[0]}², qo_proj={qo}", **measure(config)}
                variants.append(variant)
                print(
                    f"  variant {variant['variant']:26s} params {variant['params_m']:6.2f} M  "
                    f"pair {variant['pair_gmacs']:6.2f} GMACs = {variant['pair_gflops']:6.2f} GFLOPs"
                )

    report = {
        "convention": "FLOPs from torch FlopCounterMode (multiply-add = 2 FLOPs; matmul/conv/attention only); "
        "GMACs = GFLOPs / 2; batch 1",
        "paper": PAPER,
        "configs": rows,
        "paper_variants": variants,
        "timing": (
            {"device": args.device, "threads": torch.get_num_threads(), "batch": args.batch, "repeats": args.repeats}
            if args.time
            else None
        ),
        "host": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_complexity.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "model_complexity.md").write_text(markdown(report))
    print(f"wrote {args.out / 'model_complexity.json'} and .md")


if __name__ == "__main__":
    main()
