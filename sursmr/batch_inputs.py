"""What a batch works on: files and folders expanded into images, each with its output path, and the state of
those outputs (writable, ours, complete)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sursmr.batch_workers import array_sha256
from sursmr.manifest import MANIFEST_NAME, file_sha256
from sursmr_core.errors import InputError, SursmrError
from sursmr_core.imaging import RGBImage
from sursmr_core.outputs import check_writable

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm", ".pbm"}
)
"""File suffixes (any case) taken from folders; files named on the command line are taken whatever their suffix."""


@dataclass(frozen=True)
class BatchInput:
    """One image of a batch: a file or an array, and where its output goes (None: not written)."""

    source: Path | RGBImage = field(repr=False)
    output: Path | None
    label: str

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, Path)


def _is_ours(name: str) -> bool:
    return name.startswith(".") or ".sursmr." in name or name == MANIFEST_NAME


def _folder_images(folder: Path, recursive: bool, glob: str | None, skip: Path | None) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (skip is None or Path(os.path.realpath(here / d)) != skip)
        )
        if not recursive:
            dirs[:] = []
        for name in sorted(files):
            path = here / name
            if _is_ours(name) or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if glob is not None and not fnmatch.fnmatch(path.relative_to(folder).as_posix(), glob):
                continue
            found.append(path)
    return found


def output_for(source: Path, out_dir: Path | None, extension: str, relative: Path | None = None) -> Path:
    """``out_dir/<relative folder>/<stem>.<ext>`` with an output folder, else ``<stem>.sursmr.<ext>`` beside it."""
    if out_dir is None:
        return source.with_name(f"{source.stem}.sursmr.{extension}")
    parent = out_dir if relative is None else out_dir / relative.parent
    return parent / f"{source.stem}.{extension}"


def plan_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    extension: str,
    out_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    glob: str | None = None,
) -> list[BatchInput]:
    """Files as given and the images in folders (sorted; sub-folders with ``recursive``; ``glob`` filters
    their paths relative to the folder), each with its output path. Raises :class:`InputError` when folders
    were given and none holds an image.
    """
    target = None if out_dir is None else Path(out_dir)
    skip = None if target is None else Path(os.path.realpath(target))
    planned: list[BatchInput] = []
    folders: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            folders.append(path)
            for image in _folder_images(path, recursive, glob, skip):
                relative = image.relative_to(path)
                planned.append(BatchInput(image, output_for(image, target, extension, relative), str(image)))
        else:
            planned.append(BatchInput(path, output_for(path, target, extension), str(path)))
    if not planned:
        where = ", ".join(str(f) for f in folders) or "the arguments"
        hint = "" if recursive else " (add -r for sub-folders)"
        raise InputError(f"no images found in {where}{hint}; extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return planned


def output_problem(output: Path) -> SursmrError | None:
    try:
        check_writable(output)
    except SursmrError as exc:
        return exc
    return None


def output_exists(path: Path) -> bool:
    return os.path.lexists(path)


def output_is_ours(path: Path, written_by_us: Mapping[str, set[str]]) -> bool:
    hashes = written_by_us.get(str(path))
    if not hashes or not path.is_file():
        return False
    try:
        return file_sha256(path) in hashes
    except OSError:
        return False


def output_is_complete(item: BatchInput, record: Mapping[str, Any]) -> bool:
    """The output is there with the recorded bytes, and the input is the one recorded."""
    output = item.output
    if output is None or not output.is_file():
        return False
    try:
        if output.stat().st_size != record.get("bytes") or file_sha256(output) != record.get("output_sha256"):
            return False
        if isinstance(item.source, Path):
            return file_sha256(item.source) == record.get("input_sha256")
        return array_sha256(item.source) == record.get("input_sha256")
    except OSError:
        return False
