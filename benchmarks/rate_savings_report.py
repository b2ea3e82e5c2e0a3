"""Rate savings at matched reliability, the reports: markdown tables, the README headline and the sweep plots.

Everything here formats the payload that :mod:`benchmarks.rate_savings`
writes; no number is computed that the protocol did not measure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.rate_savings_protocol import HEADLINE_RELIABILITIES, HEADLINE_TARGETS, RELIABILITIES, methods
from benchmarks.run_info import run_footer

PREDICTIONS_NOTE = "network predictions cached beside each dataset by an earlier run are reused"


def _pct(value: float | None, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.0f}%"


def _ci_text(ci: list[float] | None) -> str:
    return "" if ci is None else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _target_text(target_sur: float | None, target_smr: float | None) -> str:
    return f"SUR ≥ {target_sur}" + ("" if target_smr is None else f", SMR ≥ {target_smr}")


def headline_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if (r["target_sur"], r["target_smr"]) in HEADLINE_TARGETS
        and any(math.isclose(r["h"], h) for h in HEADLINE_RELIABILITIES)
    ]


def headline_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| codec | targets | h | method | mean bytes | hit rate (test) | saved vs fixed [95% CI] | share of oracle "
        "saving [95% CI] | encodes | s / image |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(headline_rows(rows), key=lambda r: (r["codec"], r["target_smr"] or 0.0, r["h"])):
        if "mean_bytes" not in r:
            lines.append(
                f"| {r['codec']} | {_target_text(r['target_sur'], r['target_smr'])} | {r['h']:g} | {r['method']} | "
                "n/r on val | | | | | |"
            )
            continue
        seconds = "–" if r.get("seconds") is None else f"{r['seconds']:.2f}"
        share = r.get("oracle_share")
        lines.append(
            f"| {r['codec']} | {_target_text(r['target_sur'], r['target_smr'])} | {r['h']:g} | {r['method']} | "
            f"{r['mean_bytes']:.0f} | {_pct(r['hit_rate'], False)} | "
            f"{_pct(r.get('saved_vs_fixed'))}{_ci_text(r.get('saved_vs_fixed_ci'))} | "
            f"{_pct(share)}{_ci_text(r.get('oracle_share_ci'))} | {r['encodes']:.1f} | {seconds} |"
        )
    return lines


def savings_grid(rows: Sequence[dict[str, Any]], h: float) -> list[str]:
    names = [m.name for m in methods()] + ["oracle"]
    lines = [
        "| codec | targets | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    keys = sorted({(r["codec"], r["target_sur"], r["target_smr"] or 0.0) for r in rows})
    for codec, s, m in keys:
        cells = []
        for name in names:
            match = [
                r
                for r in rows
                if (r["codec"], r["target_sur"], r["target_smr"] or 0.0, r["method"]) == (codec, s, m, name)
                and math.isclose(r["h"], h)
            ]
            if not match or "mean_bytes" not in match[0]:
                cells.append("n/r")
            else:
                r = match[0]
                cells.append(f"{_pct(r.get('saved_vs_fixed'))} ({_pct(r['hit_rate'], False)})")
        lines.append(f"| {codec} | {_target_text(s, m or None)} | " + " | ".join(cells) + " |")
    return lines


def data_text(payload: dict[str, Any]) -> str:
    """Which data: the dataset(s), the two splits with their sizes and how many items have an SMR label."""
    calib_data = payload.get("calib_data")
    where = (
        f"data {payload['data']}" if not calib_data else f"calibration data {calib_data}, test data {payload['data']}"
    )
    smr = ""
    if payload.get("smr_labels"):
        smr = f"; {smr_text(payload['smr_labels'])}"
    if payload.get("test_smr_items") is not None:
        smr += (
            f"; items with an SMR label: {payload.get('calib_smr_items')} of {payload['calib_items']} "
            f"({payload['calib_split']}), {payload['test_smr_items']} of {payload['test_items']} "
            f"({payload['test_split']}), elsewhere an SMR target counts as met"
        )
    return (
        f"{where}; knobs calibrated on the `{payload['calib_split']}` split ({payload['calib_items']} items, "
        f"{payload['calib_photos']} photos), measured on the `{payload['test_split']}` split "
        f"({payload['test_items']} items, {payload['test_photos']} photos){smr}"
    )


def smr_text(labels: dict[str, Any]) -> str:
    """Which SMR labels the two splits hold, against the ones the model was trained on."""
    from training.datasets.relabel import smr_labels_note_of

    if labels.get("calib") == labels.get("test"):
        return smr_labels_note_of(labels, "test")
    return f"calibration {smr_labels_note_of(labels, 'calib')}; test {smr_labels_note_of(labels, 'test')}"


def _cheap_fit_text(payload: dict[str, Any]) -> str:
    split = payload["cheap_fit_split"]
    names = payload.get("cheap_fit_data") or []
    where = f" of {', '.join(f'`{n}`' for n in names)}" if names else ""
    if split == "train":
        return f"The cheap-metric regressor is fitted on the `train` split{where}."
    return (
        f"The cheap-metric regressor is fitted on the `{split}` split (no dataset here has a train split), "
        "the same items its margin is calibrated on."
    )


def markdown(payload: dict[str, Any]) -> str:
    rows = payload["table"]
    lines = [
        "# Rate savings at matched reliability",
        "",
        f"Model `{payload['model']}` (weights sha256 `{str(payload['weights_sha256'])[:12]}`); "
        f"{data_text(payload)}. {_cheap_fit_text(payload)} "
        "Labels are proxies (JND-calibrated SUR proxy, machine-zoo SMR); `vmaf` and `butteraugli` target metrics "
        "the SUR proxy is made of.",
        "",
        "Headline: required hit rate h on validation = "
        + " and ".join(f"{h:g}" for h in HEADLINE_RELIABILITIES)
        + "; n/r: the knob cannot reach h on validation. The oracle satisfies ⌈h·n⌉ test items, or all it can (its "
        "hit rate then shows how far the labelled levels fall short). Saved = 1 − mean bytes / mean "
        "bytes of `fixed` at the same h; share of oracle saving = (fixed − method) / (fixed − oracle); 95 % "
        f"intervals from {payload['resamples']} bootstrap resamples of the test photos. Seconds per image are "
        "estimates: encode/decode and metric times from the dataset build (shared 2-core CPU), the network's time "
        "per candidate measured when its predictions were computed (cached beside each dataset).",
        "",
        *headline_markdown(rows),
        "",
    ]
    for h in HEADLINE_RELIABILITIES:
        lines += [
            f"Saved vs fixed (test hit rate) at h = {h:g}, every target; n/r: the method cannot reach h on "
            "validation. Every h: `results/rate_savings_all.md`.",
            "",
            *savings_grid(rows, h),
            "",
        ]
    lines += [
        "Mean bytes against achieved test hit rate, knob swept (dots: the knobs calibrated on validation):",
        "",
        *(f"![{c}](results/rate_savings_{c}.png)" for c in payload["codecs"]),
        "",
    ]
    if payload.get("confidence"):
        lines += ["### Requested confidence vs achieved hit rate (test split)", "", *confidence_markdown(payload), ""]
    lines += [
        "BD-rate against `fixed` at equal mean SUR proxy (Akima, each method's knob sweep at SUR ≥ 0.75; "
        "negative: fewer bytes), secondary:",
        "",
        "| codec | " + " | ".join(m for m in sorted({r["method"] for r in payload["bd_rate"]})) + " |",
        "|---|" + "---:|" * len({r["method"] for r in payload["bd_rate"]}),
    ]
    for codec in payload["codecs"]:
        cells = []
        for method in sorted({r["method"] for r in payload["bd_rate"]}):
            match = [r for r in payload["bd_rate"] if (r["codec"], r["method"]) == (codec, method)]
            value = match[0]["bd_rate_percent"] if match else None
            cells.append("–" if value is None else f"{value:+.1f}%")
        lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    if payload.get("command"):
        lines += ["", run_footer(payload, PREDICTIONS_NOTE)]
    return "\n".join(lines) + "\n"


def confidence_markdown(payload: dict[str, Any]) -> list[str]:
    """The requested-vs-achieved confidence table, and why a row is more than 5 points off."""
    lines = [
        f"Margins from the model card's confidence table (calibrated on {payload['confidence_source']}). "
        "Achieved = share of test items whose proxy labels meet the targets at the controller's pick, "
        "averaged over the target pairs of the protocol where the card has a margin for that confidence "
        "('targets', of 9): on the levels densified as in calibration (the codec's full axis, interpolated labels) "
        "and on the dataset's labelled levels only. A confidence has no margin at a target where fewer than "
        "⌈(m + 1)·P⌉ of the m calibration items can be hit at all (no labelled level meets the target, so no "
        "margin helps); `compress --confidence` refuses it there.",
        "",
        "| codec | requested | achieved (densified) | worst target | achieved (labelled levels) | items | "
        "targets | margins |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in payload["confidence"]:
        if r["achieved_dense"] is None:
            lines.append(f"| {r['codec']} | {r['confidence']:g} | not supported | | | {r['items']} | 0 | |")
            continue
        lines.append(
            f"| {r['codec']} | {r['confidence']:g} | {_pct(r['achieved_dense'], False)} | "
            f"{_pct(r['achieved_dense_min'], False)} | {_pct(r['achieved_levels'], False)} | {r['items']} | "
            f"{r['targets']} | {r['margin_range'][0]:.3f}–{r['margin_range'][1]:.3f} |"
        )
    misses = [
        r
        for r in payload["confidence"]
        if r["achieved_dense"] is not None and abs(r["achieved_dense"] - r["confidence"]) > 0.05
    ]
    if misses:
        lines += ["", confidence_misses_text(misses, payload["confidence_source"])]
    return lines


def confidence_misses_text(misses: Sequence[dict[str, Any]], source: str) -> str:
    """Why requested and achieved confidence differ by more than 5 points, with each row's sampling error."""

    def why(r: dict[str, Any]) -> str:
        n, p = r["items"], r["confidence"]
        spread = 100 * math.sqrt(p * (1 - p) / n) if n else math.nan
        return (
            f"{r['codec']} {p:g}: {_pct(r['achieved_dense'], False)} on {n} test items "
            f"(one item = {100 / n:.2g} points, standard error at {p:g} ≈ {spread:.0f} points)"
        )

    return (
        "More than 5 points from the request: "
        + "; ".join(why(r) for r in misses)
        + f". Why: the guarantee is on average over images like the calibration ones ({source}), and the test "
        "split is small, so a gap of one to two standard errors is expected by chance; with m calibration items "
        "per codec the P margin is the ⌈(m + 1)·P⌉-th smallest of m scores (every codec's scores where m is too "
        "small)."
    )


def headline_text(payload: dict[str, Any]) -> str:
    """The short block the main README carries (generated; see benchmarks/update_readme.py)."""
    return "\n".join(
        [
            f"Matched reliability (`benchmarks/rate_savings.py`): model `{payload['model']}`; "
            f"{data_text(payload)}; proxy labels, 95 % CIs over {payload['resamples']} bootstrap resamples of the "
            "test photos; n/r: cannot reach h on validation. h = 0.9 below; h = 0.75 and every target: "
            "`benchmarks/README.md`.",
            "",
            *headline_markdown([r for r in payload["table"] if math.isclose(r["h"], 0.9)]),
            "",
            *(
                [
                    "`--confidence P`, requested against achieved on the test split:",
                    "",
                    *confidence_markdown(payload),
                    "",
                ]
                if payload.get("confidence")
                else []
            ),
            "Mean bytes against achieved test hit rate, each method's knob swept: "
            + ", ".join(f"[{c}](benchmarks/results/rate_savings_{c}.png)" for c in payload["codecs"])
            + ".",
            "",
        ]
    )


def markdown_all(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["# Rate savings at matched reliability: every h", ""]
    for h in sorted({r["h"] for r in rows}):
        lines += [f"## h = {h:g}", "", *savings_grid(rows, h), ""]
    return "\n".join(lines)


def plot(sweeps: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], codec: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(15, 12), squeeze=False)
    names = [m.name for m in methods()] + ["oracle"]
    for r_i, s in enumerate((0.5, 0.75, 0.9)):
        for c_i, m in enumerate((None, 0.8, 0.9)):
            ax = axes[r_i][c_i]
            for name in names:
                pts = sorted(
                    (p["hit_rate"], p["mean_bytes"])
                    for p in sweeps
                    if (p["codec"], p["target_sur"], p["target_smr"], p["method"]) == (codec, s, m, name)
                )
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", label=name, lw=1.2, alpha=0.85)
                chosen = [
                    r
                    for r in rows
                    if (r["codec"], r["target_sur"], r["target_smr"], r["method"]) == (codec, s, m, name)
                    and "mean_bytes" in r
                ]
                if chosen:
                    ax.scatter([r["hit_rate"] for r in chosen], [r["mean_bytes"] for r in chosen], s=12)
            for h in RELIABILITIES:
                ax.axvline(h, color="grey", lw=0.5, ls=":")
            ax.set_title(f"{codec}: {_target_text(s, m)}", fontsize=10)
            ax.set_xlabel("achieved hit rate, test (proxy labels)")
            ax.set_ylabel("mean bytes")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{codec}: mean bytes vs hit rate, knob swept (dots: knobs calibrated on validation at h)")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
