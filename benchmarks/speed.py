"""End-to-end speed: seconds and probes per 768×512 image per codec, predictor ms per candidate, peak memory.

The sample photo (``sursmr/samples/astronaut.png``) is resized to 768×768
and centre-cropped to 768×512. Each codec is compressed to the default
targets with the given model; the encode cache is cleared between repeats so
every run pays for its encodes. Parameters and GFLOPs of every network are
in ``benchmarks/model_complexity.py``.

Usage::

    python benchmarks/speed.py                       # shipped model, every available codec, CPU
    python benchmarks/speed.py --model runs/head --codecs jpeg,bpg --repeats 3 --device cuda
    python benchmarks/speed.py --codecs jpeg --layouts             # also time the channels-first network

Writes ``benchmarks/results/speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
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


class SsimScorer:
    """The SSIM-bisection baseline: SSIM stands in for SUR (SMR always 1), so the same search runs on it."""

    def predict(self, reference: np.ndarray, candidates: list[np.ndarray]) -> list[Any]:
        from sursmr.fidelity import ssim
        from sursmr.scoring import Prediction

        return [Prediction(sur=max(0.0, ssim(reference, c)), smr=1.0) for c in candidates]


def one_encode_seconds(name: str, rgb: np.ndarray, repeats: int = 3) -> float:
    """Median seconds of one encode + decode at the codec's default level."""
    import codec_adapters

    codec = codec_adapters.create(name)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        codec.decode(codec.encode(rgb, codec.default_level))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layout_ms(predictor: Any, rgb: np.ndarray) -> float:
    """ms per candidate with the network in the default contiguous (channels-first) layout, for comparison."""
    import torch

    predictor.model = predictor.model.to(memory_format=torch.contiguous_format)
    predictor.clear_cache()
    try:
        return predictor_ms_per_candidate(predictor, rgb, repeats=1)
    finally:
        predictor.model = predictor.model.to(memory_format=torch.channels_last)
        predictor.clear_cache()


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
    parser.add_argument("--ssim-target", type=float, default=0.95, help="SSIM the baseline bisection aims for")
    parser.add_argument("--threads", type=int, default=2, help="torch threads [default: 2]")
    parser.add_argument("--layouts", action="store_true", help="also time the channels-first network")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import codec_adapters
    import sursmr.predictor
    import training  # noqa: F401  (lets the factory open training runs and checkpoints)
    from sursmr.compress import EncodeCache, compress_to_target
    from sursmr.predictor import DEFAULT_MODEL
    from sursmr_core.errors import TargetUnreachable

    torch.set_num_threads(args.threads)
    model = args.model or DEFAULT_MODEL
    predictor = sursmr.predictor.load(model, args.device)
    rgb = photo_768x512()
    names = args.codecs.split(",") if args.codecs else codec_adapters.list()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    ms = predictor_ms_per_candidate(predictor, rgb)
    ms_contiguous = layout_ms(predictor, rgb) if args.layouts else None
    params_m, gflops = model_cost(predictor, rgb)
    for name in names:
        cls = codec_adapters.get(name)
        if not cls.availability().available:
            print(f"skip {name}: {cls.availability().reason}", file=sys.stderr)
            continue
        encode_s = one_encode_seconds(name, rgb)
        timed: dict[str, tuple[float, dict[str, Any]]] = {}
        for label, scorer, sur, smr in (
            ("model", predictor, args.target_sur, args.target_smr),
            ("ssim", SsimScorer(), args.ssim_target, None),
        ):
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                try:
                    result = compress_to_target(
                        rgb, codec=name, target_sur=sur, target_smr=smr, predictor=scorer, cache=EncodeCache()
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
            timed[label] = (statistics.median(r[0] for r in runs), runs[-1][1])
        seconds, outcome = timed["model"]
        ssim_seconds, ssim_outcome = timed["ssim"]
        prior = predictor.curve(rgb, name)
        rows.append(
            {
                "codec": name,
                "seconds": round(seconds, 3),
                **outcome,
                "one_encode_seconds": round(encode_s, 4),
                "x_one_encode": round(seconds / encode_s, 1),
                "prior": prior is not None,
                # the predicted strategy is bisection without a prior, so its speed-up over bisection is 1
                "speedup_over_bisect": 1.0,
                "ssim_seconds": round(ssim_seconds, 3),
                "ssim_probes": ssim_outcome["probes"],
                "speedup_over_ssim_bisect": round(ssim_seconds / seconds, 3),
            }
        )
        print(f"{name}: {seconds:.2f} s (ssim bisection {ssim_seconds:.2f} s)", file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "model": model,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "host": platform.machine(),
        "image": "astronaut resized/cropped to 768x512",
        "targets": {"sur": args.target_sur, "smr": args.target_smr},
        "cpu_count": os.cpu_count(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "predictor_ms_per_candidate": round(ms, 2),
        "predictor_ms_per_candidate_channels_first": None if ms_contiguous is None else round(ms_contiguous, 2),
        "params_m": round(params_m, 3),
        "gflops_per_candidate": round(gflops, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "codecs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    load_text = f"1-min load average {report['load_average_1min'][0]} → {report['load_average_1min'][1]}"
    layout = "" if ms_contiguous is None else f" ({ms_contiguous:.1f} ms channels-first, ×{ms_contiguous / ms:.2f})"
    lines = [
        "# End-to-end speed (768×512 photo)",
        "",
        f"Model `{model}` on {args.device} ({report['torch_threads']} torch threads, {os.cpu_count()} CPUs, "
        f"{load_text}: on a shared, loaded machine every second here is inflated), targets SUR ≥ "
        f"{args.target_sur}, SMR ≥ {args.target_smr}; predictor {ms:.1f} ms per candidate{layout} (batch 8, "
        f"reference features cached, channels-last); {params_m:.2f} M parameters, {gflops:.2f} GFLOPs per "
        f"candidate at this size (multiply-add = 2 FLOPs, reference features not counted); peak RSS {peak_mb:.0f} MB. "
        f"SSIM bisection: the same search with SSIM ≥ {args.ssim_target} in place of the model.",
        "",
        "| codec | seconds | encodes | × one encode | level | bytes | predicted SUR | predicted SMR | prior "
        "| SSIM-bisection seconds (encodes) | speed-up over SSIM bisection |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['codec']} | {r['seconds']} | {r['probes']} | {r['x_one_encode']} | {r['level']} | {r['bytes']} "
            f"| {r['sur']} | {r['smr']} | {'card' if r['prior'] else 'none (bisection)'} "
            f"| {r['ssim_seconds']} ({r['ssim_probes']}) | ×{r['speedup_over_ssim_bisect']} |"
        )
    text = "\n".join(lines) + "\n"
    (args.out / "speed.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
