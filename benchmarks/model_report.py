"""The README's table for a shipped model, from its model card (written to ``results/model_<name>.md``).

The card holds the held-out report ``sursmr-train evaluate --report`` wrote
(``sursmr-train export --report`` stores it); this script turns it into the
table the README shows: per codec, SUR and SMR MAE of the model next to the
per-level mean label and the cheap-metric ridge regressor, their ratios, and
the mean signed error. Labels are proxies; nothing here is typed by hand.

Usage::

    python benchmarks/model_report.py --model sursmr-v2-lite0
    # the same table for another evaluation of the shipped weights (e.g. a larger test split)
    sursmr-train evaluate sursmr-v2-lite0 --data DIR --report /tmp/eval.json
    python benchmarks/model_report.py --model sursmr-v2-lite0 --report /tmp/eval.json --suffix full-test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sursmr.models.weights import read_card, resolve_weights

RESULTS = Path(__file__).resolve().parent / "results"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}×"


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def report_markdown(card: dict[str, Any]) -> str:
    """Markdown for a card whose ``metrics`` hold an evaluate report."""
    metrics = card.get("metrics") or {}
    model, baselines = metrics["model"], metrics["baselines"]
    mean, ridge = baselines["level_mean"], baselines["cheap_ridge"]
    training = card.get("training") or {}
    recipe = (training.get("dataset_recipe") or {}).get("name")
    data = metrics.get("data") or Path(training.get("config", {}).get("data", "?")).name
    lines = [
        f"Model `{card['name']}` ({card['config']['name']}), split `{metrics['split']}` of data "
        f"`{data}` (trained on recipe `{recipe}`), baselines fitted on "
        f"`{metrics.get('baselines_fitted_on')}`; labels are proxies. Ratios: model MAE / baseline MAE "
        "(lower is better); bias: mean of prediction − label.",
        "",
        "| codec | samples | SUR MAE | × level mean | × cheap ridge | SUR bias | SMR samples | SMR MAE "
        "| × level mean | SMR bias |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    codecs = sorted(k for k, v in model.items() if isinstance(v, dict) and k != "overall")
    for codec in [*codecs, "overall"]:
        m, b, r = model[codec], mean[codec], ridge[codec]
        lines.append(
            f"| {codec} | {m['samples']} | {_num(m['mae_sur'])} | {_ratio(m['mae_sur'], b['mae_sur'])} "
            f"| {_ratio(m['mae_sur'], r['mae_sur'])} | {_num(m.get('bias_sur'), True)} | {m['smr_samples']} "
            f"| {_num(m['mae_smr'])} | {_ratio(m['mae_smr'], b['mae_smr'])} | {_num(m.get('bias_smr'), True)} |"
        )
    epochs = training.get("target_epochs")
    lines += [
        "",
        f"Best epochs (from 0): {epochs if epochs else training.get('best_epoch')}; "
        f"training commands: `{' ; '.join(training.get('command') or ['?'])}`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="weights name or .safetensors path")
    parser.add_argument(
        "--report", type=Path, default=None, help="an evaluate report (sursmr-train evaluate --report), not the card's"
    )
    parser.add_argument("--suffix", default=None, help="written as model_<name>-<suffix>.md (needed with --report)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    card = read_card(resolve_weights(args.model)).to_dict()
    if args.report is not None:
        if not args.suffix:
            parser.error("--report needs --suffix (the card's own table keeps its file name)")
        card["metrics"] = json.loads(args.report.read_text(encoding="utf-8"))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"evaluate_{card['name']}-{args.suffix}.json").write_text(
            json.dumps(card["metrics"], indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    if not card.get("metrics"):
        parser.error(f"{args.model}: its card has no measured metrics (export it with --report)")
    text = report_markdown(card)
    args.out.mkdir(parents=True, exist_ok=True)
    name = card["name"] if args.suffix is None else f"{card['name']}-{args.suffix}"
    (args.out / f"model_{name}.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
