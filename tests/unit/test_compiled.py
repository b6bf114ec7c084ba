"""Compiled evaluation gives the models' own predictions (MaxEnt: elapid's; GLM: sklearn's)."""

from __future__ import annotations

import numpy as np
import pytest
from elapid import MaxentModel

from hwc_risk.compiled import CompiledMaxent, CompiledSplineGLM, compile_model
from hwc_risk.models import build_estimator, load_recipe, risk_scores

# fits Maxent and GBM models for each comparison: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    X[:, 4] = np.abs(X[:, 4]) * 100  # a skewed covariate on another scale
    X[:, 3] = np.round(X[:, 3])  # few distinct values: duplicate threshold cuts
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(size=3000) > 1.2).astype(int)
    # prediction cells reach outside the training range, where clamping matters
    Xp = (rng.normal(size=(20000, 5)) * 1.6).astype(np.float32)
    Xp[:, 4] = np.abs(Xp[:, 4]) * 120
    return X, y, Xp


@pytest.mark.parametrize(
    "features",
    [
        ["linear", "quadratic", "hinge"],
        ["linear", "quadratic", "hinge", "threshold", "product"],
        ["hinge"],
        ["threshold"],
    ],
)
@pytest.mark.parametrize("transform", ["cloglog", "logistic", "raw"])
@pytest.mark.parametrize("clamp", [True, False])
def test_equal_to_elapid_within_float32(data, features, transform, clamp) -> None:
    X, y, Xp = data
    model = MaxentModel(feature_types=features, transform=transform, clamp=clamp).fit(X, y)
    expected = np.asarray(model.predict(Xp), dtype=np.float64)
    got = CompiledMaxent(model)(Xp)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6 * scale)
    assert compile_model(model) is not None  # and it passes its check against elapid


def test_constant_covariate_contributes_nothing_but_does_not_break(data) -> None:
    X, y, Xp = data
    X = X.copy()
    X[:, 2] = 3.0
    model = MaxentModel(feature_types=["linear", "hinge"]).fit(X, y)
    np.testing.assert_allclose(CompiledMaxent(model)(Xp), model.predict(Xp), rtol=2e-6, atol=1e-7)


def test_risk_scores_uses_compiled_form_and_follows_a_refit(data) -> None:
    X, y, Xp = data
    model = build_estimator(load_recipe("maxent"), 0).fit(X, y)
    first = risk_scores(model, Xp)
    assert compile_model(model) is not None
    np.testing.assert_allclose(first, model.predict(Xp), atol=1e-6)
    model.fit(X, 1 - y)  # the same object refitted: the cache must not serve the old model
    again = risk_scores(model, Xp)
    np.testing.assert_allclose(again, model.predict(Xp), atol=1e-6)
    assert np.abs(again - first).max() > 0.1


def test_categorical_models_fall_back_to_elapid(data) -> None:
    X, y, Xp = data
    Xc = X.copy()
    Xc[:, 3] = np.clip(np.abs(Xc[:, 3]), 0, 2)
    model = MaxentModel(feature_types=["linear", "hinge"]).fit(Xc, y, categorical=[3])
    assert compile_model(model) is None
    Xpc = Xp.copy()
    Xpc[:, 3] = np.clip(np.abs(np.round(Xpc[:, 3])), 0, 2)
    np.testing.assert_allclose(
        risk_scores(model, Xpc), np.clip(model.predict(Xpc), 0, 1).astype(np.float32)
    )


@pytest.mark.parametrize("degree", [2, 3])
def test_spline_glm_equal_to_sklearn_within_float32(data, degree) -> None:
    X, y, Xp = data
    recipe = load_recipe("glm")
    model = build_estimator(recipe, 0)
    model.set_params(splines__degree=degree)
    model.fit(X, y)
    expected = model.predict_proba(Xp)[:, 1]
    assert ((Xp < X.min(axis=0)) | (Xp > X.max(axis=0))).any(axis=1).mean() > 0.05  # extrapolated
    got = CompiledSplineGLM(model)(Xp)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # risk_scores takes the compiled path, and a refit is noticed
    assert compile_model(model) is not None
    np.testing.assert_allclose(risk_scores(model, Xp), expected, atol=1e-6)
    model.fit(X, 1 - y)
    np.testing.assert_allclose(risk_scores(model, Xp), model.predict_proba(Xp)[:, 1], atol=1e-6)


def test_other_pipelines_are_not_compiled(data) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xp = data
    linear_splines = build_estimator(load_recipe("glm"), 0).set_params(splines__degree=1)
    for model in (make_pipeline(StandardScaler(), LogisticRegression()), linear_splines):
        model.fit(X, y)
        assert compile_model(model) is None
        np.testing.assert_allclose(
            risk_scores(model, Xp), model.predict_proba(Xp)[:, 1].astype(np.float32)
        )


# A fitted model the compiled form cannot represent must never crash a run: compile what
# can be compiled, score the rest by the model's own predict, with equal results.


def _degenerate(data, kind: str):  # type: ignore[no-untyped-def]
    """Training data with one covariate constant, two-valued or an absent class (all 0)."""
    X, y, Xp = data
    X, Xp = X.copy(), Xp.copy()
    if kind == "constant":
        X[:, 2] = 3.0  # e.g. a feature that one spatial fold never varies
    elif kind == "two_values":
        X[:, 2] = (X[:, 2] > 0).astype(np.float32)
        Xp[:, 2] = (Xp[:, 2] > 0.3).astype(np.float32)
    else:  # "absent_class": a class fraction that is 0 in every training sample
        X[:, 2] = 0.0
        Xp[:, 2] = np.clip(Xp[:, 2], 0, 1)
    return X, y, Xp


@pytest.mark.parametrize("kind", ["constant", "two_values", "absent_class"])
def test_spline_glm_with_a_degenerate_covariate_is_compiled_and_equal(data, kind) -> None:
    X, y, Xp = _degenerate(data, kind)
    model = build_estimator(load_recipe("glm"), 0).fit(X, y)
    expected = model.predict_proba(Xp)[:, 1]
    compiled = compile_model(model)
    assert isinstance(compiled, CompiledSplineGLM)  # the other covariates stay compiled
    np.testing.assert_allclose(compiled(Xp), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(risk_scores(model, Xp), expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["constant", "two_values", "absent_class"])
def test_maxent_with_a_degenerate_covariate_is_compiled_and_equal(data, kind) -> None:
    X, y, Xp = _degenerate(data, kind)
    model = build_estimator(load_recipe("maxent"), 0).fit(X, y)
    assert compile_model(model) is not None
    np.testing.assert_allclose(risk_scores(model, Xp), model.predict(Xp), atol=1e-6)


def test_a_model_that_fails_to_compile_is_scored_by_its_own_predict(data, monkeypatch) -> None:
    X, y, Xp = data
    model = build_estimator(load_recipe("glm"), 0).fit(X, y)

    def cannot(self, pipe):  # type: ignore[no-untyped-def]
        raise ValueError("Need at least two internal knots.")  # as scipy said in issue 13

    monkeypatch.setattr(CompiledSplineGLM, "__init__", cannot)
    assert compile_model(model) is None
    np.testing.assert_allclose(
        risk_scores(model, Xp), model.predict_proba(Xp)[:, 1].astype(np.float32)
    )


def test_a_compiled_form_that_disagrees_with_the_model_is_not_used(data, monkeypatch) -> None:
    X, y, Xp = data
    model = build_estimator(load_recipe("glm"), 0).fit(X, y)
    right = CompiledSplineGLM.__call__
    monkeypatch.setattr(CompiledSplineGLM, "__call__", lambda self, X: right(self, X) * 0.99)
    assert compile_model(model) is None
    np.testing.assert_allclose(
        risk_scores(model, Xp), model.predict_proba(Xp)[:, 1].astype(np.float32)
    )


def test_probe_points_span_each_range_and_beyond() -> None:
    from hwc_risk.compiled import probe_points

    lo, hi = np.array([0.0, -5.0, 7.0]), np.array([10.0, 5.0, 7.0])  # the last is constant
    X = probe_points(lo, hi)
    assert X.dtype == np.float32 and X.shape == (256, 3)
    np.testing.assert_array_equal(X[0], lo)
    np.testing.assert_array_equal(X[1], hi)
    assert (X.min(axis=0) < lo).all() and (X.max(axis=0) > hi).all()
