"""Dataset views: the cross-collection hold-out rewrites splits and links items, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sursmr_core.errors import InputError
from training.cli import main as train_cli
from training.datasets.views import UNUSED, collection_holdout, holdout_splits


def _records() -> list[dict[str, object]]:
    rows = []
    for collection, split in [("a", "train"), ("a", "val"), ("a", "test"), ("b", "train"), ("b", "test")]:
        rows.append({"item_id": f"{collection}-{split}", "source_id": f"{collection}/photo-{split}", "split": split})
    return rows


def test_holdout_tests_on_the_collection_and_sets_other_tests_aside() -> None:
    out = {r["item_id"]: r["split"] for r in holdout_splits(_records(), "b")}  # type: ignore[arg-type]
    assert out == {"a-train": "train", "a-val": "val", "a-test": UNUSED, "b-train": "test", "b-test": "test"}
    with pytest.raises(InputError, match="collections: a, b"):
        holdout_splits(_records(), "c")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no training items"):
        holdout_splits([r for r in _records() if r["source_id"] != "a/photo-train"], "b")  # type: ignore[arg-type]


def test_holdout_view_links_items_and_runs_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "items").mkdir(parents=True)
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records()))
    view = tmp_path / "view"
    result = CliRunner().invoke(
        train_cli, ["holdout", "--data", str(data), "--collection", "a", "--out", str(view), "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert (row["train"], row["val"], row["test"], row["unused"]) == (1, 0, 3, 1)
    assert (view / "items").resolve() == (data / "items").resolve()
    assert json.loads((view / "view.json").read_text())["collection"] == "a"
    # writing the same view again is fine; a folder whose items are something else is refused
    collection_holdout(data, "a", view)
    other = tmp_path / "other"
    (other / "items").mkdir(parents=True)
    with pytest.raises(InputError, match="not a link"):
        collection_holdout(data, "a", other)
