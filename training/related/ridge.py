"""Ridge regression on standardised features (closed form), saved to and read from JSON.

Re-IQA maps frozen features to quality with a linear regressor; this is
that regressor: features standardised by the training set's mean and
standard deviation, then ``w = (XᵀX + αI)⁻¹ Xᵀ(y − ȳ)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sursmr_core.errors import InputError, ModelError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Ridge:
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float
    alpha: float

    @classmethod
    def fit(cls, features: npt.ArrayLike, targets: npt.ArrayLike, alpha: float = 1.0) -> Ridge:
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
            raise InputError(f"ridge needs features (n, d) and targets (n,), n ≥ 2; got {x.shape} and {y.shape}")
        if alpha <= 0:
            raise InputError(f"ridge alpha must be > 0, got {alpha}")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        z = (x - mean) / scale
        centre = float(y.mean())
        # dual form when there are fewer samples than features
        if z.shape[0] < z.shape[1]:
            coef = z.T @ np.linalg.solve(z @ z.T + alpha * np.eye(z.shape[0]), y - centre)
        else:
            coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - centre))
        return cls(mean, scale, coef, centre, float(alpha))

    def predict(self, features: npt.ArrayLike) -> FloatArray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef.shape[0]:
            raise InputError(f"ridge expects (n, {self.coef.shape[0]}) features, got {x.shape}")
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "intercept": self.intercept,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ridge:
        try:
            parts = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
            ridge = cls(parts[0], parts[1], parts[2], float(data["intercept"]), float(data["alpha"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a ridge regressor: {exc}") from None
        if not (ridge.mean.shape == ridge.scale.shape == ridge.coef.shape) or ridge.coef.ndim != 1:
            raise ModelError("ridge regressor: mean, scale and coef must be vectors of one length")
        return ridge

    def save(self, path: Path, **extra: Any) -> None:
        path.write_text(json.dumps({**extra, "ridge": self.to_dict()}) + "\n")

    @classmethod
    def load(cls, path: Path) -> Ridge:
        if not path.is_file():
            raise ModelError(f"ridge regressor file {path} is missing")
        return cls.from_dict(json.loads(path.read_text())["ridge"])
