"""Model recipes: YAML files in ``models/`` that name an estimator and its parameters.

A config says ``model: maxent``; :func:`load_recipe` finds ``maxent.yaml`` (in
a ``models/`` folder beside the config first, then among the recipes shipped
with hwc-risk) and :func:`build_estimator` turns it into a scikit-learn
compatible estimator. An agency adds a recipe by dropping a YAML file in a
``models/`` folder beside its config, or by giving a path (``model:
my_recipes/strong_gbm.yaml``).

Recipe format::

    name: gbm
    description: Histogram gradient boosting
    estimator: hist_gradient_boosting   # one of ESTIMATORS
    params: {max_iter: 200}
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from .errors import ModelRecipeError

__all__ = [
    "ESTIMATORS",
    "ModelRecipe",
    "average_recipe",
    "build_estimator",
    "fit_estimator",
    "load_recipe",
    "recipe_dirs",
    "risk_scores",
]


class ModelRecipe(BaseModel):
    """A parsed recipe file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    path: Path | None = Field(None, exclude=True)


def _maxent(params: dict[str, Any], seed: int) -> BaseEstimator:
    from elapid import MaxentModel  # imported lazily: it pulls in matplotlib

    params = {"n_cpus": 1, **params}
    return MaxentModel(random_state=seed, **params)


def _spline_logistic(params: dict[str, Any], seed: int) -> BaseEstimator:
    params = dict(params)
    n_knots = params.pop("n_knots", 5)
    degree = params.pop("degree", 3)
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("splines", SplineTransformer(n_knots=n_knots, degree=degree, extrapolation="linear")),
            (
                "logistic",
                LogisticRegression(
                    max_iter=params.pop("max_iter", 2000),
                    class_weight=params.pop("class_weight", None),
                    random_state=seed,
                    **params,
                ),
            ),
        ]
    )


def _hist_gradient_boosting(params: dict[str, Any], seed: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(random_state=seed, **params)


def _random_forest(params: dict[str, Any], seed: int) -> BaseEstimator:
    return RandomForestClassifier(random_state=seed, **params)


class BlendClassifier(ClassifierMixin, BaseEstimator):
    """A weighted average of member recipes; weights learned on out-of-fold predictions.

    ``fit`` predicts each training sample with members fitted on the other
    folds, finds non-negative weights by least squares against the labels
    (normalised to sum to one), and refits every member on all the data.
    With ``cv=0`` nothing is learned: each member weighs the inverse of its mean
    score over the background (normalised to sum to one), so each contributes its
    intensity relative to its own mean alike, whatever its scale (a MaxEnt
    cloglog and a logistic probability differ by an order of magnitude).
    """

    def __init__(
        self,
        members: tuple[str, ...] = ("maxent", "glm", "gbm"),
        cv: int = 3,
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> BlendClassifier:
        recipes = [load_recipe(m) for m in self.members]
        y = np.asarray(y)
        weights = self._learned_weights(recipes, X, y) if self.cv else None
        self.members_ = []
        for recipe in recipes:
            est = build_estimator(recipe, self.random_state)
            fit_estimator(est, X, y)
            self.members_.append(est)
        self.classes_ = np.array([0, 1])
        if weights is None:  # cv=0: each member by the inverse of its background mean
            background = X[y == 0] if (y == 0).any() else X
            means = self.member_scores(background).astype(np.float64).mean(axis=0)
            weights = 1.0 / np.maximum(means, 1e-12)
        self.weights_ = weights / weights.sum()
        return self

    def _learned_weights(
        self, recipes: list[ModelRecipe], X: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Non-negative least squares of the labels on out-of-fold member scores."""
        from scipy.optimize import nnls
        from sklearn.model_selection import StratifiedKFold

        oof = np.zeros((len(y), len(recipes)))
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(X, y):
            for j, recipe in enumerate(recipes):
                est = build_estimator(recipe, self.random_state)
                fit_estimator(est, X[train], y[train])
                oof[test, j] = risk_scores(est, X[test])
        weights, _ = nnls(oof, y.astype(float))
        return weights if weights.sum() > 0 else np.ones(len(recipes))

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([risk_scores(m, X) for m in self.members_])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.member_scores(X) @ self.weights_
        return np.column_stack([1 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _blend(params: dict[str, Any], seed: int) -> BaseEstimator:
    params = dict(params)
    members = tuple(params.pop("members", ("maxent", "glm", "gbm")))
    return BlendClassifier(members=members, random_state=seed, **params)


#: Estimator names a recipe may use, and the functions that build them.
ESTIMATORS: dict[str, Callable[[dict[str, Any], int], BaseEstimator]] = {
    "maxent": _maxent,
    "spline_logistic": _spline_logistic,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "random_forest": _random_forest,
    "blend": _blend,
}

#: Recipes whose estimator is chosen at run time rather than built directly.
META_ESTIMATORS = {"auto"}


def recipe_dirs(config_dir: Path | None = None) -> list[Path]:
    """Folders searched for recipes, in order."""
    dirs: list[Path] = []
    if config_dir is not None:
        dirs.append(config_dir / "models")
    here = Path(__file__).resolve().parent
    dirs.append(here / "_recipes")  # in an installed wheel
    dirs.append(here.parent / "models")  # in a source checkout
    return dirs


def _available(dirs: list[Path]) -> list[str]:
    names = {p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def load_recipe(name: str, config_dir: Path | None = None) -> ModelRecipe:
    """Find and parse a recipe by name (``maxent``) or by path (``models/x.yaml``)."""
    dirs = recipe_dirs(config_dir)
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_absolute() and config_dir is not None:
            path = config_dir / path
        candidates = [path]
    else:
        candidates = [d / f"{name}.yaml" for d in dirs]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        known = _available(dirs)
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise ModelRecipeError(
            f"model '{name}' not found; {guess}use one of {', '.join(known)} "
            "or a path to a recipe YAML file"
        )
    path = found
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        recipe = ModelRecipe.model_validate({**(data or {}), "path": path})
    except yaml.YAMLError:
        raise ModelRecipeError(f"{path}: not valid YAML; fix the recipe's syntax") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ModelRecipeError(f"{path}: recipe key '{loc}': {err['msg']}") from None
    if recipe.estimator not in ESTIMATORS and recipe.estimator not in META_ESTIMATORS:
        raise ModelRecipeError(
            f"{path}: estimator '{recipe.estimator}' is unknown; use one of {', '.join(ESTIMATORS)}"
        )
    return recipe


#: scikit-learn's liblinear (elapid's MaxEnt solver) draws from one process-wide random
#: generator: two fits at once would take each other's draws. They take turns.
_LIBLINEAR = threading.Lock()


def fit_estimator(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """``estimator.fit(X, y)``, safe to call from several threads at once.

    Fits that share process-wide state (MaxEnt through liblinear) take turns;
    the others run side by side. Either way a fit's result does not depend on
    what else runs.
    """
    if type(estimator).__name__ == "MaxentModel":
        with _LIBLINEAR:
            return estimator.fit(X, y)
    return estimator.fit(X, y)


def build_estimator(recipe: ModelRecipe, seed: int) -> BaseEstimator:
    """A fresh, unfitted estimator for a recipe."""
    try:
        return ESTIMATORS[recipe.estimator](dict(recipe.params), seed)
    except TypeError as exc:
        raise ModelRecipeError(
            f"{recipe.path}: bad params for estimator '{recipe.estimator}' ({exc}); "
            "fix the recipe's params"
        ) from None


def risk_scores(model: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """Relative risk in [0, 1] from a fitted estimator, as float32.

    MaxEnt gives its cloglog (or logistic) output; classifiers give the
    probability of the incident class. MaxEnt and the spline GLM are scored by
    their compiled forms (:mod:`hwc_risk.compiled`): same values, faster.
    """
    if X.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    from .compiled import compiled_scores, own_scores

    fast = compiled_scores(model, X)
    scores = fast if fast is not None else own_scores(model, X)
    return np.clip(scores, 0.0, 1.0).astype(np.float32)


def average_recipe(names: list[str], config_dir: Path | None = None) -> ModelRecipe:
    """The recipe of ``model: auto``'s choice (:func:`hwc_risk.selection.one_se_choice`):
    one candidate, or the equal-weight average of several (:class:`BlendClassifier`
    with ``cv: 0``), named by the candidates' names joined by ``+``."""
    recipes = [load_recipe(n, config_dir) for n in names]
    if len(recipes) == 1:
        return recipes[0]
    own = config_dir / "models" if config_dir is not None else None
    members = [str(r.path) if own and r.path and r.path.parent == own else r.name for r in recipes]
    return ModelRecipe(
        name="+".join(names),
        description=f"equal-weight average of {', '.join(names)}",
        estimator="blend",
        params={"members": members, "cv": 0},
        path=None,
    )
