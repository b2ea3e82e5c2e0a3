"""End-to-end speed: seconds and probes per 768×512 image per codec, predictor ms per candidate, peak memory.

The sample photo (``sursmr/samples/astronaut.png``) is resized to 768×768
and centre-cropped to 768×512. Each codec is compressed to the default
targets with the given model; the encode cache is cleared between repeats so
every run pays for its encodes. Parameters and GFLOPs of every network are
in ``benchmarks/model_complexity.py``.

Usage::

    python benchmarks/speed.py                       # shipped model, every available codec, CPU
    python benchmarks/speed.py --model runs/head --codecs jpeg,bpg --repeats 3 --device cuda

Writes ``benchmarks/results/speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = Path(__file__).resolve().parents[1] / "sursmr" / "samples" / "astronaut.png"


def photo_768x512() -> np.ndarray:
    from sursmr_core.imaging import load_image

    big = Image.fromarray(load_image(SAMPLE)).resize((768, 768), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(big)[128:640])


def predictor_ms_per_candidate(predictor: Any, rgb: np.ndarray, candidates: int = 8, repeats: int = 3) -> float:
    """Median ms per candidate with the reference features already cached, batch of ``candidates``."""
    import codec_adapters

    jpeg = codec_adapters.create("jpeg")
    decoded = [jpeg.decode(jpeg.encode(rgb, q)) for q in np.linspace(20, 95, candidates).astype(int).tolist()]
    predictor.predict(rgb, decoded[:1])  # warm-up, caches the reference features
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(rgb, decoded)
        times.append((time.perf_counter() - start) / candidates * 1000)
    return statistics.median(times)


def model_cost(predictor: Any, rgb: np.ndarray) -> tuple[float, float]:
    """Parameters (M) and GFLOPs of scoring one candidate of ``rgb`` (every tile), reference features cached."""
    import torch
    from model_complexity import flops_of

    from sursmr.models.inputs import image_to_input
    from sursmr.models.network import count_parameters

    net = predictor.model
    inputs = image_to_input(rgb, net.config, predictor.device)
    with torch.inference_mode():
        reference = net.reference_features(inputs)
    flops = flops_of(lambda: net.forward_from_features(reference, inputs))
    return count_parameters(net) / 1e6, flops / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="weights name/path, run dir or .pt [default: shipped]")
    parser.add_argument("--codecs", default=None, help="comma list [default: every available codec]")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--target-sur", type=float, default=0.75)
    parser.add_argument("--target-smr", type=float, default=0.9)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import codec_adapters
    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.compress import EncodeCache, compress_to_target
    from sursmr.predictor import DEFAULT_MODEL
    from sursmr_core.errors import TargetUnreachable

    model = args.model or DEFAULT_MODEL
    predictor = sursmr.predictor.load(model, args.device)
    rgb = photo_768x512()
    names = args.codecs.split(",") if args.codecs else codec_adapters.list()
    rows: list[dict[str, Any]] = []
    ms = predictor_ms_per_candidate(predictor, rgb)
    params_m, gflops = model_cost(predictor, rgb)
    for name in names:
        cls = codec_adapters.get(name)
        if not cls.availability().available:
            print(f"skip {name}: {cls.availability().reason}", file=sys.stderr)
            continue
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            try:
                result = compress_to_target(
                    rgb,
                    codec=name,
                    target_sur=args.target_sur,
                    target_smr=args.target_smr,
                    predictor=predictor,
                    cache=EncodeCache(),
                )
                outcome = {
                    "level": result.level,
                    "bytes": result.nbytes,
                    "probes": len(result.probes),
                    "sur": round(result.sur, 4),
                    "smr": round(result.smr, 4),
                }
            except TargetUnreachable as exc:
                outcome = {"level": None, "bytes": None, "probes": len(exc.probes), "sur": None, "smr": None}
            runs.append((time.perf_counter() - start, outcome))
        seconds = statistics.median(r[0] for r in runs)
        rows.append({"codec": name, "seconds": round(seconds, 3), **runs[-1][1]})
        print(f"{name}: {seconds:.2f} s", file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "model": model,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "host": platform.machine(),
        "image": "astronaut resized/cropped to 768x512",
        "targets": {"sur": args.target_sur, "smr": args.target_smr},
        "predictor_ms_per_candidate": round(ms, 2),
        "params_m": round(params_m, 3),
        "gflops_per_candidate": round(gflops, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "codecs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# End-to-end speed (768×512 photo)",
        "",
        f"Model `{model}` on {args.device} ({report['torch_threads']} torch threads), targets SUR ≥ "
        f"{args.target_sur}, SMR ≥ {args.target_smr}; predictor {ms:.1f} ms per candidate (batch 8, reference "
        f"features cached); {params_m:.2f} M parameters, {gflops:.2f} GFLOPs per candidate at this size "
        f"(multiply-add = 2 FLOPs, reference features not counted); peak RSS {peak_mb:.0f} MB.",
        "",
        "| codec | seconds | probes | level | bytes | predicted SUR | predicted SMR |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['codec']} | {r['seconds']} | {r['probes']} | {r['level']} | {r['bytes']} | {r['sur']} | {r['smr']} |"
        )
    text = "\n".join(lines) + "\n"
    (args.out / "speed.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
