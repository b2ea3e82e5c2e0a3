"""Population priors from model predictions (training.curve_prior) and their use by the predicted search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _batch_helpers import PsnrPredictor

from sursmr.curves import LEVEL_STATISTICS_KEY, card_prior
from sursmr.models import create_model
from sursmr.models.weights import ModelCard
from sursmr_core.errors import InputError
from training.curve_prior import PRIOR_SOURCE, logit_mean_statistics, prediction_rows, write_card_level_statistics


def test_logit_mean_is_the_curve_of_a_typical_image_not_the_mean_ratio() -> None:
    rows = [("jpeg", 80, 0.5, 0.9), ("jpeg", 80, 0.9, 0.9), ("jpeg", 80, 0.1, 0.9), ("bpg", 30, 0.2, 0.999)]
    section = logit_mean_statistics(rows)
    entry = section["jpeg"]["levels"]["80"]
    assert entry["count"] == 3 and entry["smr"] == pytest.approx(0.9, abs=1e-4)
    assert entry["sur"] == pytest.approx(0.5, abs=1e-4)  # logits of 0.1 and 0.9 cancel
    mixed = logit_mean_statistics([("jpeg", 1, 0.99, 0.5), ("jpeg", 1, 0.5, 0.5)])["jpeg"]["levels"]["1"]["sur"]
    assert mixed == pytest.approx(1 / (1 + math.exp(-math.log(99) / 2)), abs=1e-4)  # not (0.99 + 0.5) / 2
    assert mixed != pytest.approx(0.745, abs=1e-3)
    assert section["bpg"]["source"] == PRIOR_SOURCE
    with pytest.raises(InputError):
        logit_mean_statistics([])


def test_written_curves_replace_only_their_codecs_and_load_as_a_prior(tmp_path: Path) -> None:
    card = ModelCard(name="t", config=create_model("sursmr_tiny").config).to_dict()
    card[LEVEL_STATISTICS_KEY] = {"vvc": {"levels": {"30": {"sur": 0.4, "smr": 0.5, "count": 1}}}}
    card["other"] = 1
    path = tmp_path / "t.json"
    path.write_text(json.dumps(card))
    write_card_level_statistics(path, logit_mean_statistics([("jpeg", 90, 0.9, 0.8)]), "v2")
    written = json.loads(path.read_text())
    assert written["other"] == 1 and written[LEVEL_STATISTICS_KEY]["vvc"]["levels"]["30"]["sur"] == 0.4
    assert written[LEVEL_STATISTICS_KEY]["jpeg"]["recipe"] == "v2"
    loaded = ModelCard.from_dict(written)
    assert card_prior(loaded, "jpeg") == {90: (pytest.approx(0.9, abs=1e-4), pytest.approx(0.8, abs=1e-4))}
    with pytest.raises(InputError):
        write_card_level_statistics(tmp_path / "missing.json", {}, "v2")


def test_prediction_rows_score_every_level_of_every_crop_with_real_encodes() -> None:
    rng = np.random.default_rng(0)
    ramp = np.clip(np.linspace(0, 200, 64 * 64 * 3).reshape(64, 64, 3) + rng.normal(0, 12, (64, 64, 3)), 0, 255)
    ramp = ramp.astype(np.uint8)
    crops = [("a", ramp), ("b", np.full((64, 64, 3), 90, np.uint8))]
    done: list[str] = []
    rows = list(prediction_rows(PsnrPredictor(), crops, "jpeg", [10, 95], on_crop=done.append))
    assert done == ["a", "b"] and [(r[0], r[1]) for r in rows] == [("jpeg", 10), ("jpeg", 95)] * 2
    ramp_sur = {level: sur for _, level, sur, _ in rows[:2]}
    assert ramp_sur[95] > ramp_sur[10]  # the predictor saw the real decoded pixels: quality 95 scores higher
