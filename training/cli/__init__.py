"""``sursmr-train``: label pipeline and dataset commands (entry point :func:`run`).

Results go to stdout (a table, or one JSON object per line with ``--json``),
progress and messages to stderr; errors map to the exit codes of
:class:`sursmr_core.errors.ExitCode`, as for ``sursmr``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sursmr import __version__
from sursmr.cli.app import (
    SursmrGroup,
    emit_rows,
    jobs_option,
    json_option,
    progress,
    quiet_option,
    show_warnings_on_stderr,
    timeout_option,
)
from sursmr_core.errors import ExitCode


@click.group(cls=SursmrGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sursmr-train")
def main() -> None:
    """Build proxy-labelled SUR/SMR training data and train the predictor.

    Labels made here are proxies: pseudo-SUR from an IQA metric ensemble
    (paper Eq. 3), a JND-calibrated SUR proxy, and SMR from a zoo of vision
    models. Real SUR comes from subjective datasets (KonJND-1k, MCL-JCI,
    VVC-JND) that you supply.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train recipe --show > recipe.json
      sursmr-train build --recipe default --out data/default --jobs 2
      sursmr-train build --limit 3 --out /tmp/try --json

    \b
    Exit codes: 0 ok, 1 some items failed (run again to retry them), 2 bad usage
    or input, 3 codec unavailable, 7 labeller unavailable, 130 interrupted.
    """


def labeller_rows() -> list[dict[str, Any]]:
    """Every registered metric and machine with availability (and reason), direction/task, version, rule."""
    from training.machines import MACHINES
    from training.metrics import METRICS

    rows: list[dict[str, Any]] = []
    for name, metric in METRICS.items():
        status = metric.availability()
        rows.append(
            {
                "kind": "metric",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "direction": "lower is better" if metric.lower_is_better else "higher is better",
                "task": None,
                "version": metric.version,
                "jnd_unit": metric.jnd_unit,
                "rule": metric.description or None,
            }
        )
    for name, machine in MACHINES.items():
        status = machine.availability()
        rows.append(
            {
                "kind": "machine",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "direction": None,
                "task": machine.task,
                "version": machine.version,
                "jnd_unit": None,
                "rule": machine.rule,
            }
        )
    return rows


@main.command()
@json_option
def labellers(as_json: bool) -> None:
    """List every IQA metric and machine of the label pipeline and whether it runs here.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train labellers --json | jq -r 'select(.available|not) | "\\(.name): \\(.reason)"'
    """
    rows = labeller_rows()
    emit_rows(rows, ["kind", "name", "available", "direction", "task", "version", "reason"], as_json)


@main.command()
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="'default' or a recipe JSON file.")
@click.option("--show", is_flag=True, help="Print the recipe as JSON (save it, edit it, build it).")
@json_option
def recipe(recipe_spec: str, show: bool, as_json: bool) -> None:
    """Show a dataset recipe and its estimated size and build time.

    \b
    Examples:
      sursmr-train recipe --show > my.json
      sursmr-train recipe --recipe my.json
    """
    from training.datasets.recipe import CostModel, estimate_cost, load_recipe
    from training.datasets.sources import gather_sources

    chosen = load_recipe(recipe_spec)
    if show:
        click.echo(chosen.to_json())
        return
    sources = len(gather_sources(chosen.collections, chosen.source_dirs))
    estimate = estimate_cost(chosen, sources)
    row: dict[str, Any] = {"recipe": chosen.name, "sources": sources, **{k: round(v, 3) for k, v in estimate.items()}}
    row["crops"], row["images"] = int(estimate["crops"]), int(estimate["images"])
    row["codecs"] = ",".join(f"{p.codec}:{len(p.levels)}" for p in chosen.codecs)
    emit_rows([row], ["recipe", "sources", "crops", "codecs", "images", "wall_hours", "size_mb"], as_json)
    if not as_json:
        cost = CostModel().label_s_per_image
        click.echo(f"(estimate for 2 cores at {cost} core-s of labelling per decoded image, see CostModel)", err=True)


@main.command()
@click.option("--recipe", "recipe_spec", default="default", show_default=True, help="'default' or a recipe JSON file.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sursmr-dataset"),
    show_default=True,
    help="Dataset folder (a build there is resumed).",
)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@jobs_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N crops (a trial run).")
@timeout_option
@quiet_option
@json_option
def build(
    recipe_spec: str,
    out_dir: Path,
    executor: str,
    jobs: int | None,
    limit: int | None,
    timeout: float,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build (or resume) a proxy-labelled dataset: crops x codecs x levels, labels, shards, manifest.

    Each finished item (one crop, one codec) is written atomically; a killed
    build continues where it stopped when run again with the same --out.

    \b
    Examples:
      sursmr-train build --out data/default
      sursmr-train build --recipe my.json --executor ray --jobs 8 --out data/mine
      sursmr-train build --limit 3 --out /tmp/try --json
    """
    from sursmr.encoding import default_jobs
    from training.datasets.builder import build_dataset
    from training.datasets.recipe import load_recipe

    chosen = load_recipe(recipe_spec)
    bar = progress(desc=f"build {chosen.name}", quiet=quiet)

    def planned(total: int, done: int) -> None:
        bar.reset(total=total)
        bar.update(done)

    def finished(outcome: Any) -> None:
        bar.update()
        if not outcome.ok:
            bar.write(f"failed: {outcome.item_id}: {outcome.error}")

    try:
        report = build_dataset(
            chosen,
            out_dir,
            executor=executor,
            workers=jobs or default_jobs(),
            limit=limit,
            timeout=timeout,
            on_item=finished,
            on_plan=planned,
        )
    finally:
        bar.close()
    summary = report.to_dict()
    emit_rows([summary], ["out_dir", "items", "already_done", "built", "failed", "seconds"], as_json)
    if report.failed:
        click.echo(
            f"sursmr-train: {len(report.failed)} item(s) failed (see {out_dir}/failed/); run again to retry", err=True
        )
        click.get_current_context().exit(ExitCode.INTERNAL)


@main.command()
@click.option(
    "--data",
    "out_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="A built dataset folder.",
)
@click.option(
    "--machines",
    default=None,
    help="Comma-separated SMR jury (default: the machines of the default recipe).",
)
@json_option
def relabel(out_dir: Path, machines: str | None, as_json: bool) -> None:
    """Recompute the SMR proxy of a built dataset over a subset of its machines (no machine runs again).

    Every item keeps per-machine verdicts, so narrowing the jury is cheap.
    The manifest changes, so the next training run caches backbone features again
    (the cache holds the labels beside the features and is keyed on the manifest).

    \b
    Examples:
      sursmr-train relabel --data data/default
      sursmr-train relabel --data data/mine --machines efficientnet_lite0,open_nsfw --json
    """
    from training.datasets.builder import relabel_smr
    from training.datasets.recipe import DEFAULT_MACHINES

    jury = DEFAULT_MACHINES if machines is None else tuple(m.strip() for m in machines.split(",") if m.strip())
    report = relabel_smr(out_dir, jury)
    emit_rows([report.to_dict()], ["out_dir", "items", "changed_labels", "machines"], as_json)


def _non_negative(flag: str, default: float, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A float option ≥ 0 with its default shown."""
    return click.option(flag, type=click.FloatRange(min=0), default=default, show_default=True, help=help_text)


def _input_pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--input-mode / --input-size: score with another input pipeline than the saved one."""
    command = click.option(
        "--input-size", type=click.IntRange(min=32), default=None, help="Resize target or tile side."
    )(command)
    return click.option(
        "--input-mode",
        type=click.Choice(["resize224", "native"]),
        default=None,
        help="Score with this input pipeline instead of the saved one (the weights do not depend on it).",
    )(command)


def _parse_overrides(items: tuple[str, ...]) -> dict[str, Any]:
    import json

    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not FIELD=JSON", param_hint="--set")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # plain strings need no quotes
        parsed[key] = tuple(value) if isinstance(value, list) else value
    return parsed


@main.command()
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset built by `sursmr-train build`.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (resumed when it exists).",
)
@click.option("--model", default="sursmr_effnet_lite0", show_default=True, help="Network config (`sursmr models`).")
@click.option("--stage", type=click.Choice(["pretrain", "finetune"]), default="finetune", show_default=True)
@click.option(
    "--labels",
    "label_kind",
    type=click.Choice(["eq3", "jnd"]),
    default=None,
    help="SUR label [default: eq3 for pretrain, jnd for finetune].",
)
@click.option("--init", default=None, help="Run directory or .pt whose backbone starts this run.")
@click.option("--full", is_flag=True, help="Train the backbone too (GPU path); default caches frozen features.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N samples per split.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch CPU threads (0: default).")
@click.option(
    "--ema",
    "ema_decay",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Score and keep an exponential moving average of the weights with this decay per step (0: off).",
)
@_non_negative("--alpha", 0.5, "Weight of the SUR L1 term (paper Eq. 4: 0.5).")
@_non_negative("--beta", 0.5, "Weight of the SMR L1 term (paper Eq. 4: 0.5).")
@_non_negative("--weight-decay", 0.0, "Decoupled weight decay (AdamW); 0 is the paper's Adam.")
@_non_negative("--identity-share", 0.05, "Extra image-vs-itself samples (SUR = SMR = 1), share of the train split.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="FIELD=JSON",
    help="Override a network config field, e.g. --set fuse_size=[14,14] (repeatable).",
)
@quiet_option
@json_option
def train(
    data_dir: Path,
    out_dir: Path,
    model: str,
    stage: str,
    label_kind: str | None,
    init: str | None,
    full: bool,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    limit: int | None,
    threads: int,
    ema_decay: float,
    alpha: float,
    beta: float,
    weight_decay: float,
    identity_share: float,
    overrides: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Train (or resume) the SUR/SMR predictor on a built dataset (L1 loss, Adam, flips).

    \b
    Examples:
      sursmr-train train --data data/default --out runs/head --epochs 40
      sursmr-train train --data data/default --out runs/pre --stage pretrain --full --device cuda
      sursmr-train train --data data/default --out runs/fine --init runs/pre --full --device cuda
    """
    import shlex
    import sys

    from sursmr_core.outputs import atomic_write_bytes
    from training.train import TrainConfig
    from training.train import train as run_training

    config = TrainConfig(
        data=str(data_dir),
        out=str(out_dir),
        model=model,
        stage=stage,  # type: ignore[arg-type]
        label_kind=label_kind,  # type: ignore[arg-type]
        init=init,
        freeze_backbone=not full,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        limit=limit,
        threads=threads,
        ema_decay=ema_decay,
        alpha=alpha,
        beta=beta,
        weight_decay=weight_decay,
        identity_share=identity_share,
        model_overrides=_parse_overrides(overrides),
    )
    bar = progress(desc="train", quiet=quiet)

    phase: dict[str, Any] = {"desc": None, "total": None}

    def step(desc: str, done: int, total: int) -> None:
        # a disabled (quiet, non-tty) bar keeps no description: track the phase here
        if (phase["desc"], phase["total"]) != (desc, total):
            phase.update(desc=desc, total=total)
            bar.set_description(desc)
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    out_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["sursmr-train", *sys.argv[1:]]) if sys.argv[0].endswith("sursmr-train") else None
    if command:
        # a resumed run appends: the file lists every command that shaped the weights, in order
        history = out_dir / "command.txt"
        previous = history.read_text(encoding="utf-8") if history.is_file() else ""
        atomic_write_bytes(history, (previous + command + "\n").encode())
    try:
        result = run_training(config, log=lambda message: bar.write(message, file=sys.stderr), progress=step)
    finally:
        bar.close()
    summary = {
        "run": str(result.run),
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 1),
        **{f"val_{k}": v for k, v in result.val["overall"].items()},
    }
    emit_rows([summary], list(summary), as_json)


@main.command()
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--labels", "label_kind", type=click.Choice(["eq3", "jnd"]), default="jnd", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N items.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report as JSON here.",
)
@_input_pipeline_options
@quiet_option
@json_option
def evaluate(
    model: str,
    data_dir: Path,
    split: str,
    label_kind: str,
    device: str,
    limit: int | None,
    report_path: Path | None,
    input_mode: str | None,
    input_size: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """MAE and rank correlation of MODEL on a split, next to the level-mean, level-median and SSIM-fit baselines.

    MODEL is a run directory, a .pt checkpoint, a weights name or a .safetensors file.

    \b
    Examples:
      sursmr-train evaluate runs/head --data data/default
      sursmr-train evaluate sursmr-effnet-lite0 --data data/default --json
      sursmr-train evaluate runs/head --data data/default --input-mode native --input-size 224
    """
    import json

    from sursmr_core.outputs import atomic_write_bytes
    from training.evaluate import evaluate as run_evaluation
    from training.evaluate import load_scoring_model

    predictor = load_scoring_model(model, device, input_mode=input_mode, input_size=input_size)
    bar = progress(desc=f"evaluate {split}", quiet=quiet)

    def step(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = run_evaluation(predictor, data_dir, split=split, label_kind=label_kind, limit=limit, progress=step)
    finally:
        bar.close()
    if report_path is not None:
        atomic_write_bytes(report_path, json.dumps(report, indent=2).encode())
    rows = []
    for method, table in [("model", report["model"]), *report["baselines"].items()]:
        for group, values in table.items():
            if isinstance(values, dict):
                rows.append({"method": method, "codec": group, **values})
    emit_rows(rows, ["method", "codec", "samples", "mae_sur", "mae_smr", "srcc_sur", "srcc_smr"], as_json)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--name", required=True, help="Weights name, e.g. sursmr-effnet-lite0.")
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write [default: the package's sursmr/weights/].",
)
@click.option("--fp16/--fp32", default=True, show_default=True, help="Store tensors as float16.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON from `sursmr-train evaluate --report`, recorded as the card's measured metrics.",
)
@_input_pipeline_options
def export(
    run_dir: Path,
    name: str,
    weights_dir: Path | None,
    fp16: bool,
    report_path: Path | None,
    input_mode: str | None,
    input_size: int | None,
) -> None:
    """Write a run's best weights as NAME.safetensors + NAME.json model card (loadable offline by name).

    \b
    Example:
      sursmr-train export runs/head --name sursmr-effnet-lite0 --report runs/head/test.json
      sursmr-train export runs/head --name mine --input-mode native --input-size 224
    """
    from training.export import export_run

    path = export_run(
        run_dir,
        name,
        weights_dir=weights_dir,
        fp16=fp16,
        report_path=report_path,
        input_mode=input_mode,
        input_size=input_size,
    )
    click.echo(str(path))


def _load_commands() -> None:
    # every public module in this package attaches its commands to `main`
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def run() -> None:
    """Console-script entry point."""
    show_warnings_on_stderr()
    main(prog_name="sursmr-train")


_load_commands()

__all__ = ["main", "run"]
