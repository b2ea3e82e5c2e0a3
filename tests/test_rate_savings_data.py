"""Rate savings on separate calibration and test datasets: photo overlap, where the cheap baseline fits, data text."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.accuracy import data_description
from benchmarks.matched import BenchItem
from benchmarks.rate_savings import main
from benchmarks.rate_savings_protocol import cheap_fit_records, shared_photos, smr_labelled
from benchmarks.rate_savings_report import data_text


def _record(photo: str, codec: str = "jpeg", split: str = "val") -> dict[str, Any]:
    return {"item_id": f"{photo}.{codec}", "codec": codec, "source_id": photo, "split": split}


def test_shared_photos_compares_source_photos_not_items() -> None:
    calib = [_record("a/one"), _record("a/one", "bpg"), _record("a/two")]
    test = [_record("a/two", "vvc", "test"), _record("a/three", split="test")]
    assert shared_photos(calib, test) == ["a/two"]
    # a record without source_id names its photo in the crop
    assert shared_photos([{"crop": {"source_id": "a/three"}}], test) == ["a/three"]
    assert shared_photos(calib, [_record("b/four", split="test")]) == []


def test_cheap_fit_uses_every_training_split_else_the_calibration_split() -> None:
    calib = [_record("a/one")]
    train_a, train_b = [_record("t/1", split="train")], [_record("t/2", split="train")]
    split, names, records = cheap_fit_records({"x": train_a, "y": [], "z": train_b}, "val", calib)
    assert (split, names, records) == ("train", ["x", "z"], [*train_a, *train_b])
    split, names, records = cheap_fit_records({"x": [], "y": []}, "val", calib)
    assert (split, names, records) == ("val", [], calib)


def _item(smr: list[float]) -> BenchItem:
    n = len(smr)
    return BenchItem("i", "jpeg", "p", list(range(n)), np.ones(n), np.ones(n), np.array(smr, dtype=np.float64))


def test_smr_labelled_counts_items_with_any_smr_label() -> None:
    items = [_item([math.nan, math.nan]), _item([math.nan, 0.5]), _item([1.0, 1.0])]
    assert smr_labelled(items) == 2


def _dataset(root: Path, name: str, records: list[dict[str, Any]], crops: int = 1) -> Path:
    folder = root / name
    folder.mkdir()
    header = {"recipe": {"name": "v2-1crop", "crops_per_source": crops}, "only_splits": [records[0]["split"]]}
    (folder / "dataset.json").write_text(json.dumps(header))
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_data_description_names_recipe_crops_and_splits(tmp_path: Path) -> None:
    one = _dataset(tmp_path, "val1", [_record("a/one")])
    three = _dataset(tmp_path, "full", [_record("a/one")], crops=3)
    assert data_description(one) == "`val1` (recipe `v2-1crop`, 1 crop per photo, splits built: val)"
    assert "3 crops per photo" in data_description(three)
    assert data_description(tmp_path / "missing") == "`missing`"


def test_data_text_names_both_datasets_and_smr_coverage() -> None:
    payload: dict[str, Any] = {
        "data": "`test1`",
        "calib_data": "`val1`",
        "calib_split": "val",
        "test_split": "test",
        "calib_items": 75,
        "calib_photos": 25,
        "test_items": 72,
        "test_photos": 24,
        "calib_smr_items": 6,
        "test_smr_items": 9,
    }
    text = data_text(payload)
    assert text.startswith("calibration data `val1`, test data `test1`")
    assert "(75 items, 25 photos)" in text and "(72 items, 24 photos)" in text
    assert "6 of 75 (val), 9 of 72 (test)" in text
    assert data_text({**payload, "calib_data": None}).startswith("data `test1`;")
    assert "SMR labels" not in text  # an older payload without the juries


def test_data_text_names_the_smr_jury_of_each_split_against_the_models() -> None:
    from training.datasets.relabel import SmrJury

    quiet, whole = SmrJury(("a", "b"), 2).to_dict(), SmrJury(("a", "b", "c"), 4).to_dict()
    payload: dict[str, Any] = {
        "data": "`test1`",
        "calib_data": "`val1`",
        "calib_split": "val",
        "test_split": "test",
        "calib_items": 36,
        "calib_photos": 12,
        "test_items": 75,
        "test_photos": 25,
        "calib_smr_items": 9,
        "test_smr_items": 30,
        "smr_labels": {"calib": quiet, "test": quiet, "model": quiet},
    }
    text = data_text(payload)
    assert "; SMR labels: the jury and K the model was trained on (2 machines at K = 2" in text
    assert text.index("SMR labels:") < text.index("items with an SMR label: 9 of 36 (val), 30 of 75 (test)")
    mixed = data_text({**payload, "smr_labels": {"calib": quiet, "test": whole, "model": quiet}})
    assert "calibration SMR labels: the jury and K the model was trained on" in mixed
    assert "test SMR labels: 3 machines at K = 4, not the jury and K the model was trained on" in mixed


def test_rate_savings_refuses_calibration_and_test_on_the_same_photos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    val = _dataset(tmp_path, "val1", [_record("a/one"), _record("a/two")])
    test = _dataset(tmp_path, "test1", [_record("a/two", split="test")])
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(test), "--calib-data", str(val), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "share 1 source photo(s) (a/two" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a calibration dataset without the split asked for is refused by name
    with pytest.raises(SystemExit):
        main(["--data", str(test), "--calib-data", str(test), "--out", str(tmp_path / "out")])
    assert "split 'val' has no items" in capsys.readouterr().err


def test_report_only_rewrites_the_markdown_from_the_json(tmp_path: Path) -> None:
    from benchmarks.matched import FixedLevel
    from benchmarks.rate_savings_protocol import protocol

    def item(i: int, shift: float) -> BenchItem:
        x = np.linspace(0.0, 1.0, 6)
        sur = np.clip(x + shift, 0.0, 1.0)
        return BenchItem(f"jpeg-{i}", "jpeg", f"photo{i}", list(range(6)), 1000.0 * (1 + np.arange(6)), sur, sur)

    items = [item(i, s) for i, s in enumerate(np.linspace(-0.3, 0.3, 12))]
    rows, _ = protocol(items[::2], items[1::2], [FixedLevel()], reliabilities=(0.75, 0.9), resamples=20)
    payload = {
        "model": "fake",
        "weights_sha256": "0" * 64,
        "data": "`test1`",
        "calib_data": "`val1`",
        "calib_split": "val",
        "test_split": "test",
        "calib_items": 6,
        "calib_photos": 6,
        "test_items": 6,
        "test_photos": 6,
        "calib_smr_items": 6,
        "test_smr_items": 6,
        "cheap_fit_split": "val",
        "cheap_fit_data": [],
        "resamples": 20,
        "codecs": ["jpeg"],
        "table": rows,
        "bd_rate": [],
        "confidence": None,
        "command": "python benchmarks/rate_savings.py --calib-data val1 --data test1",
        "wall_s": 12.0,
        "host": "a test host",
    }
    (tmp_path / "rate_savings.json").write_text(json.dumps(payload))
    assert main(["--report-only", "--out", str(tmp_path)]) == 0
    headline = (tmp_path / "rate_savings_headline.md").read_text()
    assert "calibration data `val1`, test data `test1`" in headline
    assert "| jpeg | SUR ≥ 0.75 | 0.9 | fixed |" in headline and "| jpeg | SUR ≥ 0.75 | 0.9 | oracle |" in headline
    report = (tmp_path / "rate_savings.md").read_text()
    assert "fitted on the `val` split (no dataset here has a train split)" in report
    assert report.rstrip().endswith(
        "for this run (network predictions cached beside each dataset by an earlier run are reused)."
    )
    assert (tmp_path / "rate_savings_all.md").read_text().startswith("# Rate savings at matched reliability: every h")
