"""``sursmr compress``: encode images at the smallest size that meets SUR/SMR targets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sursmr.cli.app import (
    emit_json,
    emit_table,
    export_max_tiles,
    export_runtime,
    jobs_option,
    json_option,
    main,
    max_tiles_option,
    positive_seconds,
    progress,
    quiet_option,
    runtime_option,
    strict_option,
    timeout_option,
)
from sursmr.codec_choice import CODEC_SEARCHES, DEFAULT_CODEC_SEARCH
from sursmr.compress import DEFAULT_TARGET_SMR, DEFAULT_TARGET_SUR
from sursmr.encoding import default_jobs
from sursmr.rate_control import DEFAULT_STRATEGY, STRATEGIES
from sursmr_core.errors import ExitCode

if TYPE_CHECKING:
    from sursmr.batch import BatchOutcome

SHIPPED_MODEL = "sursmr-v2-lite0"
"""``sursmr.predictor.DEFAULT_MODEL``, repeated so that ``--help`` imports no torch (a test keeps them equal)."""

RAY_START_TIMEOUT_S = 300.0
"""``sursmr.batch_workers.DEFAULT_RAY_START_TIMEOUT_S``, repeated so that ``--help`` imports no torch."""

CHOICE_ORDER = "bpg, vvc, jpeg"
"""``sursmr.codec_choice.search_order`` of the registered codecs (their declared ``choice_rank``), repeated so
that ``--help`` imports no codec module (a test keeps them equal)."""

COLUMNS = ["input", "output", "codec", "level", "bytes", "bpp", "sur", "smr", "probes", "seconds"]


def _target(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    if value.strip().lower() in ("none", "off"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number in [0, 1] or 'none'") from None


def _default_text() -> str:
    """What the default confidence is for the shipped model, read from its card (no weights loaded)."""
    from sursmr.confidence import DEFAULT_RELIABILITY, card_default_confidence, card_has_confidence

    name = SHIPPED_MODEL
    card = Path(__file__).resolve().parent.parent / "weights" / f"{name}.json"
    value = card_default_confidence(card)
    rule = f"the confidence with the fewest bytes at ≥ {DEFAULT_RELIABILITY:g} hit rate on validation"
    if value is None:
        if card_has_confidence(card):
            return (
                f"{name} has none: {rule} would need a margin its predictions cannot reach at the default "
                "targets, so no margin"
            )
        return f"{name} has no calibration, so no margin"
    return f"for {name}: {value:g}, {rule}; no margin where the card has none for the targets"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--codec",
    "codec_name",
    required=True,
    help="Codec name (see `sursmr codecs`), a comma list such as jpeg,bpg, or auto (every available codec): "
    "with several, each image gets the smallest passing bitstream of them, named with the winner's extension "
    "(see --codec-search).",
)
@click.option(
    "--codec-search",
    type=click.Choice(CODEC_SEARCHES),
    default=DEFAULT_CODEC_SEARCH,
    show_default=True,
    help="With several codecs: verify searches one codec, the first listed in the order its adapter declares "
    f"({CHOICE_ORDER}), and encodes one level of each other codec: the level "
    "its prior curve predicts, moved by what that search learnt about the image, kept only when the predictor "
    "says it passes (a codec without a curve is searched). full searches every codec. Measured on 74 test crops "
    "at SUR >= 0.75, SMR >= 0.9 (SMR labels of the model's training jury), three codecs "
    "(benchmarks/results/codec_auto.md): verify 5.16 encodes per image at 1.03x the label oracle's best codec's "
    "bytes (true hit rate 68%), full 9.5 encodes at 1.00x (66%).",
)
@click.option(
    "--target-sur",
    default=str(DEFAULT_TARGET_SUR),
    show_default=True,
    callback=_target,
    help="Minimum predicted SUR in [0, 1], or 'none'.",
)
@click.option(
    "--target-smr",
    default=str(DEFAULT_TARGET_SMR),
    show_default=True,
    callback=_target,
    help="Minimum predicted SMR in [0, 1], or 'none'.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Share of images that should truly meet the targets, e.g. 0.9: the margin is read from the model card's "
    f"calibration (`sursmr models` lists the confidences). [default: the card's default; {_default_text()}]",
)
@click.option(
    "--margin",
    type=float,
    default=None,
    help="For experts, instead of --confidence: a fixed margin added to every target (a level must reach "
    "target + margin).",
)
@click.option("--model", default=None, help="Model name or .safetensors path [default: the shipped model].")
@click.option("--device", default="auto", show_default=True, help="Where the predictor runs: auto, cpu or cuda.")
@runtime_option
@max_tiles_option
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES.names()),
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="How levels are searched: predicted starts from the model card's population curve, moves it onto the "
    "image after each probe (about 3 encodes per image, against bisect's 6-9; bisect when the card has no "
    "curve); interpolate is experimental, exhaustive tries every level.",
)
@click.option(
    "--max-probes",
    type=click.IntRange(min=1),
    default=None,
    help="Most levels to evaluate per image [default: no cap].",
)
@click.option(
    "--thorough",
    is_flag=True,
    help="With the predicted search, also encode the chosen level's cheaper neighbour when this image's probes "
    "already say it fails (0.25-0.30 more encodes per image on the validation split; by default the search "
    "stops there).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder, created if needed; it mirrors the input folders and holds sursmr-manifest.jsonl "
    "[default: <stem>.sursmr.<ext> beside each input, no manifest].",
)
@click.option("-r", "--recursive", is_flag=True, help="Take images from sub-folders of folders too.")
@click.option(
    "--glob", "pattern", default=None, help="Only images in folders whose relative path matches, e.g. '*.png'."
)
@click.option("--resume", is_flag=True, help="Skip images the manifest records as finished with these settings.")
@click.option("--force", is_flag=True, help="Replace existing output files that this batch did not write.")
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Manifest file [default: OUT/sursmr-manifest.jsonl with -o].",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run images in local worker processes or on Ray workers.",
)
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster [default: start a local one].")
@click.option(
    "--ray-start-timeout",
    type=float,
    callback=positive_seconds,
    default=RAY_START_TIMEOUT_S,
    show_default=True,
    help="Seconds a local Ray may take to start (Ray's own limit, 30 s, is too short on a busy machine).",
)
@jobs_option
@timeout_option
@strict_option
@quiet_option
@json_option
def compress(
    paths: tuple[Path, ...],
    codec_name: str,
    codec_search: str,
    target_sur: float | None,
    target_smr: float | None,
    confidence: float | None,
    margin: float | None,
    model: str | None,
    device: str,
    runtime: str,
    max_tiles: str | None,
    strategy: str,
    max_probes: int | None,
    thorough: bool,
    out_dir: Path | None,
    recursive: bool,
    pattern: str | None,
    resume: bool,
    force: bool,
    manifest_path: Path | None,
    executor: str,
    ray_address: str | None,
    ray_start_timeout: float,
    jobs: int | None,
    timeout: float,
    strict: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Encode each image at the smallest size whose predicted SUR and SMR meet the targets.

    PATH is an image or a folder of images (with -r, its sub-folders too; --glob
    filters). SUR and SMR are predictions of the model. By default a level must
    reach SUR ≥ 0.75 (three in four viewers see no difference) and SMR ≥ 0.9
    (nine in ten machine-vision models keep their answer); give 'none' to drop one.

    With -o, outputs mirror the input folders under OUT and every image gets a
    line in OUT/sursmr-manifest.jsonl; --resume skips images finished with the
    same input, codec, targets, options and model. An output appears complete
    or not at all; an existing file is replaced only with --force (or when the
    manifest shows this tool wrote it). -j runs images in that many worker
    processes (one image: its encodes); every image is tried, failures are
    reported per image (with --json, a line with "error") and the exit code is
    the most severe one: 5 when a target is unreachable.

    \b
    Examples:
      sursmr compress photo.png --codec jpeg
      sursmr compress photo.png --codec auto
      sursmr compress photos/ -r --codec jpeg,bpg -o small/ --json
      sursmr compress photo.png --codec auto --codec-search full
      sursmr compress photo.png --codec jpeg --target-sur 0.5 --target-smr none --confidence 0.9
      sursmr compress photos/ -r --codec jpeg -o small/ -j 2 --json
      sursmr compress photos/ -r --glob '*.png' --codec bpg -o small/ --resume
      sursmr compress photos/ -r --codec jpeg -o small/ --executor ray --ray-address auto
      sursmr compress photo.png --codec vvc --target-smr 0.95 --margin 0.02 --max-probes 8
    """
    import codec_adapters
    from sursmr.batch import compress_many, plan_inputs
    from sursmr.codec_choice import is_choice, resolve_codecs
    from sursmr_core.outputs import check_writable_folder

    # an unknown name, or auto with no codec available, stops here (exit 2) before any work
    codecs = resolve_codecs(codec_name)
    extension = codec_adapters.get(codecs[0]).extension
    if out_dir is not None:
        check_writable_folder(out_dir)  # an impossible -o fails now, not after every search
    inputs = plan_inputs(paths, extension=extension, out_dir=out_dir, recursive=recursive, glob=pattern)
    several = len(inputs) > 1
    workers = (jobs or default_jobs()) if several or executor == "ray" else 1
    export_runtime(runtime)  # worker processes inherit it and load the model with it
    export_max_tiles(max_tiles)
    # bad targets, options or codecs stop here, before any work; the model loads after the first image is read
    outcomes = compress_many(
        inputs,
        codec=codec_name if is_choice(codec_name) else codecs[0],
        codec_search=codec_search,
        target_sur=target_sur,
        target_smr=target_smr,
        margin=margin,
        confidence=confidence,
        predictor=model,
        device=device,
        strategy=strategy,
        max_probes=max_probes,
        thorough=thorough,
        timeout=timeout,
        strict=strict,
        out_dir=out_dir,
        write=True,
        manifest=manifest_path,
        resume=resume,
        force=force,
        workers=workers,
        image_jobs=None if several else jobs,
        executor=executor,
        ray_address=ray_address,
        ray_start_timeout=ray_start_timeout,
        notify=None if quiet else lambda message: click.echo(f"sursmr compress: {message}", err=True),
    )
    tally = BatchTally()
    rows: list[dict[str, Any]] = []
    bar = progress(total=len(inputs), desc="compress", quiet=quiet or not several)
    try:
        for outcome in outcomes:
            row = tally.add(outcome)
            bar.update()
            if as_json:
                emit_json(row)
            elif "error" in row:
                click.echo(f"sursmr compress: error: {row['error']}", err=True)
            rows.append(row)
    finally:
        bar.close()
    done = [row for row in rows if "error" not in row and not row.get("skipped")]
    if done and not as_json:
        emit_table(done, COLUMNS)
    if several and not quiet:
        click.echo(tally.summary(), err=True)
    if tally.worst != ExitCode.OK:
        click.get_current_context().exit(tally.worst)


class BatchTally:
    """Rows for the output and the end-of-batch summary: images, bytes in/out, saved, failures, images/s."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.images = self.skipped = self.failed = 0
        self.bytes_in = self.bytes_out = 0
        self.worst = ExitCode.OK

    def add(self, outcome: BatchOutcome) -> dict[str, Any]:
        row: dict[str, Any] = {
            "input": outcome.input,
            "output": None if outcome.output is None else str(outcome.output),
        }
        if outcome.skipped:
            self.skipped += 1
            row.update(skipped=True, **{k: outcome.record.get(k) for k in ("codec", "level", "bytes", "sur", "smr")})
        elif outcome.result is not None:
            self.images += 1
            self.bytes_in += int(outcome.record.get("input_bytes") or 0)
            self.bytes_out += outcome.result.nbytes
            row.update(outcome.result.summary())
            if "per_codec" in outcome.record:
                row["per_codec"] = outcome.record["per_codec"]
        else:
            self.failed += 1
            self.worst = max(self.worst, outcome.exit_code)
            row.update(output=None, error=outcome.error, exit_code=outcome.exit_code)
            if outcome.closest is not None:
                row["closest"] = dict(outcome.closest)
        return row

    def summary(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        saved = 1.0 - self.bytes_out / self.bytes_in if self.bytes_in else 0.0
        return (
            f"sursmr compress: {self.images} images compressed, {self.skipped} skipped, {self.failed} failed; "
            f"{self.bytes_in} bytes in, {self.bytes_out} out ({saved:.1%} saved); "
            f"{self.images / elapsed:.2f} images/s over {elapsed:.1f} s"
        )
