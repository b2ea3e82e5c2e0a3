"""SMR labels from our machine zoo: a PROXY of the paper's Satisfied Machine Ratio.

Paper Eq. 1–2: a machine X is satisfied with a compressed image when its
perception result equals (or stays close enough to) its result on the
original, and SMR is the share of satisfied machines. Our SMR is computed
over *our* zoo (:data:`training.machines.MACHINES`: a few ImageNet / NSFW
classifiers, face, people and body-part detectors, landmarks, a face
embedding and two OCR engines, each with its declared "satisfied" rule), not
over the paper's population of COCO detectors, so it is a PROXY label: its
values depend on which machines are installed and which ones can judge an
image.

Declared edge cases:

* A machine votes on a crop only when its task applies to the *original*
  (``Machine.applies``; its verdict is then True or False at every level,
  otherwise None at every level). Non-applicable machines are left out of
  both numerator and denominator.
* With fewer than ``min_applicable`` (K, default :data:`DEFAULT_MIN_APPLICABLE`)
  applicable machines the SMR is None: no label (JSON ``null`` in item
  records, NaN in tensors, masked in losses and benchmarks), never 1.0 or
  0.0. SMR-Net drops images with fewer than 20 valid machines; our zoo is
  smaller, so K is a recipe parameter.
* Machines whose results are missing on either side raise
  :class:`~sursmr_core.errors.InputError` — a silent gap would change the label.

Per-machine verdicts are stored in item records
(``labels.machine_verdicts``: machine → one True/False/None per level), so
:func:`smr_over_levels` and :func:`machine_report` recompute labels and
statistics for any jury and any K without running a machine again.

Typical use, one source image and its compressed versions::

    machines = zoo()
    original = analyse_all(machines, rgb)
    for version in versions:
        verdicts = judge_all(machines, original, analyse_all(machines, version))
        label = smr_from_verdicts(verdicts)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sursmr_core.errors import InputError, LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from training.machines import MACHINES, Machine

Verdict = bool | None
"""True: satisfied; False: output changed too much; None: the machine's task does not apply to the original."""

DEFAULT_MIN_APPLICABLE = 4
"""K: a crop needs at least this many applicable machines to get an SMR label."""


def _check_min_applicable(min_applicable: int) -> None:
    if isinstance(min_applicable, bool) or not isinstance(min_applicable, int) or min_applicable < 1:
        raise InputError(f"min_applicable (K) must be an integer ≥ 1, got {min_applicable!r}")


def smr_from_verdicts(verdicts: Mapping[str, Verdict], min_applicable: int = DEFAULT_MIN_APPLICABLE) -> float | None:
    """Share of satisfied machines among the applicable ones, in [0, 1].

    None when fewer than ``min_applicable`` machines are applicable (K; at
    least 1). ``verdicts`` maps machine names to ``judge`` results. Anything
    other than True, False or None (numpy booleans count as booleans) is an
    :class:`InputError`.
    """
    _check_min_applicable(min_applicable)
    satisfied = judged = 0
    for name, verdict in verdicts.items():
        if verdict is None:
            continue
        if not isinstance(verdict, bool | np.bool_):
            raise InputError(f"machine {name!r}: verdict must be True, False or None, got {verdict!r}")
        judged += 1
        satisfied += bool(verdict)
    if judged < min_applicable:
        return None
    return satisfied / judged


def smr_over_levels(
    verdicts: Mapping[str, Sequence[Verdict]],
    levels: int,
    jury: Iterable[str] | None = None,
    min_applicable: int = DEFAULT_MIN_APPLICABLE,
) -> list[float | None]:
    """SMR of each of ``levels`` levels from stored per-machine verdict lists (an item's ``machine_verdicts``).

    ``jury``: the machines that count (default: every machine in
    ``verdicts``); a juror without verdicts, or with a list of the wrong
    length, is an :class:`InputError`.
    """
    names = sorted(verdicts) if jury is None else sorted(set(jury))
    for name in names:
        if name not in verdicts:
            raise InputError(f"no verdicts of machine {name!r}")
        if len(verdicts[name]) != levels:
            raise InputError(f"machine {name!r} has {len(verdicts[name])} verdicts for {levels} levels")
    return [smr_from_verdicts({n: verdicts[n][i] for n in names}, min_applicable) for i in range(levels)]


def zoo(names: Iterable[str] | None = None) -> list[Machine]:
    """Instances of the named machines (default: every registered machine available here), sorted by name.

    A machine named explicitly but unavailable raises
    :class:`LabellerUnavailableError` with its reason; with ``names=None``
    unavailable machines are skipped (see :func:`zoo_status`).
    """
    if names is None:
        return [cls() for _, cls in MACHINES.items() if cls.availability().available]
    machines = []
    for name in sorted(set(names)):
        cls = MACHINES.get(name)
        status = cls.availability()
        if not status.available:
            raise LabellerUnavailableError(f"machine {name!r} is not available here: {status.reason}")
        machines.append(cls())
    return machines


def zoo_status() -> dict[str, str | None]:
    """Every registered machine → None when available, else the reason it is not."""
    status: dict[str, str | None] = {}
    for name, cls in MACHINES.items():
        availability = cls.availability()
        status[name] = None if availability.available else (availability.reason or "unavailable (no reason given)")
    return status


def _check_unique(machines: Sequence[Machine]) -> None:
    names = [m.name for m in machines]
    if len(set(names)) != len(names):
        raise InputError(f"machines must be distinct, got {names}")


def analyse_all(machines: Sequence[Machine], rgb: RGBImage) -> dict[str, Any]:
    """Run every machine on one uint8 RGB (H, W, 3) image; machine name → its (picklable) result."""
    _check_unique(machines)
    return {machine.name: machine.analyse(rgb) for machine in machines}


def judge_all(
    machines: Sequence[Machine], original_results: Mapping[str, Any], compressed_results: Mapping[str, Any]
) -> dict[str, Verdict]:
    """Each machine's verdict on one compressed image, from its results on the original and the compressed image."""
    _check_unique(machines)
    verdicts: dict[str, Verdict] = {}
    for machine in machines:
        missing = [
            side
            for side, results in (("original", original_results), ("compressed", compressed_results))
            if machine.name not in results
        ]
        if missing:
            raise InputError(f"machine {machine.name!r} has no result for the {' and '.join(missing)} image")
        verdicts[machine.name] = machine.judge(original_results[machine.name], compressed_results[machine.name])
    return verdicts


# --- per-machine report from stored verdicts (no machine runs) ---------------------------


def _stored_verdicts(record: Mapping[str, Any]) -> dict[str, Sequence[Verdict]]:
    """Every machine's verdict list of one item record, jurors and machines left out of the jury alike."""
    labels = record.get("labels") or {}
    return {**(labels.get("machine_verdicts_excluded") or {}), **(labels.get("machine_verdicts") or {})}


def best_level_index(record: Mapping[str, Any]) -> int:
    """Index of the best-quality level of an item record (``levels`` plus ``better``: "higher" or "lower")."""
    levels = record.get("levels") or []
    better = record.get("better")
    if not levels or better not in ("higher", "lower"):
        raise InputError(f"item {record.get('item_id')!r}: needs 'levels' and 'better' ('higher'/'lower')")
    pick = max if better == "higher" else min
    return int(pick(range(len(levels)), key=lambda i: levels[i]))


@dataclass(frozen=True)
class MachineStats:
    """One machine over a set of item records (crop × codec).

    ``applicable``: items where it votes (its task applies to the original).
    ``best_unsatisfied``: applicable items it calls "not satisfied" at the
    codec's best level: its *noise floor* (an image that near-lossless has
    not changed for any application; goal ≤ 5 % of applicable items).
    ``worst_unsatisfied``: the same at the item's worst level (its signal:
    a machine that never objects there does not follow compression).
    """

    machine: str
    items: int
    applicable: int
    best_unsatisfied: int
    worst_unsatisfied: int

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def applicability_rate(self) -> float | None:
        return self._share(self.applicable, self.items)

    @property
    def noise_floor(self) -> float | None:
        return self._share(self.best_unsatisfied, self.applicable)

    @property
    def worst_level_unsatisfied(self) -> float | None:
        return self._share(self.worst_unsatisfied, self.applicable)

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "machine": self.machine,
            "items": self.items,
            "applicable": self.applicable,
            "applicability_rate": rounded(self.applicability_rate),
            "noise_floor": rounded(self.noise_floor),
            "worst_level_unsatisfied": rounded(self.worst_level_unsatisfied),
        }


def machine_report(records: Iterable[Mapping[str, Any]], machines: Iterable[str] | None = None) -> list[MachineStats]:
    """Per machine: applicability rate and best-level noise floor over item records, sorted by machine name.

    Pure: reads ``levels``, ``better`` and the stored verdicts
    (``labels.machine_verdicts`` and ``labels.machine_verdicts_excluded``)
    of each record. ``machines``: the machines to report (default: every
    machine with stored verdicts); an item without a named machine's
    verdicts does not count for it. A machine is applicable to an item when
    any of its verdicts is not None (they are all None or none is).
    """
    counts: dict[str, list[int]] = {name: [0, 0, 0, 0] for name in machines or ()}
    for record in records:
        verdicts = _stored_verdicts(record)
        best = best_level_index(record)
        levels = record["levels"]
        pick_worst = min if record["better"] == "higher" else max
        worst = int(pick_worst(range(len(levels)), key=lambda i: levels[i]))
        for name, votes in verdicts.items():
            if machines is not None and name not in counts:
                continue
            if len(votes) != len(levels):
                raise InputError(
                    f"item {record.get('item_id')!r}: machine {name!r} has {len(votes)} verdicts for "
                    f"{len(levels)} levels"
                )
            row = counts.setdefault(name, [0, 0, 0, 0])
            row[0] += 1
            if any(v is not None for v in votes):
                row[1] += 1
                row[2] += votes[best] is False
                row[3] += votes[worst] is False
    return [MachineStats(name, *row) for name, row in sorted(counts.items())]


def applicable_per_crop(records: Iterable[Mapping[str, Any]], jury: Iterable[str] | None = None) -> dict[str, int]:
    """Crop id → number of applicable machines (of ``jury``, default all stored) on that crop.

    Applicability depends on the original only, so every codec of a crop
    gives the same count; the first record of each crop is used.
    """
    names = None if jury is None else set(jury)
    out: dict[str, int] = {}
    for record in records:
        crop = str(record.get("crop_id", record.get("item_id")))
        if crop in out:
            continue
        verdicts = _stored_verdicts(record)
        out[crop] = sum(
            1
            for name, votes in verdicts.items()
            if (names is None or name in names) and any(v is not None for v in votes)
        )
    return out


def applicable_summary(
    counts: Iterable[int], min_applicable: int = DEFAULT_MIN_APPLICABLE
) -> dict[str, float | int | None]:
    """Median and 10th percentile of applicable machines per crop, and how many crops have fewer than K."""
    _check_min_applicable(min_applicable)
    values = np.asarray(list(counts), dtype=np.float64)
    if values.size == 0:
        return {"crops": 0, "median": None, "p10": None, "below_k": 0, "k": min_applicable}
    return {
        "crops": int(values.size),
        "median": float(np.median(values)),
        "p10": float(np.percentile(values, 10)),
        "below_k": int((values < min_applicable).sum()),
        "k": min_applicable,
    }
