"""The manifest line a batch writes for one image, and whether a finished line matches a new request.

Used by :mod:`sursmr.batch` (``resume`` skips an image whose line
:func:`record_matches` the settings and the model's identity).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sursmr.batch_inputs import BatchInput
from sursmr.batch_workers import AnySettings, ImageAnswer, PredictorSpec


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def manifest_record(
    item: BatchInput,
    settings: AnySettings,
    answer: ImageAnswer,
    model: tuple[str | None, str | None],
    output_sha256: str | None,
) -> dict[str, Any]:
    """The JSON-ready manifest line of one image: input, output, settings, model, and the result or the error."""
    result = answer.result
    record: dict[str, Any] = {
        "input": item.label,
        "input_sha256": answer.input_sha256,
        "input_bytes": answer.input_bytes,
        "output": None if result is None or item.output is None else str(item.output),
        "output_sha256": output_sha256,
        **settings.identity(),
        "codec": settings.codec if result is None else result.codec,
        "model": result.model if result is not None else model[0],
        "model_sha256": result.model_sha256 if result is not None else model[1],
        "seconds": round(answer.seconds, 3),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if result is not None:
        record.update(
            level=result.level,
            bytes=result.nbytes,
            bpp=round(result.bpp, 5),
            sur=_finite(round(result.sur, 4)),
            smr=_finite(round(result.smr, 4)),
            probes=len(result.probes),
            encodes=result.encodes,
            width=result.width,
            height=result.height,
        )
        if answer.codecs is not None:
            record["per_codec"] = dict(answer.codecs)
    else:
        record.update(error=answer.error, exit_code=answer.exit_code)
        if answer.closest is not None:
            record["closest"] = {k: _finite(v) for k, v in answer.closest.items()}
    return record


def record_matches(record: Mapping[str, Any], settings: AnySettings, model: tuple[str | None, str | None]) -> bool:
    """True when a finished line was made with these settings (codec, targets, search, options) and this model."""
    identity = settings.identity()
    return (
        all(record.get(key) == value for key, value in identity.items())
        and (
            record.get("model"),
            record.get("model_sha256"),
        )
        == model
    )


def model_identity(predictor: PredictorSpec) -> tuple[str | None, str | None]:
    """(name, weights SHA-256) of the predictor a batch will use (a name or path is identified, not built)."""
    if predictor is None or isinstance(predictor, str | os.PathLike):
        import sursmr.predictor

        return sursmr.predictor.identify(predictor)
    return str(getattr(predictor, "name", type(predictor).__name__)), getattr(predictor, "weights_sha256", None)
