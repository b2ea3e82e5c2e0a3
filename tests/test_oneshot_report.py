"""The oneshot benchmark's summaries and README sentences (pure arithmetic over replayed outcomes)."""

from __future__ import annotations

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
    assert "25 test photos" in text and "3.1 (BPG), 3.4 (JPEG)" in text
    assert "at least 96% of the images of each codec" in text
    assert text.rstrip().endswith("(`benchmarks/results/oneshot.md`).")
