"""The training loop, evaluation against baselines and export, on a tiny fake-labelled dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import photo_crop
from PIL import Image
from test_datasets import FakeLabellers

import sursmr.predictor
from sursmr.curves import card_prior
from sursmr_core.errors import InputError
from training.cli import main as train_cli
from training.datasets.builder import build_dataset
from training.datasets.recipe import CodecPlan, Recipe
from training.evaluate import beats_baselines, evaluate
from training.export import export_run
from training.train import TrainConfig, masked_l1, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four sources x 1 crop x jpeg at 4 levels, split 2/1/1 by source, fake labellers."""
    root = tmp_path_factory.mktemp("tiny-data")
    photos = root / "photos"
    photos.mkdir()
    for i, (top, left) in enumerate([(0, 0), (150, 200), (300, 50), (350, 350)]):
        Image.fromarray(photo_crop(96, 128, top=top, left=left)).save(photos / f"p{i}.png")
    recipe = Recipe(
        name="tiny-train",
        collections=(),
        source_dirs=(str(photos),),
        crop_sizes=((64, 96),),
        crop_scales=(1.0,),
        crops_per_source=1,
        codecs=(CodecPlan("jpeg", (10, 40, 70, 95)),),
        split=(0.5, 0.25, 0.25),
        seed=5,
    )
    out = root / "data"
    report = build_dataset(recipe, out, factory=FakeLabellers())
    assert not report.failed
    return out


def test_masked_l1_skips_undefined_smr() -> None:
    pred = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    loss = masked_l1(pred, torch.tensor([0.0, 1.0]), torch.tensor([1.0, float("nan")]), 0.5, 0.5)
    # SUR errors 0.5 and 0.0 → 0.25; SMR only the first sample: 0.5
    assert float(loss) == pytest.approx(0.5 * 0.25 + 0.5 * 0.5)


def test_config_is_validated() -> None:
    with pytest.raises(InputError):
        TrainConfig(data="d", out="o", stage="warmup")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        TrainConfig(data="d", out="o", alpha=0, beta=0)
    assert TrainConfig(data="d", out="o", stage="pretrain").labels == "eq3"
    assert TrainConfig(data="d", out="o").labels == "jnd"


@pytest.mark.slow
def test_frozen_training_run_resumes_evaluates_and_exports(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = TrainConfig(data=str(tiny_data), out=str(run), model="sursmr_tiny", epochs=2, batch_size=4, lr=1e-3)
    first = train(config)
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "best.pt",
        "loss.png",
        "pred_vs_label.png",
    }
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    # frozen features are kept beside the dataset and reused by the next run with the same backbone
    assert len(list((tiny_data / ".feature-cache").glob("*.pt"))) == 2
    messages: list[str] = []
    train(TrainConfig(**{**config.to_dict(), "out": str(tmp_path / "other"), "epochs": 1}), log=messages.append)
    assert sum("cached features from" in m for m in messages) == 2
    assert first.val["overall"]["samples"] > 0 and "jpeg" in first.val
    # resuming with more epochs trains only the missing one
    again = train(TrainConfig(**{**config.to_dict(), "epochs": 3}))
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert again.best_epoch in (0, 1, 2)
    # a different experiment in the same directory is refused
    with pytest.raises(InputError, match="different config"):
        train(TrainConfig(**{**config.to_dict(), "lr": 0.5}))

    weights = export_run(run, "tiny-test", weights_dir=tmp_path / "weights")
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["label_sources"]["smr"].startswith("proxy")
    assert card["training"]["config"]["model"] == "sursmr_tiny"
    predictor = sursmr.predictor.load(weights, "cpu")
    # the card carries the training split's mean labels per level: the prior of the 'predicted' search
    stats = card["level_statistics"]
    assert set(stats) == set(card["training"]["trained_codecs"]) and stats
    for codec, section in stats.items():
        prior = card_prior(predictor.card, codec)
        assert prior is not None and len(prior) == len(section["levels"])
        assert all(0 <= sur <= 1 and 0 <= smr <= 1 for sur, smr in prior.values())
    report = evaluate(predictor, tiny_data, split="test")
    assert report["model"]["overall"]["samples"] == report["baselines"]["level_mean"]["overall"]["samples"] > 0
    assert isinstance(beats_baselines(report), bool)
    # through the shared prediction cache: the same numbers, and the second run reads the file
    key = f"tiny-test-{predictor.weights_sha256}"
    cached = evaluate(predictor, tiny_data, split="test", cache_key=key)
    assert (tiny_data / ".predictions" / f"{key}.json").is_file()
    again = evaluate(_Refuses(), tiny_data, split="test", cache_key=key)
    for got in (cached, again):
        for target in ("mae_sur", "mae_smr"):
            assert got["model"]["overall"][target] == pytest.approx(report["model"]["overall"][target], abs=1e-6)


class _Refuses:
    """A predictor that must not be asked: every score has to come from the cache."""

    name = "refuses"

    def predict(self, reference: object, candidates: object) -> list[object]:
        raise AssertionError("predicted although the cache holds every item")


@pytest.mark.slow
def test_training_changes_the_head_but_not_a_frozen_backbone(tiny_data: Path, tmp_path: Path) -> None:
    from training.train import build_model, model_from_checkpoint

    config = TrainConfig(data=str(tiny_data), out=str(tmp_path / "r"), model="sursmr_tiny", epochs=1, lr=1e-2)
    torch.manual_seed(config.seed)
    before = build_model(config)
    train(config)
    after = model_from_checkpoint(tmp_path / "r")
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True):
        if name.startswith("backbone."):
            assert torch.equal(a, b), name
    head_changed = any(
        not torch.equal(a, b)
        for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True)
        if name.startswith("head.")
    )
    assert head_changed


@pytest.mark.slow
def test_train_cli_reports_json(tiny_data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train_cli,
        [
            "train",
            "--data",
            str(tiny_data),
            "--out",
            str(tmp_path / "cli"),
            "--model",
            "sursmr_tiny",
            "--epochs",
            "1",
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 <= row["val_mae_sur"] <= 1
    assert np.isfinite(row["seconds"])


def test_identity_samples_are_zero_differences_labelled_one() -> None:
    from training.train import SplitData, with_identity

    data = SplitData(
        sur=torch.tensor([0.2, 0.4, 0.6, 0.8]),
        smr=torch.tensor([0.5, float("nan"), 0.5, 0.5]),
        meta=[{"codec": "jpeg"}] * 4,
        owner=torch.arange(4),
        diffs=[torch.ones(4, 3, 2, 2)],
    )
    grown = with_identity(data, 0.5)
    assert len(grown.meta) == grown.tiles == 6
    assert grown.sur[-2:].tolist() == [1.0, 1.0] and grown.smr[-2:].tolist() == [1.0, 1.0]
    assert grown.diffs is not None and float(grown.diffs[0][-2:].abs().sum()) == 0.0
    assert with_identity(data, 0.0) is data


@pytest.mark.slow
def test_ema_run_scores_and_keeps_the_averaged_weights(tiny_data: Path, tmp_path: Path) -> None:
    from training.train import load_checkpoint

    run = tmp_path / "ema"
    config = TrainConfig(
        data=str(tiny_data), out=str(run), model="sursmr_tiny", epochs=2, lr=1e-2, ema_decay=0.9, weight_decay=0.01
    )
    result = train(config)
    last = load_checkpoint(run / "checkpoint.pt")
    assert last["ema"] is not None
    best = load_checkpoint(run / "best.pt")
    head = [k for k in last["model"] if k.startswith("head.") and last["model"][k].dtype.is_floating_point]
    # the average trails the raw weights, so they differ; best.pt holds the average that was scored
    assert any(not torch.equal(last["model"][k], last["ema"][k]) for k in head)
    if result.best_epoch == 1:
        assert all(torch.equal(best["model"][k], last["ema"][k]) for k in head)
    with pytest.raises(InputError):
        TrainConfig(data="d", out="o", ema_decay=1.0)


@pytest.mark.slow
def test_feature_norm_gets_its_own_feature_cache(tiny_data: Path, tmp_path: Path) -> None:
    from training.train import build_model, feature_cache_path

    plain = TrainConfig(data=str(tiny_data), out=str(tmp_path / "a"), model="sursmr_tiny")
    normed = TrainConfig(**{**plain.to_dict(), "model_overrides": {"feature_norm": True}})
    model = build_model(normed)
    assert model.config.feature_norm
    assert feature_cache_path(plain, build_model(plain), "train") != feature_cache_path(normed, model, "train")
    # unit length over channels, times √C, at every position
    features = model.reference_features(torch.rand(1, 3, 64, 64))
    for f in features:
        norms = f.norm(dim=1)
        assert torch.allclose(norms, torch.full_like(norms, f.shape[1] ** 0.5), rtol=1e-4)


def test_relabel_cli_narrows_the_jury(tiny_data: Path, tmp_path: Path) -> None:
    import shutil

    from training.datasets.builder import read_items

    out = tmp_path / "data"
    shutil.copytree(tiny_data, out)  # relabel rewrites the items; the module's dataset stays as built
    items = len(read_items(out))
    result = CliRunner().invoke(train_cli, ["relabel", "--data", str(out), "--machines", "fake_colour", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["items"] == items > 0 and row["machines"] == "fake_colour"
    assert all(record["smr_machines"] == ["fake_colour"] for record in read_items(out))
    missing = CliRunner().invoke(train_cli, ["relabel", "--data", str(out), "--machines", "nothing_here"])
    assert missing.exit_code == 2 and "no verdicts of machine" in missing.output


@pytest.mark.slow
def test_evaluate_cli_scores_with_another_input_pipeline(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(data=str(tiny_data), out=str(run), model="sursmr_tiny", epochs=1))
    rows = {}
    for mode in ("resize224", "native"):
        result = CliRunner().invoke(
            train_cli,
            ["evaluate", str(run), "--data", str(tiny_data), "--input-mode", mode, "--input-size", "32", "--json"],
        )
        assert result.exit_code == 0, result.output
        rows[mode] = [json.loads(line) for line in result.stdout.strip().splitlines()]
    model = {mode: next(r for r in found if r["method"] == "model") for mode, found in rows.items()}
    # 64×96 crops: one 32² resize vs six native 32² tiles give different predictions, same samples
    assert model["resize224"]["samples"] == model["native"]["samples"] > 0
    assert model["resize224"]["mae_sur"] != model["native"]["mae_sur"]


def _same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same metrics, the same final weights and average, the same best weights."""
    from training.train import load_checkpoint

    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    for name in ("checkpoint.pt", "best.pt"):
        left, right = load_checkpoint(a / name), load_checkpoint(b / name)
        assert left["epoch"] == right["epoch"]
        for key in ("model", "ema"):
            if left[key] is None:
                assert right[key] is None
                continue
            for (k, x), y in zip(left[key].items(), right[key].values(), strict=True):
                assert torch.equal(x, y), f"{name} {key} {k}"


@pytest.mark.slow
def test_a_resumed_or_crashed_run_equals_an_uninterrupted_one(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.train import loop, report
    from training.train.checkpoint import TrainState

    def config(name: str, epochs: int) -> TrainConfig:
        # AdamW, a weight average and flips: every piece of state a resume must carry over
        return TrainConfig(
            data=str(tiny_data),
            out=str(tmp_path / name),
            model="sursmr_tiny",
            epochs=epochs,
            batch_size=4,
            lr=1e-2,
            ema_decay=0.5,
            weight_decay=0.01,
        )

    train(config("whole", 4))
    assert [json.loads(line)["epoch"] for line in (tmp_path / "whole/metrics.jsonl").read_text().splitlines()] == [
        0,
        1,
        2,
        3,
    ]

    # 2 + 2: stopped after two epochs, resumed with the full count
    train(config("resumed", 2))
    train(config("resumed", 4))
    _same_run(tmp_path / "whole", tmp_path / "resumed")

    # killed after epoch 1's checkpoint but before its metrics line, then while saving epoch 2's checkpoint
    class Crash(Exception):
        pass

    real_append, real_save = report.append_metrics, loop.save_checkpoint

    def append_then_crash(path: Path, entry: dict[str, object]) -> None:
        if entry["epoch"] == 1:
            raise Crash
        real_append(path, entry)

    def save_then_crash(path: Path, state: TrainState) -> None:
        if state.epoch == 3:  # the checkpoint after epoch 2
            raise Crash
        real_save(path, state)

    crashed = config("crashed", 4)
    monkeypatch.setattr(report, "append_metrics", append_then_crash)
    with pytest.raises(Crash):
        train(crashed)
    monkeypatch.setattr(report, "append_metrics", real_append)
    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        train(crashed)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    train(crashed)
    _same_run(tmp_path / "whole", tmp_path / "crashed")


@pytest.mark.slow
def test_missing_smr_labels_are_left_out_of_the_loss_and_the_mae(tiny_data: Path, tmp_path: Path) -> None:
    import shutil

    from training.train import SplitData, load_checkpoint, mae_report

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns(".feature-cache"))
    manifest = data / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    train_records = [r for r in records if r["split"] == "train"]
    # a crop with too few machines: no SMR at any level (null), another one missing two levels
    train_records[0]["labels"]["smr"] = None
    val = next(r for r in records if r["split"] == "val")
    val["labels"]["smr"][:2] = [None, None]
    test = next(r for r in records if r["split"] == "test")
    test["labels"]["smr"][0] = None
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))

    run = tmp_path / "run"
    result = train(
        TrainConfig(data=str(data), out=str(run), model="sursmr_tiny", epochs=2, batch_size=2, lr=1e-2),
        resume=False,
    )
    overall = result.val["overall"]
    assert overall["smr_samples"] == overall["samples"] - 2 and overall["mae_smr"] is not None
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(h["train_loss"]) for h in history)
    weights = load_checkpoint(run / "checkpoint.pt")["model"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.dtype.is_floating_point)

    predictor = sursmr.predictor.load(run, "cpu")
    report = evaluate(predictor, data, split="test")
    for table in (report["model"], *report["baselines"].values()):
        assert table["overall"]["smr_samples"] == table["overall"]["samples"] - 1
        assert table["overall"]["mae_smr"] is not None and np.isfinite(table["overall"]["mae_smr"])

    # the SMR MAE averages the labelled samples only: 0.5 and 0.1 here, not the missing one
    toy = SplitData(
        sur=torch.tensor([0.5, 0.5, 0.5]),
        smr=torch.tensor([1.0, float("nan"), 0.4]),
        meta=[{"codec": "jpeg"}] * 3,
        owner=torch.arange(3),
    )
    numbers = mae_report(torch.tensor([[0.5, 0.5], [0.5, 0.0], [0.5, 0.5]]), toy)["overall"]
    assert numbers["samples"] == 3 and numbers["smr_samples"] == 2
    assert numbers["mae_smr"] == pytest.approx(0.3) and numbers["mae_sur"] == 0.0


@pytest.mark.slow
def test_frozen_stats_run_learns_caches_vectors_and_exports(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = TrainConfig(data=str(tiny_data), out=str(run), model="sursmr_tiny_stats", epochs=30, batch_size=4, lr=3e-3)
    result = train(config)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["train_loss"] for line in lines]
    assert losses[-1] < losses[0]
    # the cache holds vectors, not difference maps
    caches = list((tiny_data / ".feature-cache").glob("*.pt"))
    payloads = [torch.load(c, weights_only=False) for c in caches]
    assert any(p.get("pooled") is not None and p.get("diffs") is None for p in payloads)
    assert result.val["overall"]["samples"] > 0
    weights = export_run(run, "tiny-stats", weights_dir=tmp_path / "weights")
    predictor = sursmr.predictor.load(weights, "cpu")
    assert predictor.model.config.head == "stats"
    # the exported network reproduces the standardisation it was trained with
    head = predictor.model.head
    assert type(head).__name__ == "StatsHead" and float(head.feature_std.min()) > 0
    assert not torch.equal(head.feature_mean, torch.zeros_like(head.feature_mean))


@pytest.mark.slow
def test_split_stats_head_keeps_each_targets_best_epoch(tiny_data: Path, tmp_path: Path) -> None:
    from training.train import load_checkpoint

    run = tmp_path / "split"
    config = TrainConfig(
        data=str(tiny_data),
        out=str(run),
        model="sursmr_tiny_stats",
        epochs=4,
        batch_size=4,
        lr=3e-3,
        model_overrides={"stats_streams": ["pixel"], "smr_streams": ["channels", "pixel"]},
    )
    train(config)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    sur_best = min(range(len(history)), key=lambda e: history[e]["val"]["overall"]["mae_sur"])
    best, sur, smr = (load_checkpoint(run / name) for name in ("best.pt", "best_sur.pt", "best_smr.pt"))
    assert sur["epoch"] == sur_best and best["target_epochs"]["sur"] == sur_best
    assert best["target_epochs"]["smr"] == smr["epoch"]
    for key, value in best["model"].items():
        source = smr if key.startswith("head.smr_members.") else sur
        assert torch.equal(value, source["model"][key]), key


def test_error_table_reports_signed_bias_beside_the_mae() -> None:
    from training.evaluate import Sample, error_table

    samples = [Sample("a", "jpeg", 50, 0.5, float("nan"), {}), Sample("b", "jpeg", 60, 0.8, 0.5, {})]
    table = error_table(samples, [(0.6, 0.9), (0.6, 0.9)])["jpeg"]
    # SUR errors +0.1 and −0.2: MAE 0.15, bias −0.05; SMR only the labelled sample: +0.4
    assert table["mae_sur"] == pytest.approx(0.15) and table["bias_sur"] == pytest.approx(-0.05)
    assert table["bias_smr"] == pytest.approx(0.4) and table["mae_smr"] == pytest.approx(0.4)


def test_item_vector_cache_gives_the_same_vectors_and_skips_the_backbone(tiny_data: Path, tmp_path: Path) -> None:
    from training.datasets.torch_dataset import SurSmrDataset
    from training.train import build_model
    from training.train.data import prepare_split

    config = TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), model="sursmr_tiny_stats")
    model = build_model(config)
    dataset = SurSmrDataset(tiny_data, "train", label_kind=config.labels)
    device = torch.device("cpu")
    plain = prepare_split(dataset, model, frozen=True, device=device)
    cache = tmp_path / "items"
    first = prepare_split(dataset, model, frozen=True, device=device, item_cache=cache)
    files = sorted(cache.glob("*.pt"))
    assert len(files) == len(dataset.records)  # one file per item
    assert plain.pooled is not None and first.pooled is not None and plain.identity is not None
    assert torch.equal(plain.pooled, first.pooled) and torch.equal(plain.identity, first.identity)
    assert torch.equal(plain.owner, first.owner) and torch.equal(plain.sur, first.sur)

    calls = 0
    original = model.reference_features

    def counting(images: torch.Tensor) -> list[torch.Tensor]:
        nonlocal calls
        calls += 1
        return original(images)

    model.reference_features = counting  # type: ignore[method-assign]
    again = prepare_split(dataset, model, frozen=True, device=device, item_cache=cache)
    assert calls == 0 and again.pooled is not None and torch.equal(again.pooled, plain.pooled)
    # a damaged cache file is computed again, never trusted
    files[0].write_bytes(b"not a tensor file")
    repaired = prepare_split(dataset, model, frozen=True, device=device, item_cache=cache)
    assert calls > 0 and repaired.pooled is not None and torch.equal(repaired.pooled, plain.pooled)


def test_item_vector_cache_is_keyed_on_the_backbone_weights(tiny_data: Path, tmp_path: Path) -> None:
    from training.train import build_model
    from training.train.data import feature_signature

    config = TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), model="sursmr_tiny_stats")
    model = build_model(config)
    before = feature_signature(model)
    with torch.no_grad():
        next(iter(model.backbone.parameters())).add_(1.0)
    assert feature_signature(model) != before
