"""Dataset statistics (``training.datasets.stats``) on hand-made item records, and the ``stats`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from training.datasets.stats import (
    applicable_per_crop,
    build_time,
    dataset_stats,
    levels_per_codec,
    machine_stats,
    oracle_hit_rates,
    smr_coverage,
    split_counts,
)


def record(
    crop: str,
    split: str,
    codec: str = "jpeg",
    levels: tuple[int, ...] = (20, 50, 90),
    sur: list[float | None] | None = None,
    verdicts: dict[str, list[bool | None]] | None = None,
    better: str = "higher",
) -> dict[str, Any]:
    n = len(levels)
    return {
        "item_id": f"{crop}.{codec}",
        "crop_id": crop,
        "source_id": crop.split("-")[0],
        "split": split,
        "codec": codec,
        "better": better,
        "levels": list(levels),
        "bytes": [1000 * (i + 1) for i in range(n)] if better == "higher" else [1000 * (n - i) for i in range(n)],
        "labels": {
            "sur_jnd_proxy": sur if sur is not None else [0.1 * (i + 1) for i in range(n)],
            "pseudo_sur_eq3": [i / max(1, n - 1) for i in range(n)],
            "machine_verdicts": verdicts or {},
        },
    }


def test_oracle_hit_rate_counts_items_whose_grid_reaches_the_target() -> None:
    records = [
        record("a-0", "test", sur=[0.2, 0.6, 0.95]),  # reaches 0.5 (at 2000 B), 0.75 and 0.9 (at 3000 B)
        record("b-0", "val", sur=[0.1, 0.4, 0.8]),  # reaches 0.5 and 0.75, not 0.9
        record("c-0", "test", sur=[None, None, None]),  # unlabelled: counted apart
        record("d-0", "train", sur=[0.0, 0.0, 0.0]),  # training items are not evaluated
    ]
    rows = {row["target"]: row for row in oracle_hit_rates(records)}
    assert rows[0.5]["hit_rate"] == 1.0 and rows[0.5]["items"] == 2 and rows[0.5]["unlabelled"] == 1
    assert rows[0.5]["oracle_mean_bytes"] == pytest.approx((2000 + 3000) / 2)
    assert rows[0.75]["hit_rate"] == 1.0
    assert rows[0.9]["hit_rate"] == 0.5 and rows[0.9]["oracle_mean_bytes"] == 3000
    # the cheapest level meeting the target, whatever the level order
    vvc = record("e-0", "test", codec="vvc", levels=(10, 30, 50), sur=[0.99, 0.9, 0.3], better="lower")
    (row,) = [r for r in oracle_hit_rates([vvc], targets=(0.85,))]
    assert row["hit_rate"] == 1.0 and row["oracle_mean_bytes"] == 2000  # QP 30 is cheaper than QP 10


def test_machine_applicability_noise_floor_and_per_crop_counts() -> None:
    records = [
        # crop a: face votes (satisfied at the best level), ocr does not apply, cls flips at the best level
        record("a-0", "train", verdicts={"face": [False, True, True], "ocr": [None] * 3, "cls": [False, False, False]}),
        record(
            "a-0",
            "train",
            codec="vvc",
            levels=(40, 20, 0),
            better="lower",
            verdicts={"face": [False, True, True], "ocr": [None] * 3, "cls": [True, True, True]},
        ),
        # crop b: everyone votes; ocr unhappy at the best level
        record("b-0", "test", verdicts={"face": [True] * 3, "ocr": [True, True, False], "cls": [True] * 3}),
        # crop c: nobody votes
        record("c-0", "val", verdicts={"face": [None] * 3, "ocr": [None] * 3, "cls": [None] * 3}),
    ]
    rows = {row["machine"]: row for row in machine_stats(records)}
    # shares of items (crop x codec): face votes on 3 of 4, ocr on 1 of 4
    assert rows["face"]["applicability"] == pytest.approx(3 / 4) and rows["face"]["noise_floor"] == 0.0
    assert rows["ocr"]["applicability"] == pytest.approx(1 / 4) and rows["ocr"]["noise_floor"] == 1.0
    # cls: 3 applicable items; at the best level (q90 of a/jpeg: False; QP 0 of a/vvc: True; b: True)
    assert rows["cls"]["applicable_items"] == 3 and rows["cls"]["noise_floor"] == pytest.approx(1 / 3)
    per_crop = applicable_per_crop(records, min_applicable=3)
    assert per_crop is not None  # crops a, b, c: 2, 3 and 0 machines vote
    assert per_crop["crops"] == 3 and per_crop["median"] == 2 and per_crop["below_k"] == 2
    assert per_crop["p10"] == pytest.approx(0.4)
    # SMR coverage: crops a, b, c have 2, 3, 0 voters; the quiet jury drops ocr and cls (noise floors 1 and 1/3)
    coverage = {row["jury"]: row for row in smr_coverage(records, machine_stats(records))}
    assert coverage["all"]["K=1"] == pytest.approx(2 / 3) and coverage["all"]["K=3"] == pytest.approx(1 / 3)
    assert coverage["quiet"]["machines"] == 1 and coverage["quiet"]["K=2"] == 0.0
    assert coverage["quiet"]["K=1"] == pytest.approx(2 / 3)


def test_missing_verdicts_give_empty_machine_sections() -> None:
    records = [record("a-0", "test")]
    assert machine_stats(records) == [] and applicable_per_crop(records) is None
    assert smr_coverage(records, []) == []


def test_split_and_level_counts_and_build_time() -> None:
    records = [
        record("p1-0", "train", levels=(20, 60, 100)),
        record("p1-1", "train", levels=(20, 100)),
        record("p2-0", "test", levels=(20, 40, 60, 80, 100)),
    ]
    header = {
        "sources": [
            {"source_id": "p1", "split": "train", "collection": "x"},
            {"source_id": "p2", "split": "test", "collection": "y"},
            {"source_id": "p3", "split": "test", "collection": "y"},
        ],
        "recipe": {"codecs": [{"codec": "jpeg", "levels": [20, 40, 60, 80, 100]}]},
        "runs": [{"seconds": 100.0, "built": 2, "finished": False}, {"seconds": 50.5, "built": 1, "finished": True}],
    }
    splits = {row["split"]: row for row in split_counts(records, header)}
    assert splits["train"]["photos"] == 1 and splits["train"]["crops"] == 2
    assert splits["test"]["photos"] == 1 and splits["test"]["photos_planned"] == 2 and splits["val"]["crops"] == 0
    (jpeg,) = levels_per_codec(records, header["recipe"])
    assert jpeg["grid"] == 5 and jpeg["eval_levels"] == "5/5/5" and jpeg["train_levels"] == "2/2/3"
    records[0]["cpu_seconds"] = 12.5
    records[2]["cpu_seconds"] = 30.0
    assert build_time(header, records) == {
        "runs": 2,
        "seconds": 150.5,
        "items_built": 3,
        "last_run_finished": True,
        "items_timed": 2,
        "core_seconds": 42.5,
    }
    assert dataset_stats(records, header)["labels_are_proxies"] is True


def test_stats_command_prints_every_section(tmp_path: Path) -> None:
    from training.cli import main

    data = tmp_path / "ds"
    (data / "items" / "a-0").mkdir(parents=True)
    rec = record("a-0", "test", verdicts={"face": [True, True, True]})
    rec["npz"] = "items/a-0/jpeg.npz"
    rec["npz_bytes"] = 3
    (data / "items" / "a-0" / "jpeg.npz").write_bytes(b"abc")
    (data / "items" / "a-0" / "jpeg.json").write_text(json.dumps(rec))
    (data / "dataset.json").write_text(json.dumps({"recipe": {"name": "t", "codecs": []}, "runs": [{"seconds": 7}]}))
    result = CliRunner().invoke(main, ["stats", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    sections = {row["section"] for row in rows}
    assert sections == {"summary", "splits", "levels", "oracle", "machines", "applicable_per_crop", "build"}
    hit = [r for r in rows if r["section"] == "oracle" and r["target"] == 0.9]
    assert hit[0]["hit_rate"] == 0.0  # the label tops out at 0.3
    text = CliRunner().invoke(main, ["stats", "--data", str(data)])
    assert text.exit_code == 0 and "[oracle]" in text.stdout and "applicable machines per crop" in text.stdout
    md = CliRunner().invoke(main, ["stats", "--data", str(data), "--markdown"])
    assert md.exit_code == 0 and "| codec | target | items | hit_rate |" in md.stdout and "| face |" in md.stdout
    missing = CliRunner().invoke(main, ["stats", "--data", str(tmp_path)])
    assert missing.exit_code == 2 and "dataset.json" in missing.output
