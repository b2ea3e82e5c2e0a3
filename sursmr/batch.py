"""Many images: folders, worker processes or a Ray cluster, a manifest, and resuming after a crash.

>>> from sursmr.batch import compress_many
>>> for outcome in compress_many(["photos/"], codec="jpeg", out_dir="small/", recursive=True, workers=2):
...     print(outcome.input, outcome.error or outcome.result.level)

What happens, in order (the CLI's ``sursmr compress PATH...`` is this):

1. :func:`plan_inputs` expands folders (``recursive``, ``glob``) into images
   and their outputs: under ``out_dir`` the input tree is mirrored, without it
   each output sits beside its input as ``<stem>.sursmr.<ext>``.
2. With a manifest (``out_dir/sursmr-manifest.jsonl`` by default) the batch
   locks it, removes temporary files a killed run of ours left, and with
   ``resume`` skips every image whose finished line matches (same input
   SHA-256, codec, targets, search, codec options, model and its hash) and
   whose output is there with the recorded SHA-256.
3. An existing output is replaced only with ``force``, or when the manifest
   shows it is ours (its bytes match a line we wrote for that path).
4. Images run in ``workers`` processes (``executor="local"``) or Ray workers
   (``executor="ray"``); each worker loads the model once and sends back the
   chosen bitstream. This process alone writes outputs and the manifest:
   temporary file, then the manifest line, then the final name, so an output
   never exists without its line, and a crash at any moment is repaired by a
   rerun with ``resume``. A worker that dies is replaced and its images run
   again (Ray retries the task; local pools restart, at most
   :data:`POOL_RESTARTS` times), each image is reported once.

Outcomes are yielded in completion order, one per input, errors included.
Inputs are planned in :mod:`sursmr.batch_inputs`, images run in
:mod:`sursmr.batch_workers`, manifest lines are made in :mod:`sursmr.batch_records`.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import codec_adapters
from codec_adapters.base import DEFAULT_TIMEOUT_S
from sursmr.batch_inputs import (
    BatchInput,
    output_exists,
    output_is_complete,
    output_is_ours,
    output_problem,
    plan_inputs,
)
from sursmr.batch_records import manifest_record, model_identity, record_matches
from sursmr.batch_workers import (
    DEFAULT_RAY_START_TIMEOUT_S,
    AnySettings,
    ImageAnswer,
    PredictorSpec,
    run_inline,
    run_local_pool,
    run_ray,
)
from sursmr.codec_choice import DEFAULT_CODEC_SEARCH, ChoiceSettings, is_choice
from sursmr.compress import (
    DEFAULT_TARGET_SMR,
    DEFAULT_TARGET_SUR,
    CompressResult,
    CompressSettings,
)
from sursmr.manifest import MANIFEST_NAME, Manifest, remove_stale_temps, write_temp
from sursmr.rate_control import DEFAULT_STRATEGY
from sursmr_core.errors import ExitCode, InputError, ModelError, OutputError, SursmrError
from sursmr_core.imaging import RGBImage

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one input: a ``result`` (with ``output`` written unless it was None), or an ``error``.

    ``skipped``: finished by an earlier run (``resume``); then ``record`` is its
    manifest line and ``result`` is None. ``record`` is the manifest line of
    this image (also when no manifest is kept).
    """

    index: int
    input: str
    output: Path | None
    result: CompressResult | None = None
    error: str | None = None
    exit_code: int = ExitCode.OK
    skipped: bool = False
    record: Mapping[str, Any] = field(default_factory=dict)
    closest: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RaySetup:
    """Where Ray runs (``address``; None: a local one, started within ``start_timeout`` s) and who hears of it."""

    address: str | None = None
    start_timeout: float = DEFAULT_RAY_START_TIMEOUT_S
    notify: Callable[[str], None] | None = None


# --- the batch ---------------------------------------------------------------------------------------------------


def _extensions(settings: AnySettings) -> list[str]:
    """The output extensions an image may get: one per codec of a choice, else none to change."""
    return settings.extensions if isinstance(settings, ChoiceSettings) else []


def _variants(output: Path, extensions: list[str]) -> list[Path]:
    """``output`` under each codec's extension (a choice's output is named after the codec that wins)."""
    return [output.with_suffix(f".{ext}") for ext in dict.fromkeys(extensions)] if extensions else [output]


def _as_inputs(
    inputs: Iterable[str | os.PathLike[str] | RGBImage | BatchInput],
    extension: str,
    out_dir: Path | None,
    recursive: bool,
    glob: str | None,
) -> list[BatchInput]:
    planned: list[BatchInput] = []
    for position, given in enumerate(inputs):
        if isinstance(given, BatchInput):
            planned.append(given)
        elif isinstance(given, np.ndarray):
            output = None if out_dir is None else out_dir / f"image-{position:06d}.{extension}"
            planned.append(BatchInput(given, output, f"<array {position}>"))
        else:
            planned.extend(plan_inputs([given], extension=extension, out_dir=out_dir, recursive=recursive, glob=glob))
    return planned


def compress_many(
    inputs: Iterable[str | os.PathLike[str] | RGBImage | BatchInput],
    *,
    codec: str | list[str],
    codec_search: str = DEFAULT_CODEC_SEARCH,
    target_sur: float | None = DEFAULT_TARGET_SUR,
    target_smr: float | None = DEFAULT_TARGET_SMR,
    margin: float | None = None,
    confidence: float | None = None,
    predictor: PredictorSpec = None,
    device: str = "auto",
    strategy: str = DEFAULT_STRATEGY,
    max_probes: int | None = None,
    thorough: bool = False,
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    strict: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    write: bool | None = None,
    manifest: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    recursive: bool = False,
    glob: str | None = None,
    workers: int = 1,
    image_jobs: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    ray_start_timeout: float = DEFAULT_RAY_START_TIMEOUT_S,
    notify: Callable[[str], None] | None = None,
) -> Iterator[BatchOutcome]:
    """Compress every input (paths, folders, uint8 RGB arrays or :class:`BatchInput`) and yield one
    :class:`BatchOutcome` per image in completion order; see the module docstring.

    Targets, search and codec arguments are those of :func:`sursmr.compress.compress_to_target`;
    ``codec`` may also be ``auto`` or a list (``"jpeg,bpg"``): each image gets
    the smallest passing bitstream of those codecs (:mod:`sursmr.codec_choice`),
    its output is named with the winner's extension and its manifest line
    records every codec's outcome under ``per_codec``; ``codec_search``
    (``verify`` or ``full``) says how the codecs are searched there.
    ``out_dir``: where outputs go (the input tree mirrored; arrays become
    ``image-NNNNNN.<ext>``) and where the manifest lives; without it outputs
    are written beside their inputs only when ``write`` is true (arrays are
    then not written; the bitstream is in ``outcome.result.data``).
    ``manifest``: another manifest path. ``resume`` skips images a previous
    run finished (it needs a manifest); ``force`` replaces existing files.
    ``workers``: image worker processes (1: in this process); ``image_jobs``:
    encoder processes per image (default 1 when ``workers`` > 1, else the
    cores). ``executor``: ``local`` or ``ray`` (``ray_address``: an existing
    cluster; default: a local Ray with ``workers`` CPUs, given
    ``ray_start_timeout`` seconds to start). ``notify`` receives one-line
    messages about the run (how long Ray took to start), e.g. for stderr.

    Bad arguments raise :class:`InputError` before any work; failures of one
    image are yielded as outcomes; a model that cannot load stops the batch
    with :class:`~sursmr_core.errors.ModelError`.
    """
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be at least 1, got {workers!r}")
    if not (isinstance(ray_start_timeout, int | float) and math.isfinite(ray_start_timeout) and ray_start_timeout > 0):
        raise InputError(f"the Ray start timeout must be a positive number of seconds, got {ray_start_timeout!r}")
    common: dict[str, Any] = {
        "target_sur": target_sur,
        "target_smr": target_smr,
        "margin": margin,
        "confidence": confidence,
        "strategy": strategy,
        "max_probes": max_probes,
        "thorough": thorough,
        "jobs": image_jobs if image_jobs is not None else (1 if workers > 1 else None),
        "options": options,
        "timeout": timeout,
        "strict": strict,
    }
    settings: AnySettings = (
        CompressSettings.create(codec=codec, **common)
        if isinstance(codec, str) and not is_choice(codec)
        else ChoiceSettings.create(codecs=codec, codec_search=codec_search, **common)
    )
    extensions = _extensions(settings)
    extension = extensions[0] if extensions else codec_adapters.get(settings.codec).extension
    target_dir = None if out_dir is None else Path(out_dir)
    writing = target_dir is not None or bool(write)
    planned = _as_inputs(inputs, extension, target_dir, recursive, glob)
    if not writing:
        planned = [BatchInput(item.source, None, item.label) for item in planned]
    manifest_path = (
        Path(manifest) if manifest is not None else (None if target_dir is None else target_dir / MANIFEST_NAME)
    )
    if resume and manifest_path is None:
        raise InputError("resume needs a manifest: give an output folder (-o) or a manifest path")
    ray = RaySetup(ray_address, float(ray_start_timeout), notify)
    return _run(planned, settings, predictor, device, manifest_path, resume, force, workers, executor, ray)


def _run(
    planned: list[BatchInput],
    settings: AnySettings,
    predictor: PredictorSpec,
    device: str,
    manifest_path: Path | None,
    resume: bool,
    force: bool,
    workers: int,
    executor: str,
    ray: RaySetup,
) -> Iterator[BatchOutcome]:
    book = None if manifest_path is None else Manifest.open(manifest_path)
    try:
        yield from _batch(planned, settings, predictor, device, book, resume, force, workers, executor, ray)
    finally:
        if book is not None:
            book.close()


def _batch(
    planned: list[BatchInput],
    settings: AnySettings,
    predictor: PredictorSpec,
    device: str,
    book: Manifest | None,
    resume: bool,
    force: bool,
    workers: int,
    executor: str,
    ray: RaySetup,
) -> Iterator[BatchOutcome]:
    outputs = [item.output for item in planned if item.output is not None]
    if book is not None:
        remove_stale_temps({path.parent for path in outputs})  # the lock is ours: no other batch writes here
    written_by_us: dict[str, set[str]] = {}
    latest: dict[str, Mapping[str, Any]] = {}
    for record in book.finished() if book is not None else ():
        written_by_us.setdefault(str(record["output"]), set()).add(str(record.get("output_sha256")))
        latest[str(record["output"])] = record
    model = model_identity(predictor) if resume else (None, None)

    todo: list[tuple[int, BatchInput]] = []
    claimed: dict[Path, str] = {}
    checked: dict[Path, SursmrError | None] = {}  # one write probe per output folder, not per image
    extensions = _extensions(settings)
    for index, item in enumerate(planned):
        problem: SursmrError | None = None
        variants = [] if item.output is None else _variants(item.output, extensions)
        if item.output is not None:
            # realpath, unlike Path.resolve on Python 3.11, does not raise on a symbolic link loop
            keys = [Path(os.path.realpath(variant)) for variant in variants]
            taken = next((claimed[key] for key in keys if key in claimed), None)
            if isinstance(item.source, Path) and Path(os.path.realpath(item.source)) in keys:
                problem = InputError(
                    f"{item.label}: the output would overwrite the input; choose another folder with -o"
                )
            elif taken is not None:
                problem = InputError(f"{item.label}: output {item.output} is already used by {taken}")
            else:
                if item.output.parent not in checked:
                    checked[item.output.parent] = output_problem(item.output)
                problem = checked[item.output.parent]
            claimed.update(dict.fromkeys(keys, item.label))
        if problem is not None:
            yield BatchOutcome(index, item.label, item.output, error=str(problem), exit_code=problem.exit_code)
            continue
        if resume and item.output is not None:
            finished = None
            for variant in variants:  # a choice between codecs finished under the winner's name
                done = latest.get(str(variant))
                if (
                    done is not None
                    and record_matches(done, settings, model)
                    and output_is_complete(BatchInput(item.source, variant, item.label), done)
                ):
                    finished = BatchOutcome(index, item.label, variant, skipped=True, record=done)
                    break
            if finished is not None:
                yield finished
                continue
        stranger = next(
            (
                variant
                for variant in variants
                if not force and output_exists(variant) and not output_is_ours(variant, written_by_us)
            ),
            None,
        )
        if stranger is not None:
            yield BatchOutcome(
                index,
                item.label,
                item.output,
                error=f"{item.label}: {stranger} exists; use --force to replace it",
                exit_code=ExitCode.USAGE,
            )
            continue
        todo.append((index, item))

    if not todo:
        return
    tasks = [(index, item.source) for index, item in todo]
    if executor == "ray":
        answers = run_ray(tasks, settings, predictor, device, workers, ray.address, ray.start_timeout, ray.notify)
    elif workers > 1 and len(todo) > 1:
        answers = run_local_pool(tasks, settings, predictor, device, min(workers, len(todo)))
    else:
        answers = run_inline(tasks, settings, predictor, device)
    by_index: dict[int, BatchInput] = dict(todo)
    try:
        for answer in answers:
            if answer.index not in by_index:
                continue  # already reported (a retried worker answered twice)
            item = by_index.pop(answer.index)
            if extensions and answer.result is not None and item.output is not None:
                # a choice between codecs: the output takes the winning codec's extension
                item = BatchInput(item.source, item.output.with_suffix(f".{answer.result.extension}"), item.label)
            if answer.fatal:
                error = ModelError(answer.error or "the model cannot be loaded")
                error.exit_code = answer.exit_code  # a bad device is a usage error, missing weights a model one
                raise error
            yield _finish(item, answer, settings, book, model)
    finally:
        close = getattr(answers, "close", None)
        if close is not None:
            close()


def _finish(
    item: BatchInput,
    answer: ImageAnswer,
    settings: AnySettings,
    book: Manifest | None,
    model: tuple[str | None, str | None],
) -> BatchOutcome:
    """Write the output (temporary file, manifest line, final name) and describe the outcome."""
    result = answer.result
    if result is None or item.output is None:
        record = manifest_record(item, settings, answer, model, None)
        if book is not None:
            book.append(record)
        return BatchOutcome(
            answer.index,
            item.label,
            item.output,
            result=result,
            error=answer.error,
            exit_code=answer.exit_code,
            record=record,
            closest=answer.closest,
        )
    try:
        temp = write_temp(item.output, result.data)
    except OSError as exc:
        _stop_if_no_output_can_be_written(item, exc)
        return _write_failed(item, answer, settings, book, model, exc)
    try:
        record = manifest_record(item, settings, answer, model, hashlib.sha256(result.data).hexdigest())
        if book is not None:
            book.append(record)  # a full disk here raises OutputError: the manifest is cut back, the batch stops
        os.replace(temp, item.output)
    except OSError as exc:  # e.g. a name too long for the file system; --resume repairs the line above
        temp.unlink(missing_ok=True)
        _stop_if_no_output_can_be_written(item, exc)
        return _write_failed(item, answer, settings, book, model, exc)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return BatchOutcome(answer.index, item.label, item.output, result=result, record=record)


STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
"""Write failures no later image can escape (full disk, quota, read-only or failing file system): they stop the
batch with :class:`OutputError` instead of failing every remaining image after its search."""


def _stop_if_no_output_can_be_written(item: BatchInput, exc: OSError) -> None:
    if exc.errno in STOPPING_ERRNOS:
        raise OutputError(
            f"{item.output}: cannot be written ({exc.strerror or exc}); the batch stops here. Outputs written so far "
            "are complete and in the manifest: make room or fix the folder, then run again with --resume"
        ) from exc


def _write_failed(
    item: BatchInput,
    answer: ImageAnswer,
    settings: AnySettings,
    book: Manifest | None,
    model: tuple[str | None, str | None],
    exc: OSError,
) -> BatchOutcome:
    failed = ImageAnswer(
        answer.index,
        None,
        answer.input_sha256,
        answer.input_bytes,
        answer.seconds,
        f"{item.label}: cannot write {item.output} ({exc.strerror or exc})",
        ExitCode.USAGE,
    )
    return _finish(BatchInput(item.source, None, item.label), failed, settings, book, model)


__all__ = ["EXECUTORS", "BatchInput", "BatchOutcome", "compress_many", "plan_inputs"]
