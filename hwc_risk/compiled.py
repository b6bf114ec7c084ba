"""Fast evaluation of fitted additive models, equal to their own predictions.

Two shipped recipes are additive in their covariates: MaxEnt (without product
features) and the spline GLM. Their scores are a link function of a sum of
one-dimensional functions, one per covariate, which can be evaluated directly
instead of expanding every cell into the full feature matrix that the model
multiplies by its coefficients. :func:`compiled_scores` dispatches; models it
does not cover return ``None`` and are scored by their own ``predict``.

MaxEnt
------

elapid predicts by expanding every cell into its full MaxEnt feature matrix
(linear, quadratic, 2 x (n_hinges - 1) hinges and n_thresholds thresholds per
covariate, in float64) and multiplying it by the coefficients. Without product
features the linear predictor is a sum of one-dimensional functions, one per
covariate:

    eta(x) = alpha + sum_j [ linear_j(x_j) + quadratic_j(x_j) + hinges_j(x_j) + thresholds_j(x_j) ]

The hinge sum is piecewise linear between the hinge knots and constant outside
them, so it is exactly a linear interpolation through its values at the knots;
the threshold sum is a step function, a cumulative sum looked up with
``searchsorted``. :class:`CompiledMaxent` evaluates each term in a few passes
over the cells instead of building the matrix: about ten times faster and far
less memory, with results equal to elapid's within float32 rounding (tested in
``tests/unit/test_compiled.py``). Product features are evaluated pair by pair.
Models this does not cover (categorical covariates, a preprocessor) fall back to
elapid's own ``predict``.

Spline GLM
----------
The ``glm`` recipe (``StandardScaler`` -> ``SplineTransformer`` ->
``LogisticRegression``) has ``eta = b0 + sum_j sum_k w_jk B_jk(z_j)``; for each
covariate the weighted sum of its B-spline basis is itself one B-spline with
coefficients ``w_j``, and its linear extrapolation beyond the training range
is the weighted sum of the bases' extrapolations. :class:`CompiledSplineGLM`
evaluates one spline per covariate instead of ``n_splines`` basis functions
and a matrix product. A covariate that was constant in the training data has
a spline whose knots all coincide, which has no piecewise-polynomial form; it
is evaluated as a B-spline, as scikit-learn does.

Never wrong, never a crash
--------------------------
Compiling is an optimisation, so it must not change a result or stop a run.
:func:`compile_model` gives ``None`` (the model is then scored by its own
``predict``) for anything it cannot compile, whatever the reason, and checks
every compiled scorer against the model's own predictions on probe points
spanning each covariate's training range and beyond it before using it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from scipy.interpolate import BSpline, PPoly
from scipy.special import expit

__all__ = [
    "CompiledMaxent",
    "CompiledSplineGLM",
    "compile_model",
    "compiled_scores",
    "own_scores",
    "probe_points",
]

log = logging.getLogger(__name__)

#: Agreement a compiled scorer must show with the model's own predictions.
RTOL, ATOL = 1e-4, 1e-6


class Compiled(Protocol):
    """A compiled scorer: the model's output for ``(n_cells, n_covariates)`` values."""

    ranges: tuple[np.ndarray, np.ndarray]  # per covariate: lowest and highest training value

    def __call__(self, X: np.ndarray) -> np.ndarray: ...


def _scaler(est: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """``scale_``, ``min_`` and whether to clip to [0, 1] of a fitted MinMaxScaler."""
    lo, hi = est.feature_range
    if (lo, hi) != (0.0, 1.0):
        raise NotImplementedError("feature_range other than (0, 1)")
    return (
        np.asarray(est.scale_, dtype=np.float64),
        np.asarray(est.min_, dtype=np.float64),
        bool(est.clip),
    )


def _maxent_ranges(estimators: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Each covariate's training range, from whichever MaxEnt transformer kept it."""
    lin, hinge, threshold = (estimators.get(k) for k in ("linear", "hinge", "threshold"))
    if lin is not None:
        return np.asarray(lin.data_min_, float), np.asarray(lin.data_max_, float)
    if hinge is not None:
        return np.asarray(hinge.mins_, float), np.asarray(hinge.maxs_, float)
    if threshold is not None:
        cuts = np.asarray(threshold.threshold_indices_, float)
        return cuts.min(axis=0), cuts.max(axis=0)
    raise NotImplementedError("no transformer records the covariates' range")


class CompiledMaxent:
    """The linear predictor of a fitted ``MaxentModel`` as per-covariate lookup tables."""

    def __init__(self, model: Any) -> None:
        tr = model.transformer
        if model.preprocessor is not None or tr.categorical_ is not None:
            raise NotImplementedError("preprocessor or categorical covariates")
        beta = np.asarray(model.beta_scores_, dtype=np.float64)
        self.alpha = float(model.alpha_)
        self.entropy = float(model.entropy_)
        self.transform = str(model.transform)
        self.tau = float(model.tau)
        kinds = list(tr.feature_types)
        est = tr.estimators_
        pos = 0
        self.linear: tuple[np.ndarray, np.ndarray, bool, np.ndarray] | None = None
        self.quadratic: tuple[np.ndarray, np.ndarray, bool, np.ndarray] | None = None
        self.product: tuple[np.ndarray, np.ndarray, bool, np.ndarray] | None = None
        self.thresholds: list[tuple[np.ndarray, np.ndarray]] = []
        self.hinges: list[tuple[np.ndarray, np.ndarray]] = []
        n_cols: int | None = None
        # elapid concatenates the blocks in this order, whatever the config's order
        if "linear" in kinds:
            scale, mn, clip = _scaler(est["linear"])
            n_cols = len(scale)
            self.linear = (scale, mn, clip, beta[pos : pos + n_cols])
            pos += n_cols
        if "quadratic" in kinds:
            scale, mn, clip = _scaler(est["quadratic"].estimator)
            n_cols = len(scale)
            self.quadratic = (scale, mn, clip, beta[pos : pos + n_cols])
            pos += n_cols
        if "product" in kinds:
            scale, mn, clip = _scaler(est["product"].estimator)
            self.product = (scale, mn, clip, beta[pos : pos + len(scale)])
            pos += len(scale)
        if "threshold" in kinds:
            t = est["threshold"]
            cuts = np.asarray(t.threshold_indices_, dtype=np.float64)  # (n_thresholds, n_cols)
            n_t, n_cols = cuts.shape
            for j in range(n_cols):
                b = beta[pos + j * n_t : pos + (j + 1) * n_t]
                order = np.argsort(cuts[:, j], kind="stable")
                # thresholds_j(x) = sum of b_k over the cuts strictly below x
                self.thresholds.append(
                    (cuts[order, j], np.concatenate([[0.0], np.cumsum(b[order])]))
                )
            pos += n_t * n_cols
        if "hinge" in kinds:
            h = est["hinge"]
            knots = np.asarray(h.hinge_indices_, dtype=np.float64)  # (n_hinges, n_cols)
            n_h, n_cols = knots.shape
            mins = np.asarray(h.mins_, dtype=np.float64)
            maxs = np.asarray(h.maxs_, dtype=np.float64)
            per_col = 2 * (n_h - 1)
            for j in range(n_cols):
                b = beta[pos + j * per_col : pos + (j + 1) * per_col]
                k = knots[:, j]
                if not maxs[j] > mins[j]:
                    self.hinges.append((np.array([mins[j]]), np.array([0.0])))
                    continue
                # the hinge sum at every knot: each hinge is linear between knots
                left = np.clip((k[None, :] - k[:-1, None]) / (maxs[j] - k[:-1, None]), 0, 1)
                right = np.clip((k[None, :] - mins[j]) / (k[1:, None] - mins[j]), 0, 1)
                values = b[: n_h - 1] @ left + b[n_h - 1 :] @ right
                self.hinges.append((k, values))
            pos += per_col * n_cols
        if pos != beta.size:
            raise NotImplementedError("feature layout not understood")
        self.n_cols = n_cols
        self.ranges = _maxent_ranges(est)

    @staticmethod
    def _scaled(x: np.ndarray, scale: np.ndarray, mn: np.ndarray, clip: bool) -> np.ndarray:
        out = x * scale + mn
        return np.clip(out, 0.0, 1.0, out=out) if clip else out

    def linear_predictor(self, X: np.ndarray) -> np.ndarray:
        """``eta`` for ``(n_cells, n_covariates)`` values, float64."""
        X = np.asarray(X)
        eta = np.full(X.shape[0], self.alpha, dtype=np.float64)
        for j in range(X.shape[1]):
            x = X[:, j].astype(np.float64)
            if self.linear is not None:
                scale, mn, clip, b = self.linear
                eta += b[j] * self._scaled(x, scale[j], mn[j], clip)
            if self.quadratic is not None:
                scale, mn, clip, b = self.quadratic
                # elapid squares in the input's precision
                sq = (X[:, j] ** 2).astype(np.float64)
                eta += b[j] * self._scaled(sq, scale[j], mn[j], clip)
            if self.thresholds:
                cuts, cum = self.thresholds[j]
                eta += cum[np.searchsorted(cuts, x, side="left")]
            if self.hinges:
                knots, values = self.hinges[j]
                if values.size > 1:
                    eta += np.interp(x, knots, values)
        if self.product is not None:
            scale, mn, clip, b = self.product
            k = 0
            for i in range(X.shape[1] - 1):
                for j in range(i + 1, X.shape[1]):
                    p = (X[:, i] * X[:, j]).astype(np.float64)
                    eta += b[k] * self._scaled(p, scale[k], mn[k], clip)
                    k += 1
        return eta

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The model's output (raw, logistic or cloglog, as it was fitted)."""
        eta = self.linear_predictor(X)
        if self.transform == "raw":
            return np.exp(eta)
        if self.transform == "logistic":
            ratio = np.exp(eta) * np.exp(self.entropy)
            return (self.tau * ratio) / ((1 - self.tau) + self.tau * ratio)
        return 1 - np.exp(-np.exp(eta) * np.exp(self.entropy))


def _weighted_spline(spl: BSpline, w: np.ndarray) -> PPoly | BSpline:
    """The weighted sum of a covariate's B-spline bases as one spline.

    As a piecewise polynomial where it has one (evaluated twice as fast as
    the B-spline form); a covariate that was constant in training has every
    knot at one value and no such form, so it stays a B-spline, evaluated like
    scikit-learn evaluates its bases.
    """
    if np.unique(spl.t[spl.k : spl.t.size - spl.k]).size >= 2:
        return PPoly.from_spline(BSpline(spl.t, spl.c @ w, spl.k))
    return BSpline.construct_fast(spl.t, spl.c @ w, spl.k)


class CompiledSplineGLM:
    """``predict_proba(X)[:, 1]`` of the fitted spline GLM pipeline, one spline per covariate."""

    def __init__(self, pipe: Any) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import SplineTransformer, StandardScaler

        if not isinstance(pipe, Pipeline) or len(pipe.steps) != 3:
            raise NotImplementedError("not the spline GLM pipeline")
        scaler, splines, logistic = (step for _, step in pipe.steps)
        if not (
            isinstance(scaler, StandardScaler)
            and isinstance(splines, SplineTransformer)
            and isinstance(logistic, LogisticRegression)
        ):
            raise NotImplementedError("not the spline GLM pipeline")
        if (
            splines.extrapolation != "linear"
            or splines.degree < 2  # sklearn continues two bases of a linear spline
            or not splines.include_bias
            or splines.sparse_output
            or len(logistic.classes_) != 2
        ):
            raise NotImplementedError("spline settings not covered")
        self.mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
        self.scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None
        coef = np.asarray(logistic.coef_[0], dtype=np.float64)
        self.intercept = float(logistic.intercept_[0])
        degree = int(splines.degree)
        n_splines = splines.bsplines_[0].c.shape[1]
        ends = degree  # the bases sklearn continues linearly beyond each end
        self.parts: list[tuple[PPoly | BSpline, float, float, float, float, float, float]] = []
        lo, hi = [], []
        for j, spl in enumerate(splines.bsplines_):
            w = coef[j * n_splines : (j + 1) * n_splines]
            combined = _weighted_spline(spl, w)
            xmin, xmax = float(spl.t[degree]), float(spl.t[-degree - 1])
            lo.append(self._unscaled(xmin, j))
            hi.append(self._unscaled(xmax, j))
            f_min, f_max = spl(xmin), spl(xmax)
            fp_min, fp_max = spl(xmin, nu=1), spl(xmax, nu=1)
            low = list(range(ends))
            high = [n_splines - 1 - k for k in range(ends)]
            self.parts.append(
                (
                    combined,
                    xmin,
                    xmax,
                    float(w[low] @ f_min[low]),
                    float(w[low] @ fp_min[low]),
                    float(w[high] @ f_max[high]),
                    float(w[high] @ fp_max[high]),
                )
            )
        self.ranges = (np.array(lo), np.array(hi))

    def _unscaled(self, z: float, j: int) -> float:
        """A standardised value of covariate ``j`` in the covariate's own units."""
        scale = 1.0 if self.scale is None else float(self.scale[j])
        mean = 0.0 if self.mean is None else float(self.mean[j])
        return z * scale + mean

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)  # column-major input reads fastest
        eta = np.full(X.shape[0], self.intercept, dtype=np.float64)
        for j, (poly, xmin, xmax, v_lo, s_lo, v_hi, s_hi) in enumerate(self.parts):
            # standardised in the input's precision, as the pipeline does
            z = X[:, j]
            if self.mean is not None:
                z = z - self.mean[j].astype(X.dtype)
            if self.scale is not None:
                z = z / self.scale[j].astype(X.dtype)
            z = z.astype(np.float64)
            eta += poly(np.clip(z, xmin, xmax))
            # beyond the training range: the spline's value there (v) plus the slope
            below, above = z < xmin, z > xmax
            if below.any():
                eta[below] += v_lo - poly(xmin) + (z[below] - xmin) * s_lo
            if above.any():
                eta[above] += v_hi - poly(xmax) + (z[above] - xmax) * s_hi
        return np.asarray(expit(eta))


_compiled: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def own_scores(model: Any, X: np.ndarray) -> np.ndarray:
    """The model's own score of the incident class (MaxEnt's output, else ``predict_proba``)."""
    if type(model).__name__ == "MaxentModel":
        return np.asarray(model.predict(X), dtype=np.float64).ravel()
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def probe_points(lo: np.ndarray, hi: np.ndarray, n: int = 256, seed: int = 0) -> np.ndarray:
    """``n`` float32 rows spanning each covariate's range ``[lo, hi]`` and half as far beyond.

    The first rows hold every covariate at its lowest, then its highest value;
    a covariate that was constant is probed one unit (or half its value) around it.
    """
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    span = np.where(hi > lo, hi - lo, np.maximum(1.0, np.abs(lo)))
    rng = np.random.default_rng(seed)
    X = lo + span * rng.uniform(-0.5, 1.5, size=(n, lo.size))
    X[0], X[1] = lo, hi
    return X.astype(np.float32)


def _agrees(compiled: Compiled, model: Any) -> bool:
    """Whether ``compiled`` gives the model's own predictions on probe points."""
    X = probe_points(*compiled.ranges)
    expected = own_scores(model, X)
    got = np.asarray(compiled(X), dtype=np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
    return bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL * scale, equal_nan=True))


def _compile(make: Callable[[Any], Compiled], model: Any) -> Compiled | None:
    """The compiled scorer of ``model``, or None where it cannot be made or disagrees."""
    try:
        compiled = make(model)
        if _agrees(compiled, model):
            return compiled
        reason = "differs from the model's own predictions"
    except Exception as exc:  # an optimisation: whatever fails, the model's predict remains
        reason = f"{type(exc).__name__}: {exc}"
    log.debug("%s is scored by its own predict (compiled form: %s)", type(model).__name__, reason)
    return None


def _compiler(model: Any) -> tuple[Callable[[Any], Compiled], Any] | None:
    """The compiler for a model and the fitted state that marks a refit."""
    name = type(model).__name__
    if name == "MaxentModel":
        return CompiledMaxent, getattr(model, "beta_scores_", None)
    if name == "Pipeline" and model.steps:
        last = model.steps[-1][1]
        return CompiledSplineGLM, getattr(last, "coef_", None)
    return None


def compile_model(model: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The compiled scorer of a fitted model (cached), or None if not covered.

    None also when the model is of a covered kind but compiling it fails or
    the compiled form disagrees with the model on probe points: the model is
    then scored by its own ``predict``, with the same results.
    """
    found = _compiler(model)
    if found is None or found[1] is None:
        return None
    make, state = found
    cached = _compiled.get(model)
    if cached is not None and cached[0] is state:  # not refitted since
        return cached[1]
    compiled = _compile(make, model)
    _compiled[model] = (state, compiled)
    return compiled


def compiled_scores(model: Any, X: np.ndarray) -> np.ndarray | None:
    """The model's score of the incident class, compiled; None when not covered."""
    compiled = compile_model(model)
    return None if compiled is None else compiled(X)
