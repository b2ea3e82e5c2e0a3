"""Why some crops never reach a SUR target at a codec's best level: the 4:2:0 chroma round trip, measured.

The dataset statistics (``benchmarks/dataset_stats.py``) count, per codec, the
evaluation items whose whole grid never meets SUR ≥ 0.5 / 0.75 / 0.9 on the
proxy labels. For every such item (val and test splits, ``--target``), this
re-encodes the stored reference crop and scores it with the dataset's SUR
proxy under variants that change only the chroma path:

* the shipped settings at the grid's best level (what the labels saw);
* the settings of the first v2 build, which this benchmark's first run
  (commit b1354d7) showed to be the cap and which the codecs no longer use:
  VVC decoded with a bilinear chroma upsampler instead of libbpg's 7-tap one
  (``VvcAdapter.chroma_filter``), and JPEG at 4:2:0 at quality 100 instead of
  4:4:4 (``JpegAdapter.full_chroma_from``).

Bytes and SUR proxy per variant; labels are proxies. Nothing is written into
the dataset.

Usage::

    python benchmarks/chroma_ceiling.py --data /root/sursmr-data/v2
    python benchmarks/chroma_ceiling.py --data DIR --target 0.75 --splits test

Writes ``benchmarks/results/chroma_ceiling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from run_info import host_text, run_footer

import codec_adapters
from codec_adapters.base import CodecAdapter
from codec_adapters.vvc import VvcAdapter
from training.datasets.builder import decode_png, read_items
from training.datasets.items import read_header
from training.labels.jnd_proxy import JND_PROXIES, jnd_metric_values, jnd_sur

RESULTS = Path(__file__).resolve().parent / "results"


class VvcBilinearChroma(VvcAdapter):
    """VVC whose decode upsamples chroma bilinearly, as before (not registered: this benchmark's variant)."""

    chroma_filter = "bilinear"


# the variants tried beside the shipped settings: (label, adapter class or None for the registered one,
# level or None for the grid's best, options)
EXTRA_VARIANTS: dict[str, list[tuple[str, type[CodecAdapter] | None, int | None, dict[str, Any]]]] = {
    "vvc": [("bilinear chroma decode (earlier)", VvcBilinearChroma, None, {})],
    "jpeg": [("4:2:0 q100 (earlier)", None, 100, {"subsampling": "4:2:0"})],
}


def variants(codec: str, best: int) -> list[tuple[str, CodecAdapter, int, dict[str, Any]]]:
    """(label, adapter, level, options) to try for an item of ``codec`` whose grid's best level is ``best``."""
    shipped = codec_adapters.create(codec)
    rows: list[tuple[str, CodecAdapter, int, dict[str, Any]]] = [("as labelled", shipped, best, {})]
    for name, cls, level, options in EXTRA_VARIANTS.get(codec, []):
        adapter = cls() if cls is not None else shipped
        rows.append((name, adapter, best if level is None else level, options))
    return rows


def measure(data: Path, record: Mapping[str, Any], proxy: Any, label: str) -> dict[str, Any]:
    with np.load(data / record["npz"]) as arrays:
        reference = decode_png(arrays["reference_png"])
    labels = list(record["labels"][label])
    stored_best = int(np.argmax(labels))
    best_level = codec_adapters.get(record["codec"]).levels.worst_to_best()[-1]
    out: dict[str, Any] = {
        "item": record["item_id"],
        "codec": record["codec"],
        "split": record["split"],
        "label_max": round(float(labels[stored_best]), 4),
        "label_max_level": int(record["levels"][stored_best]),
        "variants": [],
    }
    for name, adapter, level, options in variants(record["codec"], best_level):
        bitstream = adapter.encode(reference, level, **options)
        decoded = adapter.decode(bitstream)
        sur = float(jnd_sur(jnd_metric_values(reference, decoded, proxy), proxy))
        out["variants"].append({"variant": name, "level": level, "bytes": len(bitstream), "sur_proxy": round(sur, 4)})
    return out


def markdown(result: Mapping[str, Any]) -> str:
    lines = [
        f"# SUR ceiling of the 4:2:0 chroma round trip (`{result['data']}`, splits {', '.join(result['splits'])})",
        "",
        f"Items whose stored grid never reaches SUR proxy ≥ {result['target']:g}: "
        f"{len(result['items'])} of {result['items_checked']} (labels are proxies, `{result['proxy']}` "
        "calibration). Each is re-encoded at the codec's best level and scored under variants of its chroma path.",
        "",
        "| item | split | label max (level) | variant | level | bytes | SUR proxy |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for item in result["items"]:
        for v in item["variants"]:
            lines.append(
                f"| {item['item']} | {item['split']} | {item['label_max']:.3f} ({item['label_max_level']}) "
                f"| {v['variant']} | {v['level']} | {v['bytes']} | {v['sur_proxy']:.3f} |"
            )
    lines += ["", run_footer(result, "every item re-encoded")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a built dataset folder")
    parser.add_argument("--splits", default="val,test")
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--label", default="sur_jnd_proxy")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    recipe = read_header(args.data).get("recipe") or {}
    proxy_name = str(recipe.get("jnd_proxy_name", "konjnd"))
    proxy = JND_PROXIES.get(proxy_name)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    records = [r for r in read_items(args.data) if r["split"] in splits and r["labels"].get(args.label)]
    short = [r for r in records if max(r["labels"][args.label]) < args.target]
    items = []
    for i, record in enumerate(short, start=1):
        print(f"[{i}/{len(short)}] {record['item_id']}", file=sys.stderr, flush=True)
        items.append(measure(args.data, record, proxy, args.label))
    result = {
        "data": args.data.name,
        "splits": splits,
        "target": args.target,
        "proxy": proxy_name,
        "labels_are_proxies": True,
        "items_checked": len(records),
        "items": items,
        "command": "python benchmarks/chroma_ceiling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_s": time.perf_counter() - start,
        "host": host_text(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chroma_ceiling.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = markdown(result)
    (args.out / "chroma_ceiling.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
