from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from hwc_risk.errors import ModelRecipeError
from hwc_risk.models import ESTIMATORS, build_estimator, load_recipe, risk_scores


def presence_background(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bg = rng.normal(size=(600, 3))
    pres = rng.normal(loc=[1.5, 0.0, 0.0], size=(120, 3))
    return np.vstack([pres, bg]).astype(np.float32), np.r_[np.ones(120), np.zeros(600)]


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
@pytest.mark.parametrize("name", ["maxent", "glm", "gbm", "rf"])
def test_shipped_recipes_fit_and_rank(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.estimator in ESTIMATORS
    X, y = presence_background()
    model = build_estimator(recipe, seed=1)
    clone(model)  # a proper scikit-learn estimator
    model.fit(X, y)
    grid = np.zeros((50, 3), dtype=np.float32)
    grid[:, 0] = np.linspace(-2, 3, 50)
    scores = risk_scores(model, grid)
    assert scores.dtype == np.float32
    assert (scores >= 0).all() and (scores <= 1).all()
    # presences sit at high x0: risk must rise with x0 overall
    assert scores[-10:].mean() > scores[:10].mean() + 0.1


def test_recipe_beside_the_config_wins(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "strong_gbm.yaml").write_text(
        "name: strong_gbm\nestimator: hist_gradient_boosting\nparams: {max_iter: 20}\n"
    )
    recipe = load_recipe("strong_gbm", tmp_path)
    assert recipe.params == {"max_iter": 20}
    by_path = load_recipe("models/strong_gbm.yaml", tmp_path)
    assert by_path.name == "strong_gbm"


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(
        ModelRecipeError,
        match=r"model 'maxnet' not found; did you mean 'maxent'\? use one of .*glm.*maxent",
    ):
        load_recipe("maxnet")


def test_bad_recipes(tmp_path: Path) -> None:
    bad_est = tmp_path / "a.yaml"
    bad_est.write_text("name: a\nestimator: svm\n")
    with pytest.raises(ModelRecipeError, match="estimator 'svm' is unknown"):
        load_recipe(str(bad_est))
    bad_param = tmp_path / "b.yaml"
    bad_param.write_text("name: b\nestimator: random_forest\nparams: {n_trees: 5}\n")
    with pytest.raises(ModelRecipeError, match="bad params"):
        build_estimator(load_recipe(str(bad_param)), 0)
    extra = tmp_path / "c.yaml"
    extra.write_text("name: c\nestimator: maxent\nparms: {}\n")
    with pytest.raises(ModelRecipeError, match="parms"):
        load_recipe(str(extra))
