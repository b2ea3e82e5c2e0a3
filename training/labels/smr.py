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

* A machine that cannot judge an image (``judge`` returns None: no face or
  text on the original...) is left out of both numerator and denominator.
* When no machine can judge, the SMR is None (unknown), never 1.0 or 0.0.
* Machines whose results are missing on either side raise
  :class:`~sursmr_core.errors.InputError` — a silent gap would change the label.

Typical use, one source image and its compressed versions::

    machines = zoo()
    original = analyse_all(machines, rgb)
    for version in versions:
        verdicts = judge_all(machines, original, analyse_all(machines, version))
        label = smr_from_verdicts(verdicts)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sursmr_core.errors import InputError, LabellerUnavailableError
from sursmr_core.imaging import RGBImage
from training.machines import MACHINES, Machine

Verdict = bool | None
"""True: satisfied; False: output changed too much; None: cannot judge this image."""


def smr_from_verdicts(verdicts: Mapping[str, Verdict]) -> float | None:
    """Share of satisfied machines among those that could judge, in [0, 1]; None when none could.

    ``verdicts`` maps machine names to ``judge`` results. Anything other than
    True, False or None (numpy booleans count as booleans) is an
    :class:`InputError`.
    """
    satisfied = judged = 0
    for name, verdict in verdicts.items():
        if verdict is None:
            continue
        if not isinstance(verdict, bool | np.bool_):
            raise InputError(f"machine {name!r}: verdict must be True, False or None, got {verdict!r}")
        judged += 1
        satisfied += bool(verdict)
    if judged == 0:
        return None
    return satisfied / judged


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
