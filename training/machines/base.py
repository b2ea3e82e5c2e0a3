"""The machine zoo for SMR labels: the protocol and the registry.

A machine is a real pretrained vision model. ``analyse`` runs it on one image
and returns a picklable result. A machine *votes* on a crop only when its
task applies to the **original** (:meth:`Machine.applies`: a face machine
when the original holds a face, OCR when it holds text, a classifier when it
is confident on it, a detector when it finds something); then ``satisfied``
compares the result on a compressed image with the result on the original.
``judge`` combines the two: ``None`` (not applicable, no vote), ``True`` or
``False``. Because applicability depends on the original alone, a machine
votes on every level of a crop or on none of them.

Each machine declares its rules as text (``rule``: when it is satisfied;
``applicability``: when it votes), written to label manifests. SMR is the
share of satisfied machines among the applicable ones (see
``training.labels.smr``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from sursmr_core.imaging import RGBImage
from sursmr_core.levels import Availability
from sursmr_core.registry import Registry


class Machine(ABC):
    """One machine of the zoo. Subclasses register with ``@MACHINES.register``."""

    name: ClassVar[str]
    task: ClassVar[str]  # "classification", "detection", "face", "ocr", "landmarks", "pose", "segmentation"...
    version: ClassVar[str] = "1"
    rule: ClassVar[str]  # human-readable "satisfied" rule, also written to manifests
    applicability: ClassVar[str] = "always votes"  # human-readable "applies to the original" rule

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @abstractmethod
    def analyse(self, rgb: RGBImage) -> Any:
        """Run the model on one uint8 RGB image; return a small picklable result."""

    def applies(self, original: Any) -> bool:
        """Whether this machine's task applies to the original image (its result ``original``)."""
        return True

    @abstractmethod
    def satisfied(self, original: Any, compressed: Any) -> bool:
        """Whether the result on the compressed image is close enough to the original's (only asked when applicable)."""

    def judge(self, original: Any, compressed: Any) -> bool | None:
        """None: not applicable to the original (no vote); else whether the machine is satisfied."""
        if not self.applies(original):
            return None
        return bool(self.satisfied(original, compressed))


MACHINES: Registry[type[Machine]] = Registry("machine", package="training.machines")
