"""sursmr: rate control to predicted Satisfied User / Machine Ratio targets.

Heavy parts (torch, the predictor) load on first use, so ``import sursmr``
stays cheap for codec-only work.
"""

from __future__ import annotations

__version__ = "0.1.0"
