"""Registry of full-reference IQA metrics (one module per metric family)."""

from training.metrics.base import METRICS, Metric

__all__ = ["METRICS", "Metric"]
