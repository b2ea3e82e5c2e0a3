"""Real-SUR dataset loaders on tiny fixtures that mimic each published layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sursmr_core.errors import InputError
from training.datasets.loaders import (
    SUR_DATASETS,
    load_konjnd,
    load_mcl_jci,
    load_sur_dataset,
    load_vvc_jnd,
    sur_from_jnd_points,
)


def test_sur_is_one_minus_ecdf_in_quality_order() -> None:
    # JPEG quality, best first; subjects first noticed at 80, 60, 60, 30
    levels = [90, 80, 70, 60, 50, 40, 30]
    sur = sur_from_jnd_points([80, 60, 60, 30], levels)
    # at 90 nobody noticed; at 80 one of four; at 60 three of four; at 30 all
    assert sur.tolist() == [1.0, 0.75, 0.75, 0.25, 0.25, 0.25, 0.0]
    # lower-is-better axis (QP): the same rule with the order reversed
    qp_sur = sur_from_jnd_points([30, 30, 40], [20, 25, 30, 35, 40])
    assert np.allclose(qp_sur, [1, 1, 1 / 3, 1 / 3, 0])
    with pytest.raises(InputError):
        sur_from_jnd_points([], levels)
    with pytest.raises(InputError, match="not among"):
        sur_from_jnd_points([85], levels)


def test_konjnd_layout(tmp_path: Path) -> None:
    root = tmp_path / "KonJND-1k"
    (root / "source_image").mkdir(parents=True)
    (root / "jpeg").mkdir()
    (root / "bpg").mkdir()
    (root / "source_image" / "7.png").write_bytes(b"")
    (root / "jpeg" / "7_JPEG_010.jpg").write_bytes(b"")  # distortion index 10 = quality 91
    with (root / "subjective_ratings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "Compression type", "No. of ratings", "mean", "std", "ratings"])
        writer.writerow(["7.png", "JPEG", 4, 22.5, 5.0, json.dumps([10, 20, 30, 30])])
        writer.writerow(["7.png", "BPG", 2, 16.0, 5.0, json.dumps([11, 21])])
    records = {r.codec: r for r in load_konjnd(root)}
    jpeg = records["jpeg"]
    assert jpeg.levels[0] == 100 and jpeg.levels[-1] == 1 and len(jpeg.levels) == 100
    assert jpeg.jnd_points == (91, 81, 71, 71) and jpeg.subjects == 4
    sur = dict(zip(jpeg.levels, jpeg.sur, strict=True))
    assert sur[100] == 1.0 and sur[92] == 1.0 and sur[91] == 0.75 and sur[81] == 0.5 and sur[71] == 0.0
    assert jpeg.reference == root / "source_image" / "7.png"
    assert jpeg.distorted[jpeg.levels.index(91)] == root / "jpeg" / "7_JPEG_010.jpg"
    assert jpeg.distorted[0] is None  # no file shipped in the fixture
    bpg = records["bpg"]
    assert bpg.levels[:2] == (0, 1) and len(bpg.levels) == 51 and bpg.jnd_points == (10, 20)
    bsur = dict(zip(bpg.levels, bpg.sur, strict=True))
    assert bsur[9] == 1.0 and bsur[10] == 0.5 and bsur[20] == 0.0
    assert [r.codec for r in load_konjnd(root, codecs=("bpg",))] == ["bpg"]


def test_mcl_jci_layout(tmp_path: Path) -> None:
    root = tmp_path / "MCL-JCI"
    (root / "source_images" / "[BMP]").mkdir(parents=True)
    (root / "source_images" / "[BMP]" / "ImageJND_SRC01.bmp").write_bytes(b"")
    (root / "distorted_image" / "ImageJND_SRC01").mkdir(parents=True)
    (root / "distorted_image" / "ImageJND_SRC01" / "ImageJND_SRC01_045.jpg").write_bytes(b"")
    (root / "MCL-JCI_JND_samples.csv").write_text('image,jnd_samples\n1,45 50 50 60 35\nImageJND_SRC02,"20, 25"\n')
    records = load_mcl_jci(root)
    assert [r.image_id for r in records] == ["ImageJND_SRC01", "ImageJND_SRC02"]
    first = records[0]
    sur = dict(zip(first.levels, first.sur, strict=True))
    # subjects noticed at quality 60, 50, 50, 45, 35 (first JND); satisfied at q iff q > their point
    assert sur[61] == 1.0 and sur[60] == 0.8 and sur[50] == 0.4 and sur[45] == 0.2 and sur[35] == 0.0
    assert first.reference.name == "ImageJND_SRC01.bmp"
    assert first.distorted[first.levels.index(45)] is not None
    assert np.all(np.diff(first.sur) <= 0)


def test_vvc_jnd_layout(tmp_path: Path) -> None:
    root = tmp_path / "VVC-JND"
    (root / "reference").mkdir(parents=True)
    (root / "distorted" / "img001").mkdir(parents=True)
    (root / "distorted" / "img001" / "img001_QP30.png").write_bytes(b"")
    rows = ["image,subject,jnd_qp", "img001,s1,30", "img001,s2,34", "img001,s3,34", "img002,s1,13"]
    (root / "jnd_points.csv").write_text("\n".join(rows) + "\n")
    records = load_sur_dataset("vvc-jnd", root)
    first = records[0]
    assert first.codec == "vvc" and first.levels[0] == 13 and first.levels[-1] == 51 and len(first.levels) == 39
    sur = dict(zip(first.levels, first.sur, strict=True))
    assert sur[29] == 1.0 and sur[30] == pytest.approx(2 / 3) and sur[33] == pytest.approx(2 / 3) and sur[34] == 0.0
    assert first.distorted[first.levels.index(30)] == root / "distorted" / "img001" / "img001_QP30.png"
    assert records[1].sur[0] == 0.0  # noticed already at the best level


def test_missing_files_say_what_is_expected(tmp_path: Path) -> None:
    for name in SUR_DATASETS.names():
        with pytest.raises(InputError, match="not found"):
            load_sur_dataset(name, tmp_path)
    bad = tmp_path / "vvc"
    bad.mkdir()
    (bad / "jnd_points.csv").write_text("image,subject,jnd_qp\nimg,s1,abc\n")
    with pytest.raises(InputError, match="jnd_qp"):
        load_vvc_jnd(bad)
