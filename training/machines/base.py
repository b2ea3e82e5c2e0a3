"""The machine zoo for SMR labels: the protocol and the registry.

A machine is a real pretrained vision model. ``analyse`` runs it on one image
and returns a picklable result; ``judge`` compares the result on a compressed
image with the result on the original and says whether the machine is
*satisfied* (its output stayed close enough), or ``None`` when it cannot
judge this image at all (no face for a face detector, no text for OCR).
Each machine documents its rule in ``rule``; SMR is the share of satisfied
machines among those that could judge (see ``training.labels``).
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
    task: ClassVar[str]  # "classification", "detection", "face", "ocr", "landmarks", "segmentation"
    version: ClassVar[str] = "1"
    rule: ClassVar[str]  # human-readable "satisfied" rule, also written to manifests

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @abstractmethod
    def analyse(self, rgb: RGBImage) -> Any:
        """Run the model on one uint8 RGB image; return a small picklable result."""

    @abstractmethod
    def judge(self, original: Any, compressed: Any) -> bool | None:
        """True: satisfied; False: output changed too much; None: cannot judge this image."""


MACHINES: Registry[type[Machine]] = Registry("machine", package="training.machines")
