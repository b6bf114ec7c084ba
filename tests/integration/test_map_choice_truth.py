"""The shipped map follows what predicts: history where reports repeat and no covariate
shows the truth, the model where the covariates do (synthetic series, known answer)."""

from pathlib import Path

import pytest

from hwc_risk.config import load_config
from hwc_risk.map_choice import blend_weight
from hwc_risk.pipeline import run
from hwc_risk.synthetic import RepeatReporting, SyntheticArea, SyntheticSeries

FAST = {
    "validation": {"folds": 2, "rolling_months": 2, "map_months": 8},
    "background": {"n_points": 3000},
}


def _shipped(folder: Path, series: SyntheticSeries) -> tuple[str, dict[str, object]]:
    config = series.write(folder, extra_config=FAST)
    result = run(load_config(config), month=series.last_month())
    choice = result.metrics["map_choice"]
    assert result.metrics["summary"].count("The map shipped is") == 1
    return str(choice["chosen"]), choice


@pytest.mark.slow
def test_history_is_shipped_where_reports_repeat_and_covariates_say_nothing(
    tmp_path: Path,
) -> None:
    area = SyntheticArea(size=50, cell_size=200.0, seed=5, truth_shape="latent")
    repeats = RepeatReporting(branching=0.6, decay=0.3, same_address=0.9, burst=0.3)
    series = SyntheticSeries(area, n_incidents=700, n_months=24, repeat=repeats, seed=5)
    chosen, choice = _shipped(tmp_path, series)
    weight = blend_weight(chosen)
    assert chosen in ("past_counts", "recent_counts", "history_density") or (
        weight is not None and weight <= 0.5
    ), choice["reason"]


@pytest.mark.slow
def test_the_model_is_shipped_where_covariates_drive_incidents(tmp_path: Path) -> None:
    area = SyntheticArea(size=50, cell_size=200.0, seed=6)
    series = SyntheticSeries(area, n_incidents=700, n_months=24, seed=6)
    chosen, choice = _shipped(tmp_path, series)
    weight = blend_weight(chosen)
    assert chosen == "model" or (weight is not None and weight >= 0.5), choice["reason"]
    pooled = choice["pooled"]
    assert pooled["model"]["capture_rate_10"] > pooled["past_counts"]["capture_rate_10"] + 0.1
