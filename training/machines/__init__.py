"""Registry of vision models ("machines") whose agreement defines SMR labels."""

from training.machines.base import MACHINES, Machine

__all__ = ["MACHINES", "Machine"]
