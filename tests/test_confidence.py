"""Confidence calibration maths: conformal quantile, per-item required margin, knob search, card table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sursmr.confidence import (
    ConfidenceEntry,
    ConfidenceTable,
    ItemCurves,
    calibrate,
    cheapest_meeting,
    choose_default,
    chosen_index,
    conformal_quantile,
    default_obstacle,
    densify,
    hit_rate_and_bytes,
    max_supported_confidence,
    reachable_share,
    required_margin,
)
from sursmr_core.errors import InputError


def test_conformal_quantile_is_the_ceil_rank() -> None:
    scores = list(range(1, 20))  # n = 19: rank ⌈20·0.9⌉ = 18
    assert conformal_quantile(scores, 0.9) == 18.0
    assert conformal_quantile(scores, 0.5) == 10.0
    assert conformal_quantile(scores, 0.95) == 19.0
    assert math.isinf(conformal_quantile(scores, 0.96))  # rank 20 > n
    assert max_supported_confidence(19) == pytest.approx(0.95)


def test_conformal_quantile_recovers_a_known_quantile() -> None:
    rng = np.random.default_rng(0)
    residuals = rng.normal(0.0, 0.1, size=20_000)  # 0.9 quantile = 0.1 · 1.2816
    assert conformal_quantile(residuals, 0.9) == pytest.approx(0.12816, abs=0.004)
    assert conformal_quantile(residuals, 0.75) == pytest.approx(0.06745, abs=0.004)


def test_conformal_margin_covers_fresh_samples() -> None:
    """Average coverage over many small calibration sets is ≥ P (the split-conformal guarantee)."""
    rng = np.random.default_rng(1)
    coverage = []
    for _ in range(2000):
        calib = rng.exponential(0.05, size=15)
        q = conformal_quantile(calib, 0.8)
        fresh = rng.exponential(0.05, size=50)
        coverage.append(np.mean(fresh <= q))
    assert np.mean(coverage) >= 0.8
    assert np.mean(coverage) < 0.86  # and not wildly conservative: rank 13 of 15 ≈ 0.8125 expected


def test_conformal_quantile_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        conformal_quantile([], 0.9)
    with pytest.raises(InputError):
        conformal_quantile([0.1], 1.0)
    with pytest.raises(InputError):
        conformal_quantile([math.nan], 0.5)


def test_densify_keeps_points_and_interpolates() -> None:
    out = densify([0.0, 1.0, 3.0], 4)
    assert out.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert np.isnan(densify([0.0, math.nan], 2)[1])
    assert densify([0.2, 0.4], 1).tolist() == [0.2, 0.4]


def test_chosen_index_first_passing_else_best() -> None:
    pred = np.array([0.3, 0.6, 0.8, 0.95])
    smr = np.array([1.0, 0.5, 1.0, 1.0])
    assert chosen_index(pred, smr, 0.5, None, 0.0) == 1
    assert chosen_index(pred, smr, 0.5, 0.8, 0.0) == 2  # SMR dip at index 1
    assert chosen_index(pred, smr, 0.5, None, 0.25) == 2
    assert chosen_index(pred, smr, 0.99, None, 0.0) == 3  # nothing passes: the best level


def test_required_margin_is_the_overshoot_where_truth_crosses() -> None:
    # prediction runs 0.1 above the truth everywhere: the controller needs margin 0.1
    true = np.linspace(0.2, 1.0, 9)
    pred = np.clip(true + 0.1, 0, 1)
    nan = np.full(9, math.nan)
    m = required_margin(pred, nan, true, nan, 0.5, None, substeps=10)
    assert m == pytest.approx(0.1, abs=0.011)
    # on the labelled levels alone (0.1 apart) the coarse grid overshoots for free
    assert required_margin(pred, nan, true, nan, 0.5, None, substeps=1) < 0.01
    # a pessimistic predictor needs no margin
    assert required_margin(true - 0.1, nan, true, nan, 0.5, None, substeps=1) == 0.0
    # unreachable target: no margin helps
    assert math.isinf(required_margin(pred, nan, true * 0.5, nan, 0.75, None, substeps=1))


def test_required_margin_with_smr_target() -> None:
    sur = np.array([0.3, 0.6, 0.8, 0.95])
    pred_smr = np.array([0.9, 0.9, 0.9, 0.95])
    true_smr = np.array([0.5, 0.5, 0.7, 0.9])  # truth meets SMR ≥ 0.8 at the best level only
    m = required_margin(sur, pred_smr, sur, true_smr, 0.5, 0.8, substeps=1)
    # the SMR prediction 0.9 must be out of reach: 0.8 + m > 0.9, and 0.95 reachable: m ≤ 0.15
    assert 0.1 < m <= 0.15


def _item(i: int, codec: str, offset: float) -> ItemCurves:
    true = np.linspace(0.2, 1.0, 9)
    return ItemCurves(
        item_id=f"{codec}-{i}",
        codec=codec,
        group=f"photo{i}",
        nbytes=np.linspace(1000, 9000, 9),
        pred_sur=np.clip(true + offset, 0, 1),
        pred_smr=np.full(9, math.nan),
        true_sur=true,
        true_smr=np.full(9, math.nan),
    )


def test_calibrate_reaches_the_confidence_and_picks_default() -> None:
    offsets = np.linspace(-0.1, 0.15, 40)
    items = [_item(i, "jpeg", float(o)) for i, o in enumerate(offsets)]
    table = calibrate(items, [(0.6, None)], (0.5, 0.9), substeps=4)
    margins = {e.confidence: e for e in table.entries}
    assert margins[0.9].margin is not None and margins[0.5].margin is not None
    assert margins[0.9].margin > margins[0.5].margin
    assert margins[0.9].val_hit_rate is not None and margins[0.9].val_hit_rate >= 0.9
    assert margins[0.5].val_hit_rate is not None and margins[0.5].val_hit_rate >= 0.5
    assert table.default == 0.9  # the only confidence whose validation hit rate is ≥ 0.9
    rate, _ = hit_rate_and_bytes(items, (0.6, None), 0.0, 4)
    assert rate < 0.9  # without the margin the optimistic items miss


def test_calibrated_table_names_the_smr_jury_of_its_labels(tmp_path: Path) -> None:
    """``calibrate_predictor`` records which SMR labels (jury, K) the margins were calibrated on."""
    import json

    from training.calibration import calibrate_predictor

    data = tmp_path / "val"
    (data / ".predictions").mkdir(parents=True)
    recipe = {"name": "r", "machines": ["b", "a"], "min_applicable_machines": 2}
    (data / "dataset.json").write_text(json.dumps({"recipe": recipe}))
    true = np.linspace(0.2, 1.0, 9)
    records, cached = [], {}
    for i in range(12):
        item_id = f"photo{i}.jpeg"
        records.append(
            {
                "item_id": item_id,
                "codec": "jpeg",
                "split": "val",
                "source_id": f"photo{i}",
                "levels": list(range(10, 100, 10)),
                "better": "higher",
                "bytes": list(range(1000, 10000, 1000)),
                "npz_sha256": f"digest{i}",
                "labels": {"sur_jnd_proxy": list(true), "smr": [1.0] * 9},
            }
        )
        pred = list(np.clip(true + 0.02 * (i % 3), 0, 1))
        cached[item_id] = {"npz_sha256": f"digest{i}", "sur": pred, "smr": [1.0] * 9, "seconds": 0.0}
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (data / ".predictions" / "fake.json").write_text(json.dumps(cached))
    table = calibrate_predictor(None, data, confidences=(0.75,), targets=[(0.6, None)], cache_key="fake", substeps=2)
    assert table.info["smr_jury"]["machines"] == ["a", "b"] and table.info["smr_jury"]["min_applicable"] == 2
    assert table.info["labels"].endswith("machine-zoo SMR (2 machines at K = 2)")


def test_calibrate_pools_codecs_with_too_few_items() -> None:
    items = [_item(i, "jpeg", 0.05) for i in range(5)] + [_item(i, "bpg", 0.05) for i in range(30)]
    table = calibrate(items, [(0.6, None)], (0.9,), substeps=2)
    scopes = {e.codec: e.scope for e in table.entries}
    assert scopes == {"jpeg": "pooled", "bpg": "codec"}


def _smr_item(i: int, easy: bool) -> ItemCurves:
    """SUR predicted exactly; the SMR prediction is a flat 0.95; true SMR ≥ 0.9 everywhere (easy) or only at the top."""
    true_sur = np.linspace(0.2, 1.0, 9)
    return ItemCurves(
        item_id=f"jpeg-{i}",
        codec="jpeg",
        group=f"photo{i}",
        nbytes=np.linspace(1000, 9000, 9),
        pred_sur=true_sur.copy(),
        pred_smr=np.full(9, 0.95),
        true_sur=true_sur,
        true_smr=np.full(9, 1.0) if easy else np.linspace(0.5, 1.0, 9),
    )


def test_default_leaves_out_a_confidence_whose_margin_the_predictions_cannot_reach() -> None:
    items = [_smr_item(i, easy=i < 14) for i in range(20)]
    target = (0.6, 0.9)
    plain = calibrate(items, [target], (0.5, 0.9), substeps=1)
    margins = {e.confidence: e.margin for e in plain.entries}
    assert margins[0.5] == 0.0 and margins[0.9] is not None and margins[0.9] > 0.05  # beyond the 0.95 prediction
    assert plain.default == 0.9  # the only one with validation hit rate ≥ 0.9 ...
    guarded = calibrate(items, [target], (0.5, 0.9), substeps=1, default_targets=target)
    assert guarded.default is None  # ... but no image would find a level at SMR 0.9 + margin
    assert set(guarded.info["default_excluded"]) == {"0.9"}  # 0.5 is usable, just not reliable enough
    assert "0 % of the calibration images" in guarded.info["default_excluded"]["0.9"]
    assert guarded.entries == plain.entries


def test_reachable_share_and_default_obstacle() -> None:
    items = [_smr_item(i, easy=True) for i in range(4)]
    assert reachable_share(items, (0.75, 0.9), 0.05) == 1.0  # 0.95 reaches 0.95
    assert reachable_share(items, (0.75, 0.9), 0.06) == 0.0
    assert reachable_share(items, (0.75, None), 0.2) == 1.0  # the SUR prediction goes up to 1.0
    entries = (
        ConfidenceEntry("jpeg", 0.75, 0.9, 0.75, 0.02, 20),
        ConfidenceEntry("jpeg", 0.75, 0.9, 0.9, 0.1, 20),
        ConfidenceEntry("jpeg", 0.75, 0.9, 0.95, None, 20),
    )
    table = ConfidenceTable(entries)
    assert default_obstacle(table, items, 0.75, (0.75, 0.9)) is None
    assert "reach SUR 0.75 / SMR 0.9 + margin on 0 %" in str(default_obstacle(table, items, 0.9, (0.75, 0.9)))
    assert "not reachable" in str(default_obstacle(table, items, 0.95, (0.75, 0.9)))
    lifted = ConfidenceTable((ConfidenceEntry("jpeg", 0.75, 0.9, 0.9, 0.15, 20),))
    assert "above 1" in str(default_obstacle(lifted, items, 0.9, (0.75, 0.9)))


def test_cheapest_meeting() -> None:
    assert cheapest_meeting([0.5, 0.92, 0.95, 0.99], [1, 3, 2, 5], 0.9) == 2
    assert cheapest_meeting([0.5, 0.6], [1, 2], 0.9) is None
    with pytest.raises(InputError):
        cheapest_meeting([0.5], [1, 2], 0.5)


def _entry(conf: float, sur: float, smr: float | None, margin: float | None) -> ConfidenceEntry:
    return ConfidenceEntry("jpeg", sur, smr, conf, margin, 20, "codec", 0.9, 1000.0)


def test_table_lookup_brackets_and_round_trips() -> None:
    entries = (
        _entry(0.9, 0.5, None, 0.02),
        _entry(0.9, 0.75, None, 0.05),
        _entry(0.9, 0.9, None, 0.01),
        _entry(0.9, 0.75, 0.8, 0.07),
        _entry(0.95, 0.75, None, None),
    )
    table = ConfidenceTable.from_dict(ConfidenceTable(entries, 0.9, {"split": "val"}).to_dict())
    assert table.info == {"split": "val"}
    assert table.margin_for("jpeg", 0.9, 0.75, None) == 0.05
    assert table.margin_for("jpeg", 0.9, 0.6, None) == 0.05  # max of 0.5 and 0.75
    assert table.margin_for("jpeg", 0.9, 0.95, None) == 0.01  # beyond the grid: nearest
    assert table.margin_for("jpeg", 0.9, 0.75, 0.85) == 0.07
    assert table.confidences("jpeg") == [0.9]
    with pytest.raises(InputError, match="not reachable"):
        table.margin_for("jpeg", 0.95, 0.75, None)
    with pytest.raises(InputError, match="not calibrated"):
        table.margin_for("jpeg", 0.8, 0.75, None)
    with pytest.raises(InputError, match="not calibrated"):
        table.margin_for("vvc", 0.9, 0.75, None)


def test_choose_default_prefers_cheapest_reliable() -> None:
    entries = [
        ConfidenceEntry("jpeg", 0.75, None, 0.75, 0.01, 20, "codec", 0.8, 900.0),
        ConfidenceEntry("jpeg", 0.75, None, 0.9, 0.03, 20, "codec", 0.92, 1000.0),
        ConfidenceEntry("jpeg", 0.75, None, 0.95, 0.05, 20, "codec", 0.97, 1200.0),
    ]
    assert choose_default(entries) == 0.9
    assert choose_default(entries, reliability=0.95) == 0.95
    assert choose_default(entries, reliability=0.99) is None


# --- the knob on compress_to_target and the CLI ----------------------------------------------


class _CardedPredictor:
    """SUR rises with PSNR; its card carries a confidence table (0.9 → margin 0.1 for JPEG, default 0.75 → 0.02)."""

    name = "fake-carded"

    def __init__(self, with_table: bool = True) -> None:
        entries = [
            ConfidenceEntry("jpeg", 0.6, None, 0.75, 0.02, 30, "codec", 0.8, 900.0),
            ConfidenceEntry("jpeg", 0.6, None, 0.9, 0.1, 30, "codec", 0.92, 1000.0),
            ConfidenceEntry("jpeg", 0.6, None, 0.95, None, 30, "codec", None, None),
        ]
        extra = {"confidence": ConfidenceTable(tuple(entries), 0.75).to_dict()} if with_table else {}
        self.card = type("Card", (), {"extra": extra})()

    def predict(self, reference: np.ndarray, candidates: list[np.ndarray]) -> list[object]:
        from sursmr import fidelity
        from sursmr.scoring import Prediction

        out = []
        for candidate in candidates:
            psnr = fidelity.psnr(reference, candidate)
            out.append(Prediction(float(np.clip((psnr - 24.0) / 16.0, 0.0, 0.99)), 0.99))
        return out


def test_compress_confidence_reads_the_margin_from_the_card(small_photo: np.ndarray) -> None:
    from sursmr.compress import EncodeCache, compress_to_target

    cache = EncodeCache()
    carded = _CardedPredictor()
    kwargs = {"codec": "jpeg", "target_sur": 0.6, "target_smr": None, "predictor": carded, "cache": cache}
    sure = compress_to_target(small_photo, confidence=0.9, **kwargs)  # type: ignore[arg-type]
    assert sure.targets.margin == pytest.approx(0.1) and sure.confidence == 0.9 and sure.sur >= 0.7
    default = compress_to_target(small_photo, **kwargs)  # type: ignore[arg-type]
    assert default.targets.margin == pytest.approx(0.02) and default.confidence == 0.75
    expert = compress_to_target(small_photo, margin=0.05, **kwargs)  # type: ignore[arg-type]
    assert expert.targets.margin == pytest.approx(0.05) and expert.confidence is None
    assert default.nbytes <= expert.nbytes <= sure.nbytes
    assert sure.summary()["confidence"] == 0.9
    with pytest.raises(InputError, match="not reachable"):
        compress_to_target(small_photo, confidence=0.95, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not both"):
        compress_to_target(small_photo, confidence=0.9, margin=0.1, **kwargs)  # type: ignore[arg-type]
    bare = {**kwargs, "predictor": _CardedPredictor(with_table=False)}
    assert compress_to_target(small_photo, **bare).targets.margin == 0.0  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no confidence calibration"):
        compress_to_target(small_photo, confidence=0.9, **bare)  # type: ignore[arg-type]


def test_cli_help_states_the_default_confidence() -> None:
    from click.testing import CliRunner

    from sursmr.cli import main
    from sursmr.cli.compress import SHIPPED_MODEL
    from sursmr.confidence import card_default_confidence, card_has_confidence

    result = CliRunner().invoke(main, ["compress", "--help"])
    assert result.exit_code == 0
    assert "--confidence" in result.output and "--margin" in result.output
    text = " ".join(result.output.split())
    assert SHIPPED_MODEL in text
    card = Path(__file__).resolve().parent.parent / "sursmr" / "weights" / f"{SHIPPED_MODEL}.json"
    default = card_default_confidence(card)
    if default is not None:
        assert f"for {SHIPPED_MODEL}: {default:g}" in text
    elif card_has_confidence(card):
        assert f"{SHIPPED_MODEL} has none" in text
    else:
        assert f"{SHIPPED_MODEL} has no calibration" in text


def test_cli_names_the_shipped_model() -> None:
    from sursmr.cli.compress import SHIPPED_MODEL
    from sursmr.predictor import DEFAULT_MODEL

    assert SHIPPED_MODEL == DEFAULT_MODEL


def test_choose_default_ignores_unsupported_cells() -> None:
    entries = [
        ConfidenceEntry("jpeg", 0.75, None, 0.75, 0.01, 20, "codec", 0.8, 900.0),
        ConfidenceEntry("jpeg", 0.75, None, 0.9, 0.03, 20, "codec", 0.95, 1000.0),
        ConfidenceEntry("jpeg", 0.9, None, 0.9, None, 20, "codec", None, None),  # out of reach there
        ConfidenceEntry("jpeg", 0.75, None, 0.95, None, 20, "pooled", None, None),
    ]
    assert choose_default(entries) == 0.9
    assert choose_default(entries[:1]) is None


def test_default_confidence_falls_back_to_no_margin_where_not_calibrated(small_photo: np.ndarray) -> None:
    from sursmr.compress import EncodeCache, compress_to_target

    carded = _CardedPredictor()
    kwargs = {"codec": "jpeg", "target_smr": 0.9, "predictor": carded, "cache": EncodeCache()}
    with pytest.warns(UserWarning, match="no margin"):
        result = compress_to_target(small_photo, target_sur=0.6, **kwargs)  # type: ignore[arg-type]
    assert result.targets.margin == 0.0 and result.confidence is None
    with pytest.raises(InputError):
        compress_to_target(small_photo, target_sur=0.6, confidence=0.9, **kwargs)  # type: ignore[arg-type]


def test_cli_models_lists_the_shipped_confidences() -> None:
    import json

    from click.testing import CliRunner

    from sursmr.cli import main
    from sursmr.confidence import ConfidenceTable, card_default_confidence
    from sursmr.predictor import DEFAULT_MODEL

    card = Path(__file__).resolve().parent.parent / "sursmr" / "weights" / f"{DEFAULT_MODEL}.json"
    data = json.loads(card.read_text(encoding="utf-8")).get("confidence")
    if data is None:
        pytest.skip("the shipped card carries no confidence table")
    default = card_default_confidence(card)
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    shipped = f"{DEFAULT_MODEL}.safetensors"
    found = [c for r in rows for path, c in r["confidences"].items() if path.endswith(shipped)]
    assert found and found[0]["default"] == default
    assert found[0]["confidences"] == ConfidenceTable.from_dict(data).confidences()
    assert default is None or default in found[0]["confidences"]


def test_update_readme_replaces_between_markers() -> None:
    from benchmarks.update_readme import replace_between

    text = "a\n<!-- b -->\nold\n<!-- e -->\nz\n"
    assert replace_between(text, "<!-- b -->", "<!-- e -->", "new\n") == "a\n<!-- b -->\n\nnew\n\n<!-- e -->\nz\n"
    assert replace_between("no markers", "<!-- b -->", "<!-- e -->", "new") == "no markers"
