"""The default model against a planted truth and against the baselines.

The synthetic area (:class:`hwc_risk.synthetic.SyntheticArea`) has a landscape
and a risk function unlike the sample district's. "Future" incidents are fresh
draws from the truth; the share of them in the top 10 % of the map is compared
with the share in the top 10 % of the truth itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from hwc_risk.config import load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import SyntheticArea

# runs pipelines or fits models on whole areas: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow


def quality(area: SyntheticArea, folder: Path, result_dir: Path) -> dict[str, float]:
    with rasterio.open(result_dir / "risk.tif") as ds:
        return area.score_map(ds.read(1), folder / "incidents.csv")


@pytest.mark.parametrize(("n", "min_ratio"), [(600, 0.95), (150, 0.90)])
def test_default_model_recovers_the_truth(tmp_path: Path, n: int, min_ratio: float) -> None:
    area = SyntheticArea(size=120, seed=3)
    config = area.write(tmp_path, n_incidents=n, n_months=24, model="auto")
    result = run(load_config(config))
    q = quality(area, tmp_path, result.run_dir)
    # the goals: at least 95 % (rich) and 90 % (sparse) of what the truth itself captures
    assert q["ratio"] >= min_ratio, q
    assert q["ratio"] > q["kde_ratio"], q
    if n >= 600:
        assert q["spearman"] >= 0.85, q
    assert set(result.metrics["model_choice"]["chosen"].split("+")) <= {"glm", "maxent", "gbm"}


def test_history_lets_the_default_match_past_counts_under_persistence(tmp_path: Path) -> None:
    """Incidents that keep repeating at the same farms: history must carry the model."""
    scores = {}
    for model, history in (("auto", True), ("maxent", False)):
        area = SyntheticArea(size=80, seed=11)
        folder = tmp_path / f"{model}-{history}"
        config = area.write(
            folder,
            n_incidents=500,
            n_months=24,
            model=model,
            persistent_sites=12,
            persistent_share=0.6,
            extra_config={"features": {"history": history}, "background": {"n_points": 3000}},
        )
        rolling = run(load_config(config)).metrics["rolling_origin"]
        scores[(model, history)] = (
            rolling["model"]["capture_rate_10"],
            rolling["past_counts"]["capture_rate_10"],
        )
    default, past = scores[("auto", True)]
    covariates_only, _ = scores[("maxent", False)]
    assert default >= past, scores  # the default matches or beats "where it happened before"
    assert covariates_only < past, scores  # which a covariate-only model does not
