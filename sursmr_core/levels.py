"""Level axes of codecs and availability verdicts: plain data shared by codecs, controller and labellers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sursmr_core.errors import InputError

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class LevelAxis:
    """The integer quality axis of a codec: ``lo..hi`` inclusive, and which end is better."""

    lo: int
    hi: int
    better: Better

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"empty level axis {self.lo}..{self.hi}")

    def __contains__(self, level: object) -> bool:
        return isinstance(level, int) and self.lo <= level <= self.hi

    def worst_to_best(self) -> list[int]:
        """All levels ordered from the most compressed to the best quality."""
        levels = list(range(self.lo, self.hi + 1))
        return levels if self.better == "higher" else levels[::-1]

    def is_better(self, a: int, b: int) -> bool:
        """True when level ``a`` means better quality than level ``b``."""
        return a > b if self.better == "higher" else a < b

    def check(self, level: int, codec: str) -> int:
        if isinstance(level, bool) or not isinstance(level, int) or level not in self:
            raise InputError(f"{codec}: level {level!r} is outside {self.lo}..{self.hi}")
        return level


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None
