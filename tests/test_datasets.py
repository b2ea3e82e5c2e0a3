"""The resumable dataset builder, relabelling and the torch dataset (fake labellers).

Recipes, crops and splits (no build) are tested in ``test_dataset_plan.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import photo_crop

from sursmr_core.errors import InputError
from training.datasets import builder as builder_module
from training.datasets.builder import build_dataset, read_items, relabel_smr
from training.datasets.labelling import LabelPipeline
from training.datasets.recipe import DEFAULT_RECIPE, CodecPlan, Recipe
from training.datasets.sources import directory_photos
from training.labels.pseudo_sur import eq3_pseudo_sur
from training.labels.smr import smr_from_verdicts

# --- fake labellers: cheap, deterministic, picklable (module level) --------------------


class FakeMeanAbsError:
    name = "fake_mae"
    lower_is_better = True
    version = "1"

    def score(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        return float(np.abs(reference.astype(np.float64) - distorted).mean())


class FakePsnr:
    name = "fake_psnr"
    lower_is_better = False
    version = "1"

    def score(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        mse = float(((reference.astype(np.float64) - distorted) ** 2).mean())
        return float(10 * np.log10(255.0**2 / max(mse, 1e-6)))


class FakeMachine:
    """'Classifies' the mean colour; satisfied when the class is unchanged; cannot judge dark images."""

    name = "fake_colour"
    task = "classification"
    version = "1"
    rule = "argmax channel mean unchanged"

    def analyse(self, rgb: np.ndarray) -> Any:
        means = rgb.reshape(-1, 3).mean(axis=0)
        return None if means.max() < 5 else int(np.argmax(means))

    def judge(self, original: Any, compressed: Any) -> bool | None:
        return None if original is None else original == compressed


def fake_jnd(
    reference: np.ndarray, decoded: Sequence[np.ndarray], scores: Mapping[str, Sequence[float]]
) -> list[float | None]:
    return [float(np.clip(1 - s / 10.0, 0, 1)) for s in scores["fake_mae"]]


@dataclass(frozen=True)
class FakeLabellers:
    """A pipeline factory like ``RegistryLabellers`` but with the fakes above."""

    jnd: bool = True

    def __call__(self) -> LabelPipeline:
        return LabelPipeline(
            metrics={"fake_mae": FakeMeanAbsError(), "fake_psnr": FakePsnr()},
            machines={"fake_colour": FakeMachine()},
            # the real label maths; K = 1 so the single fake machine gives an SMR label
            eq3=eq3_pseudo_sur,
            smr=functools.partial(smr_from_verdicts, min_applicable=1),
            jnd_sur=fake_jnd if self.jnd else None,
            jnd_sur_name="tests.fake_jnd" if self.jnd else None,
        )

    def describe(self) -> dict[str, Any]:
        return {"proxy_labels": True, "metrics": ["fake_mae", "fake_psnr"], "machines": ["fake_colour"]}


# --- the tiny recipe (the photo_dir fixture is in conftest.py) ---------------------------


def tiny_recipe(photo_dir: Path, **changes: Any) -> Recipe:
    base = Recipe(
        name="tiny",
        collections=(),
        source_dirs=(str(photo_dir),),
        crop_sizes=((48, 64),),
        crop_scales=(1.0, 0.75),
        crops_per_source=2,
        codecs=(CodecPlan("jpeg", (30, 60, 90)),),
        split=(0.5, 0.0, 0.5),
        seed=3,
    )
    return base.with_changes(**changes)


# --- builder --------------------------------------------------------------------------


def test_tiny_build_writes_shards_and_manifest(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers())
    assert report.items == 4 and report.built == 4 and not report.failed
    lines = (out / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    header = json.loads((out / "dataset.json").read_text())
    assert header["recipe"]["name"] == "tiny" and header["labellers"]["machines"] == ["fake_colour"]
    for record in records:
        assert record["levels"] == [30, 60, 90]
        assert record["bytes"][0] < record["bytes"][2]  # quality 30 is smaller than 90
        labels = record["labels"]
        assert set(labels["scores"]) == {"fake_mae", "fake_psnr"}
        assert all(0.0 <= v <= 1.0 for v in labels["pseudo_sur_eq3"])
        assert labels["pseudo_sur_eq3"][2] > labels["pseudo_sur_eq3"][0]
        assert len(labels["machine_verdicts"]["fake_colour"]) == 3
        assert record["labels_are_proxies"] is True
        with np.load(out / record["npz"]) as data:
            assert {"reference_png", "decoded_png_0", "bitstream_2"} <= set(data.files)
            assert bytes(data["bitstream_0"].tobytes()[:2]) == b"\xff\xd8"  # a JPEG
    # every crop of a source is in its source's split, and no source spans two splits
    split_of: dict[str, set[str]] = {}
    for record in records:
        split_of.setdefault(record["source_id"], set()).add(record["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "test"}


def test_build_resumes_without_redoing_finished_items(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    done: list[str] = []

    class Killed(Exception):
        pass

    def die_after_two(outcome: builder_module.ItemOutcome) -> None:
        done.append(outcome.item_id)
        if len(done) == 2:
            raise Killed

    recipe = tiny_recipe(photo_dir)
    with pytest.raises(Killed):
        build_dataset(recipe, out, factory=FakeLabellers(), on_item=die_after_two)
    finished = {r["item_id"]: r for r in read_items(out)}
    assert set(finished) == set(done)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "items").glob("*/*")}
    # a worker killed mid-write leaves at most a shard without its done-marker: ignored, never listed
    half = out / "items" / "zz_half" / "jpeg.npz"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"partial")
    stale = half.parent / ".jpeg.npz.x1y2.part"
    stale.write_bytes(b"temp file of a killed writer")

    report = build_dataset(recipe, out, factory=FakeLabellers())
    assert report.already_done == 2 and report.built == 2 and not report.failed
    assert not stale.exists()
    for path, stamp in stamps.items():
        assert path.stat().st_mtime_ns == stamp, f"{path} was rewritten"
    assert len(read_items(out)) == 4
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 4
    # a third run has nothing to do
    again = build_dataset(recipe, out, factory=FakeLabellers())
    assert again.already_done == 4 and again.built == 0


def test_train_items_carry_their_level_subset_and_runs_record_wall_time(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    grid = (20, 35, 50, 65, 80, 95)
    recipe = tiny_recipe(photo_dir, codecs=(CodecPlan("jpeg", grid, train_levels=3),))
    build_dataset(recipe, out, factory=FakeLabellers())
    records = read_items(out)
    by_split = {r["split"]: r for r in records}
    assert by_split["test"]["levels"] == list(grid) and by_split["test"]["level_subset"] is False
    train = by_split["train"]
    assert len(train["levels"]) == 3 and train["levels"][0] == 20 and train["levels"][-1] == 95
    assert train["level_subset"] is True and train["grid_size"] == 6
    assert train["cpu_seconds"] > 0
    # Eq. 3 is normalised over the crop's own level set: its ends are the set's best and worst
    eq3 = train["labels"]["pseudo_sur_eq3"]
    assert max(eq3) == pytest.approx(1.0) and min(eq3) == pytest.approx(0.0)
    header = json.loads((out / "dataset.json").read_text())
    assert len(header["runs"]) == 1 and header["runs"][0]["finished"] and header["runs"][0]["seconds"] > 0
    assert {s["collection"] for s in header["sources"]} == {f"dir:{photo_dir}"}
    build_dataset(recipe.with_changes(name="renamed"), out, factory=FakeLabellers())  # a name is cosmetic
    runs = json.loads((out / "dataset.json").read_text())["runs"]
    assert len(runs) == 2 and runs[1]["built"] == 0 and runs[1]["already_done"] == 4
    assert builder_module.build_seconds({"runs": runs}) == pytest.approx(runs[0]["seconds"] + runs[1]["seconds"])


def test_max_sources_draws_a_seeded_subset(photo_dir: Path) -> None:
    photos = directory_photos(photo_dir)
    one = builder_module.choose_sources(photos, 1, seed=5)
    assert len(one) == 1 and one == builder_module.choose_sources(photos, 1, seed=5)
    assert builder_module.choose_sources(photos, None, seed=5) == photos


def test_machines_that_do_not_apply_are_not_run_on_decoded_images() -> None:
    from training.datasets.labelling import label_sweep

    class Picky(FakeMachine):
        calls = 0

        def analyse(self, rgb: np.ndarray) -> Any:
            Picky.calls += 1
            return super().analyse(rgb)

        def applies(self, original: Any) -> bool:
            return False

    pipeline = FakeLabellers()()
    pipeline.machines = {"picky": Picky()}
    ref = photo_crop(32, 32)
    labels = label_sweep(ref, [ref, ref // 2], pipeline)
    assert labels.verdicts["picky"] == [None, None] and Picky.calls == 1  # the reference only


def test_build_refuses_an_out_dir_of_another_recipe(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers(), limit=1)
    with pytest.raises(InputError, match="different recipe"):
        build_dataset(tiny_recipe(photo_dir, seed=99), out, factory=FakeLabellers(), limit=1)


def test_build_refuses_to_resume_under_other_codec_settings(
    photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codec_adapters.jpeg import JpegAdapter

    out = tmp_path / "ds"
    build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers(), limit=1)
    recorded = json.loads((out / "dataset.json").read_text())["codec_settings"]["jpeg"]
    assert recorded == {"options": dict(JpegAdapter.options), "full_chroma_from": JpegAdapter.full_chroma_from}
    build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers(), limit=1)  # same settings resume
    monkeypatch.setattr(JpegAdapter, "full_chroma_from", 95)
    with pytest.raises(InputError, match=r"other settings of codec.*jpeg"):
        build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers(), limit=1)


@pytest.mark.slow  # real VVC encodes
def test_adding_a_codec_to_a_built_dataset_keeps_its_items(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    jpeg_only = tiny_recipe(photo_dir)
    build_dataset(jpeg_only, out, factory=FakeLabellers())
    stamps = {p: p.stat().st_mtime_ns for p in (out / "items").glob("*/jpeg.*")}
    wider = jpeg_only.with_changes(codecs=(*jpeg_only.codecs, CodecPlan("vvc", (30, 45))))
    report = build_dataset(wider, out, factory=FakeLabellers())
    assert report.already_done == 4 and report.built == 4
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    assert json.loads((out / "dataset.json").read_text())["recipe"]["codecs"][-1]["codec"] == "vvc"
    # dropping a codec is not an extension
    with pytest.raises(InputError, match="different recipe"):
        build_dataset(wider.with_changes(codecs=wider.codecs[1:]), out, factory=FakeLabellers())


def test_failed_items_are_recorded_and_retried(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    recipe = tiny_recipe(photo_dir, crop_sizes=((48, 64),))
    report = build_dataset(recipe, out, factory=BrokenLabellers(), limit=1)
    assert report.built == 0 and len(report.failed) == 1
    assert "RuntimeError" in (report.failed[0].error or "")
    assert list((out / "failed").glob("*.json"))
    report = build_dataset(recipe, out, factory=FakeLabellers(), limit=1)
    assert report.built == 1 and not list((out / "failed").glob("*.json"))


@dataclass(frozen=True)
class BrokenLabellers(FakeLabellers):
    def __call__(self) -> LabelPipeline:
        raise RuntimeError("model file missing")


@pytest.mark.slow
def test_local_process_pool_build(photo_dir: Path, tmp_path: Path) -> None:
    report = build_dataset(tiny_recipe(photo_dir), tmp_path / "ds", factory=FakeLabellers(), workers=2)
    assert report.built == 4 and not report.failed


@pytest.mark.slow
def test_ray_executor_builds_the_tiny_dataset(photo_dir: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed")
    from ray import cloudpickle

    # the fakes live in this test module, which Ray workers cannot import: ship them by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]
    try:
        report = build_dataset(
            tiny_recipe(photo_dir), tmp_path / "ds", factory=FakeLabellers(), executor="ray", workers=2
        )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]
    assert not ray.is_initialized()
    assert report.built == 4 and not report.failed, report.failed
    assert len(read_items(tmp_path / "ds")) == 4


# --- torch dataset ----------------------------------------------------------------------


@pytest.mark.slow
def test_torch_dataset_shapes_and_label_ranges(photo_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from training.datasets.torch_dataset import SurSmrDataset

    out = tmp_path / "ds"
    build_dataset(tiny_recipe(photo_dir), out, factory=FakeLabellers())
    train = SurSmrDataset(out, "train", label_kind="eq3")
    test = SurSmrDataset(out, "test", label_kind="jnd", flip=True, seed=1)
    assert len(train) == 2 * 3 and len(test) == 2 * 3  # 2 crops x 3 levels per split
    assert len(SurSmrDataset(out, None)) == 12
    reference, distorted, sur, smr, meta = train[0]
    assert reference.shape == distorted.shape == (3, 48, 64)
    assert reference.dtype == torch.float32 and 0.0 <= float(reference.min()) <= float(reference.max()) <= 1.0
    assert 0.0 <= float(sur) <= 1.0
    assert torch.isnan(smr) or 0.0 <= float(smr) <= 1.0
    assert meta["codec"] == "jpeg" and meta["level"] in (30, 60, 90)
    # flipping moves both images together
    for i in range(len(test)):
        ref, dist, *_ = test[i]
        plain_ref, plain_dist, *_ = SurSmrDataset(out, "test", label_kind="jnd")[i]
        flipped = [plain_ref, plain_ref.flip(-1), plain_ref.flip(-2), plain_ref.flip(-1).flip(-2)]
        k = next(j for j, cand in enumerate(flipped) if torch.equal(cand, ref))
        expected = [plain_dist, plain_dist.flip(-1), plain_dist.flip(-2), plain_dist.flip(-1).flip(-2)][k]
        assert torch.equal(dist, expected)
    with pytest.raises(InputError):
        SurSmrDataset(out, "train", label_kind="mos")  # type: ignore[arg-type]


class FakeNeverSatisfied(FakeMachine):
    """A hair-trigger machine: judges every image and is never satisfied."""

    name = "fake_never"

    def judge(self, original: Any, compressed: Any) -> bool | None:
        return False


@dataclass(frozen=True)
class TwoMachineLabellers(FakeLabellers):
    def __call__(self) -> LabelPipeline:
        pipeline = super().__call__()
        return dataclasses.replace(pipeline, machines={**pipeline.machines, "fake_never": FakeNeverSatisfied()})


def test_relabel_narrows_the_smr_jury_without_running_machines(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(tiny_recipe(photo_dir), out, factory=TwoMachineLabellers())
    before = {r["item_id"]: r for r in read_items(out)}
    # fake_never is never satisfied, so with two judges SMR is at most 0.5
    assert all(v is None or v <= 0.5 for r in before.values() for v in r["labels"]["smr"])

    with pytest.raises(InputError, match="no verdicts of machine"):
        relabel_smr(out, ["fake_colour", "not_run"])
    assert {r["item_id"]: r for r in read_items(out)} == before  # nothing was rewritten

    # K defaults to the recipe's (4): one juror is too few, so no crop keeps an SMR label
    report = relabel_smr(out, ["fake_colour"])
    assert report.min_applicable == 4
    assert all(v is None for r in read_items(out) for v in r["labels"]["smr"])
    report = relabel_smr(out, ["fake_colour"], min_applicable=1)
    assert report.items == 4 and report.changed_labels > 0
    after = {r["item_id"]: r for r in read_items(out)}
    for item_id, record in after.items():
        verdicts = before[item_id]["labels"]["machine_verdicts"]["fake_colour"]
        expected = [None if v is None else float(v) for v in verdicts]
        assert record["labels"]["smr"] == expected
        assert set(record["labels"]["machine_verdicts"]) == {"fake_colour"}
        assert record["labels"]["machine_verdicts_excluded"]["fake_never"] == [False, False, False]
        assert record["smr_machines"] == ["fake_colour"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["item_id"]: r["labels"]["smr"] for r in manifest} == {k: r["labels"]["smr"] for k, r in after.items()}
    recipe = json.loads((out / "dataset.json").read_text())["recipe"]
    assert recipe["machines"] == ["fake_colour"] and recipe["min_applicable_machines"] == 1
    # the excluded verdicts are kept, so the jury can be widened again
    relabel_smr(out, ["fake_colour", "fake_never"])
    assert {r["item_id"]: r["labels"]["smr"] for r in read_items(out)} == {
        k: r["labels"]["smr"] for k, r in before.items()
    }
    # without a jury, relabel keeps the dataset's own (the one its recipe now names)
    assert relabel_smr(out, min_applicable=2).machines == ("fake_colour", "fake_never")
    # a build of the recipe that names the narrowed jury resumes the dataset
    relabel_smr(out, ["fake_colour"], min_applicable=1)
    narrowed = tiny_recipe(photo_dir, machines=("fake_colour",), min_applicable_machines=1)
    again = build_dataset(narrowed, out, factory=FakeLabellers())
    assert again.already_done == 4 and again.built == 0


def test_relabelled_dataset_names_its_jury_and_the_command_that_made_it(photo_dir: Path, tmp_path: Path) -> None:
    from training.datasets.relabel import SmrJury, dataset_smr_jury

    out = tmp_path / "ds"
    build_dataset(tiny_recipe(photo_dir), out, factory=TwoMachineLabellers())
    built = dataset_smr_jury(out)
    assert built is not None and built.machines == ("fake_colour", "fake_never")
    relabel_smr(out, ["fake_never", "fake_colour"], min_applicable=2)
    jury = dataset_smr_jury(out)
    assert jury == SmrJury(("fake_colour", "fake_never"), 2)
    assert jury.command() == "sursmr-train relabel --min-applicable 2 --machines fake_colour,fake_never"
    assert SmrJury.from_dict(jury.to_dict()) == jury and jury.to_dict()["relabel"] == jury.command()
    assert dataset_smr_jury(tmp_path / "missing") is None


def test_smr_jury_of_a_recipe_sorts_machines_and_defaults_k_to_one() -> None:
    from training.datasets.relabel import SmrJury

    assert SmrJury.of_recipe({"machines": ["b", "a"]}) == SmrJury(("a", "b"), 1)  # built before K existed
    assert SmrJury.of_recipe({"machines": [], "min_applicable_machines": 4}) is None
    assert SmrJury(("a",), 3).describe() == "1 machine at K = 3"


def test_smr_labels_note_says_whether_the_labels_are_the_models_training_labels() -> None:
    from training.datasets.relabel import SmrJury, smr_labels_note, smr_labels_note_of

    quiet, whole = SmrJury(("a", "b"), 2), SmrJury(("a", "b", "c"), 4)
    same = smr_labels_note(quiet, quiet)
    assert "the jury and K the model was trained on (2 machines at K = 2" in same
    assert "`sursmr-train relabel --min-applicable 2 --machines a,b`" in same
    other = smr_labels_note(whole, quiet, command=False)
    assert other.startswith("SMR labels: 3 machines at K = 4, not the jury and K the model was trained on")
    assert "(2 machines at K = 2)" in other and "sursmr-train" not in other
    assert "records no training jury" in smr_labels_note(quiet, None)
    assert "records no machine jury" in smr_labels_note(None, quiet)
    assert smr_labels_note_of({"test": quiet.to_dict(), "model": quiet.to_dict()}, "test") == same
    assert "records no machine jury" in smr_labels_note_of({"model": quiet.to_dict()}, "test")


def test_shipped_card_records_its_relabel_command_in_the_jury_format() -> None:
    """The card's training relabel command is what ``SmrJury.command`` writes for its training recipe."""
    from sursmr.models.weights import read_card, resolve_weights
    from sursmr.predictor import DEFAULT_MODEL
    from training.datasets.relabel import model_smr_jury

    training = read_card(resolve_weights(DEFAULT_MODEL)).training
    jury = model_smr_jury(training)
    assert jury is not None and training is not None
    assert jury.command() == training["data_snapshot"]["smr_relabel"]


def test_default_recipe_jury_is_registered_and_sorted() -> None:
    from training.datasets.recipe import DEFAULT_MACHINES, V1_MACHINES, V1_RECIPE
    from training.machines import MACHINES

    assert V1_RECIPE.machines == V1_MACHINES == tuple(sorted(V1_MACHINES))
    assert DEFAULT_RECIPE.machines == DEFAULT_MACHINES == tuple(sorted(DEFAULT_MACHINES))
    assert set(DEFAULT_MACHINES) < set(MACHINES.names())


def test_the_dataset_header_reader_names_the_folder_and_what_to_do(tmp_path: Path) -> None:
    from training.datasets.items import read_header

    with pytest.raises(InputError, match="built by 'sursmr-train build'"):
        read_header(tmp_path)
    assert read_header(tmp_path, required=False) == {}
    (tmp_path / "dataset.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match=r"unreadable .*not a JSON object"):
        read_header(tmp_path)
    (tmp_path / "dataset.json").write_text('{"recipe": {"name": "v2"}', encoding="utf-8")
    assert read_header(tmp_path, required=False) == {}
    (tmp_path / "dataset.json").write_text('{"recipe": {"name": "v2"}}', encoding="utf-8")
    assert read_header(tmp_path)["recipe"] == {"name": "v2"}
