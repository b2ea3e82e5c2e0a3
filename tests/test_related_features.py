"""benchmarks/related_features.py's dataset-mode maths: level spreading and the train → held-out comparison."""

from __future__ import annotations

import numpy as np

from benchmarks.related_features import _spread_levels, evaluate_split


def test_spread_levels_keeps_both_ends() -> None:
    assert _spread_levels(5, 12) == [0, 1, 2, 3, 4]
    assert _spread_levels(38, 4) == [0, 12, 25, 37]


def _samples(seed: int = 0) -> list[dict[str, object]]:
    """Sources s0..s8 (6 train, 3 held out) × 8 levels: the 'quality' stream carries the label, 'clipsim' is noise."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, object]] = []
    for s in range(9):
        split = "train" if s < 6 else ("val" if s < 8 else "test")
        common = {"crop_id": f"c{s}", "source_id": f"s{s}", "split": split}
        out.append(
            {
                **common,
                "codec": "none",
                "sur": 1.0,
                "smr": None,
                "quality": [1.0, 0.0, 0.0],
                "content": rng.normal(size=4).tolist(),
            }
        )
        for level in range(8):
            label = level / 7
            out.append(
                {
                    **common,
                    "codec": "jpeg",
                    "sur": label,
                    "smr": label,
                    "pred_sur": 0.5,
                    "pred_smr": 0.5,
                    "psnr": float(rng.normal()),
                    "ssim": float(rng.normal()),
                    "content": rng.normal(size=4).tolist(),
                    "content_diff": rng.normal(size=4).tolist(),
                    "quality": [label + 0.01 * rng.normal(), rng.normal(), rng.normal()],
                    "quality_diff": rng.normal(size=3).tolist(),
                    "clipsim": rng.normal(size=7).tolist(),
                }
            )
    return out


def test_a_stream_that_carries_the_label_helps_and_noise_does_not() -> None:
    rows, reiqa = evaluate_split(_samples())
    by = {(r["target"], r["stream"]): r for r in rows}
    assert len(rows) == 4 and all(r["train_sources"] == 6 and r["held_sources"] == 3 for r in rows)
    for target in ("sur", "smr"):
        informative = by[(target, "quality")]["models"]
        noise = by[(target, "clipsim")]["models"]
        assert all(m["helps"] and m["mae_with"] < m["mae_without"] for m in informative), informative
        assert not any(m["helps"] for m in noise), noise
        for m in informative + noise:
            lo, hi = m["delta_ci95"]
            assert lo <= hi
    assert reiqa["held_samples"] == 27 and reiqa["held_mae_quality_only"] < reiqa["held_mae_train_mean"]
