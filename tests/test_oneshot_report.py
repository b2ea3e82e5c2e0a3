"""The oneshot benchmark's summaries and README sentences (pure arithmetic over replayed outcomes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.oneshot import headline, summarise


def outcome(index: int | None, probes: int, hit: bool, nbytes: int | None) -> dict[str, object]:
    return {"index": index, "probes": probes, "hit": hit, "bytes": nbytes}


def test_summarise_compares_every_method_with_bisection() -> None:
    rows = [
        {
            "bisect": outcome(5, 7, True, 100),
            "population": outcome(5, 4, True, 100),
            "predicted": outcome(5, 2, True, 100),
        },
        {
            "bisect": outcome(3, 6, False, 80),
            "population": outcome(4, 5, True, 90),
            "predicted": outcome(None, 3, False, None),
        },
    ]
    row = summarise(rows)
    assert (row["bisect_encodes"], row["population_encodes"], row["predicted_encodes"]) == (6.5, 4.5, 2.5)
    assert row["population_bytes_ratio"] == round(190 / 180, 4) and row["population_same_level"] == 0.5
    assert row["predicted_bytes_ratio"] == 1.0 and row["predicted_found"] == 1  # only items both found count
    assert row["predicted_hit_rate"] == 0.5 and row["max_predicted_encodes"] == 3


def test_headline_states_the_measured_numbers_per_codec() -> None:
    result = {
        "data": "/data/test1",
        "model": "m",
        "prior": "the card's curve model (per image)",
        "rows": [
            {
                "codec": c,
                "targets": "SUR≥0.75 SMR≥0.9",
                "items": 25,
                "predicted_encodes": e,
                "population_encodes": 4.0,
                "bisect_encodes": 7.0,
                "predicted_same_level": s,
            }
            for c, e, s in (("jpeg", 3.4, 1.0), ("bpg", 3.1, 0.96))
        ],
    }
    text = headline(result)
    assert "25 test crops per codec" in text and "3.1 (BPG), 3.4 (JPEG)" in text
    assert "at least 96% of the images of each codec" in text
    assert text.rstrip().endswith("(`benchmarks/results/oneshot.md`).")


def test_reports_name_the_smr_jury_when_the_result_records_it() -> None:
    from benchmarks.oneshot import markdown
    from training.datasets.relabel import SmrJury

    jury = SmrJury(("a", "b"), 2).to_dict()
    result = {
        "data": "/data/test1",
        "split": "test",
        "items": 3,
        "model": "m",
        "rows": [
            {
                "codec": "jpeg",
                "targets": "SUR≥0.75 SMR≥0.9",
                "items": 1,
                "predicted_encodes": 2.0,
                "population_encodes": 3.0,
                "bisect_encodes": 5.0,
                "predicted_same_level": 1.0,
            }
        ],
        "command": "python benchmarks/oneshot.py",
        "seconds": 1.0,
        "host": "h",
    }
    assert "SMR labels" not in markdown(result) and "SMR labels" not in headline(result)
    result["smr_labels"] = {"test": jury, "model": SmrJury(("a", "b", "c"), 4).to_dict()}
    assert "SMR labels: 2 machines at K = 2, not the jury and K the model was trained on" in markdown(result)
    short = headline(result)
    assert "(3 machines at K = 4)" in short and "sursmr-train relabel" not in short


def test_replay_scores_are_cached_per_item_file_and_per_weights(tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from benchmarks.codec_auto import LazyScores
    from sursmr.scoring import Prediction

    def png(value: int) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, "PNG")
        return np.frombuffer(buffer.getvalue(), np.uint8)

    np.savez(tmp_path / "item.npz", reference_png=png(0), decoded_png_0=png(10), decoded_png_1=png(20))
    record = {"item_id": "a/jpeg", "npz": "item.npz", "npz_sha256": "s1"}

    class Scorer:
        name = "scorer"

        def __init__(self, sha: str, scale: float) -> None:
            self.weights_sha256, self.scale, self.scored = sha, scale, 0

        def predict(self, reference: np.ndarray, candidates: list[np.ndarray]) -> list[Prediction]:
            self.scored += len(candidates)
            return [Prediction(float(c.mean()) * self.scale, 1.0) for c in candidates]

    cache: dict[str, Any] = {}
    first = Scorer("w1", 0.01)
    assert LazyScores(first, tmp_path, cache)(record, [0, 1]) == [(0.1, 1.0), (0.2, 1.0)] and first.scored == 2
    again = Scorer("w1", 0.01)
    assert LazyScores(again, tmp_path, cache)(record, [1]) == [(0.2, 1.0)] and again.scored == 0  # kept
    other = Scorer("w2", 0.02)
    assert LazyScores(other, tmp_path, cache)(record, [1]) == [(0.4, 1.0)] and other.scored == 1  # other weights
    rebuilt = Scorer("w2", 0.02)
    assert LazyScores(rebuilt, tmp_path, cache)({**record, "npz_sha256": "s2"}, [1]) == [(0.4, 1.0)]
    assert rebuilt.scored == 1  # another item file
