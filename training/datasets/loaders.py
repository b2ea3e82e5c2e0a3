"""Loaders for real SUR datasets: KonJND-1k, MCL-JCI and VVC-JND, in their published layouts.

None of these datasets can be downloaded here; a user who has them points a
loader at the unpacked folder. Each loader reads the per-subject JND points
(the first level, in the codec's quality order, at which a subject saw a
difference) and turns them into SUR per level, SUR(level) = 1 − ECDF(level),
the ECDF taken over the subjects' JND points in the codec's quality order.

Precisely: order the levels from best to worst quality (rank 0 = best). A
subject with JND point *j* noticed every level of rank ≥ rank(*j*), so is
satisfied at *level* iff rank(*level*) < rank(*j*). Hence SUR(level) = share
of subjects with rank(*j*) > rank(*level*) = 1 − #{rank(*j*) ≤ rank(*level*)}/n.
SUR is therefore non-increasing from best to worst quality, in [0, 1].

Every loader returns :class:`JndRecord` objects (one per source image and
codec). Layout assumptions are documented per loader; they were taken from
public code that reads these datasets and may need a flag if a release differs.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sursmr_core.errors import InputError
from sursmr_core.registry import Registry


@dataclass(frozen=True)
class JndRecord:
    """Real SUR of one source image under one codec.

    ``levels``: codec levels ordered best → worst quality (JPEG quality
    100→1, BPG ``q`` / VVC QP ascending). ``sur``: SUR at each level, in
    [0, 1], non-increasing. ``jnd_points``: the subjects' first-JND levels (codec
    units). ``distorted``: path of the compressed image per level, ``None``
    where the dataset ships none.
    """

    dataset: str
    image_id: str
    codec: str
    levels: tuple[int, ...]
    sur: tuple[float, ...]
    jnd_points: tuple[int, ...]
    reference: Path
    distorted: tuple[Path | None, ...]

    @property
    def subjects(self) -> int:
        return len(self.jnd_points)


def sur_from_jnd_points(jnd_points: Sequence[int], levels_best_to_worst: Sequence[int]) -> np.ndarray:
    """SUR at each level (float64 array, same order) from per-subject first-JND levels.

    Raises :class:`InputError` for an empty subject list or a JND point that is not one of the levels.
    """
    if len(jnd_points) == 0:
        raise InputError("SUR needs at least one subject's JND point")
    rank = {level: i for i, level in enumerate(levels_best_to_worst)}
    unknown = sorted({p for p in jnd_points if p not in rank})
    if unknown:
        raise InputError(f"JND points {unknown} are not among the dataset's levels")
    point_ranks = np.sort(np.array([rank[p] for p in jnd_points]))
    level_ranks = np.arange(len(levels_best_to_worst))
    noticed = np.searchsorted(point_ranks, level_ranks, side="right")
    # (n − noticed) / n is 1 − ECDF, computed without the rounding of 1 − k/n
    return np.asarray((len(point_ranks) - noticed) / len(point_ranks), dtype=np.float64)


def _record(
    dataset: str,
    image_id: str,
    codec: str,
    levels: Sequence[int],
    points: Sequence[int],
    reference: Path,
    distorted: Sequence[Path | None],
) -> JndRecord:
    sur = sur_from_jnd_points(points, levels)
    return JndRecord(
        dataset,
        image_id,
        codec,
        tuple(levels),
        tuple(float(v) for v in sur),
        tuple(int(p) for p in points),
        reference,
        tuple(distorted),
    )


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(f"{what} not found: {path} (is this the unpacked dataset folder?)")
    return path


# --- KonJND-1k ----------------------------------------------------------------------

KONJND_JPEG_LEVELS = tuple(range(100, 0, -1))  # JPEG quality, best first
KONJND_BPG_LEVELS = tuple(range(0, 51))  # bpgenc -q, best first


def load_konjnd(root: str | Path, codecs: Iterable[str] = ("jpeg", "bpg")) -> list[JndRecord]:
    """KonJND-1k (Lin et al., TCSVT 2022; 1,008 sources, JPEG and BPG).

    Layout assumed (the database archive, as read by public code):

    * ``subjective_ratings.csv`` with columns ``image_id`` (source file name,
      e.g. ``123.png``), ``Compression type`` (``JPEG`` | ``BPG``), ``No. of
      ratings``, ``mean``, ``std`` and ``ratings`` — a JSON list of the
      subjects' PJND points as *distortion indices* (1 = least distorted);
    * ``source_image/<image_id>``;
    * ``jpeg/<stem>_JPEG_<iii>.jpg`` and ``bpg/<stem>_BPG_<iii>.png`` for
      distortion index ``iii`` (3 digits).

    Index → codec level (assumption, documented in the paper's setup): JPEG
    index *i* is quality ``101 − i`` (i = 1..100), BPG index *i* is ``q = i − 1``
    (i = 1..51). Records carry codec levels, best quality first.
    """
    base = Path(root)
    table = _require(base / "subjective_ratings.csv", "KonJND-1k subjective_ratings.csv")
    wanted = {c.lower() for c in codecs}
    records: list[JndRecord] = []
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            kind = (row.get("Compression type") or "").strip().upper()
            codec = {"JPEG": "jpeg", "BPG": "bpg"}.get(kind)
            if codec is None or codec not in wanted:
                continue
            image_id = (row.get("image_id") or "").strip()
            try:
                indices = [round(float(v)) for v in json.loads(row.get("ratings") or "[]")]
            except (json.JSONDecodeError, TypeError, ValueError):
                raise InputError(f"KonJND-1k: unreadable ratings for {image_id!r} ({kind})") from None
            stem = Path(image_id).stem
            if codec == "jpeg":
                levels, offset, sign = KONJND_JPEG_LEVELS, 101, -1  # quality = 101 − index
                folder, tag, suffix = base / "jpeg", "JPEG", "jpg"
            else:
                levels, offset, sign = KONJND_BPG_LEVELS, -1, 1  # q = index − 1
                folder, tag, suffix = base / "bpg", "BPG", "png"
            # index = (level − offset) · sign inverts both mappings
            files = [_existing(folder / f"{stem}_{tag}_{(lv - offset) * sign:03d}.{suffix}") for lv in levels]
            points = [offset + sign * i for i in indices]
            records.append(_record("konjnd-1k", stem, codec, levels, points, base / "source_image" / image_id, files))
    return records


# --- MCL-JCI ------------------------------------------------------------------------

MCL_JCI_LEVELS = tuple(range(100, 0, -1))  # JPEG quality, best first


def _mcl_reference(base: Path, name: str) -> Path:
    for folder in ("source_images/[BMP]", "source_images", "ref", "reference"):
        for suffix in (".bmp", ".png"):
            path = base / folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return base / "source_images" / f"{name}.bmp"


def load_mcl_jci(root: str | Path, table: str = "MCL-JCI_JND_samples.csv") -> list[JndRecord]:
    """MCL-JCI (Jin et al., 2016; 50 sources ``ImageJND_SRC01..50``, JPEG quality 1..100, ~30 subjects).

    Layout assumed:

    * ``source_images/[BMP]/ImageJND_SRCnn.bmp`` (also ``source_images/``,
      ``ref/``; ``.png`` accepted);
    * ``distorted_image/ImageJND_SRCnn/ImageJND_SRCnn_QQQ.jpg`` for JPEG
      quality ``QQQ`` (3 digits);
    * the first-JND samples per subject as a CSV ``table`` with columns
      ``image`` (``ImageJND_SRCnn`` or its number ``nn``) and ``jnd_samples``
      (the subjects' first-JND JPEG qualities, separated by spaces, commas or
      semicolons). MCL-JCI distributes these samples as a spreadsheet (one
      row per image, samples in one cell); export that sheet to this CSV.
    """
    base = Path(root)
    path = _require(base / table, "MCL-JCI JND sample table")
    records: list[JndRecord] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            raw_name = (row.get("image") or "").strip()
            if not raw_name:
                continue
            name = f"ImageJND_SRC{int(raw_name):02d}" if raw_name.isdigit() else raw_name
            try:
                points = [round(float(v)) for v in re.split(r"[\s,;]+", row.get("jnd_samples") or "") if v]
            except ValueError:
                raise InputError(f"MCL-JCI: unreadable jnd_samples for {name}") from None
            records.append(
                _record(
                    "mcl-jci",
                    name,
                    "jpeg",
                    MCL_JCI_LEVELS,
                    points,
                    _mcl_reference(base, name),
                    [_existing(base / "distorted_image" / name / f"{name}_{q:03d}.jpg") for q in MCL_JCI_LEVELS],
                )
            )
    return records


# --- VVC-JND ------------------------------------------------------------------------

VVC_JND_LEVELS = tuple(range(13, 52))  # VVC QP 13..51 (39 levels), best first


def load_vvc_jnd(root: str | Path, table: str = "jnd_points.csv") -> list[JndRecord]:
    """VVC-JND (202 sources, VVC intra at QP 13..51, 39 levels).

    Layout assumed (no public reader was found to confirm it; adapt with a
    small CSV export if your copy differs):

    * ``reference/<image>.png``;
    * ``distorted/<image>/<image>_QP<qp>.png`` (decoded VVC at that QP; optional);
    * ``table``: long-format CSV with one row per subject and image, columns
      ``image``, ``subject`` and ``jnd_qp`` (the first QP the subject noticed).
    """
    base = Path(root)
    path = _require(base / table, "VVC-JND JND point table")
    points: dict[str, list[int]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            image = (row.get("image") or "").strip()
            try:
                points[image].append(round(float(row["jnd_qp"])))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"VVC-JND: row without a numeric jnd_qp: {row}") from None
    return [
        _record(
            "vvc-jnd",
            image,
            "vvc",
            VVC_JND_LEVELS,
            samples,
            base / "reference" / f"{image}.png",
            [_existing(base / "distorted" / image / f"{image}_QP{qp}.png") for qp in VVC_JND_LEVELS],
        )
        for image, samples in sorted(points.items())
    ]


@dataclass(frozen=True)
class SurDataset:
    name: str
    description: str
    load: Callable[[str | Path], list[JndRecord]]


SUR_DATASETS: Registry[SurDataset] = Registry("SUR dataset")
SUR_DATASETS.register(SurDataset("konjnd-1k", "KonJND-1k: 1,008 sources, JPEG + BPG, crowdsourced PJND", load_konjnd))
SUR_DATASETS.register(SurDataset("mcl-jci", "MCL-JCI: 50 sources, JPEG quality 1..100, lab JND", load_mcl_jci))
SUR_DATASETS.register(SurDataset("vvc-jnd", "VVC-JND: 202 sources, VVC QP 13..51", load_vvc_jnd))


def load_sur_dataset(name: str, root: str | Path) -> list[JndRecord]:
    """Load a registered SUR dataset by name from its unpacked folder."""
    return SUR_DATASETS.get(name).load(root)
