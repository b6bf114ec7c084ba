"""Choosing the model and validating it: the policy a run applies on held-out months.

Everything a run decides by held-out skill lives here:

- which months are held out (:func:`held_out_months`): the last
  ``validation.rolling_months`` months with incidents, extended back until
  they hold 30 incidents;
- whether the reports repeat near each other in space and time (the Knox test
  of :mod:`hwc_risk.near_repeat`, ``near_repeat`` in metrics.json);
- with ``model: auto``, which recipe (:func:`one_se_choice`: the simplest
  candidate within one standard error of the best; where reports do not
  repeat, the average of the GLM and MaxEnt when both are within it),
  and whether the neighbourhood class fractions and the incident
  history add skill (:class:`Toggle`);
- the validation reported in ``metrics.json``: rolling origin, the temporal
  holdout (the run's own month), spatial block cross-validation and, with a
  ``connectivity:`` section, the same without the connectivity layers
  (:class:`Ablation`);
- the verdict sentences that say whether the model beat the baselines.

The independent fits of each step run side by side on the compute pool
(:func:`hwc_risk.modelling.run_jobs`); each is seeded, so the choice and every
figure are the same whatever the number of workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from .bands import Band, FileBand, FileStore, read_band
from .compute import Compute
from .config import PipelineConfig, ValidationSettings
from .covariates import FeatureStack
from .history import HistorySettings, choose_history
from .map_choice import (
    MapChoice,
    MapMonths,
    blend_weight,
    chosen_surface,
    map_months,
    model_share,
)
from .modelling import SPREAD_DESCRIPTION, Design, RollingMonths, SpatialFolds, run_jobs
from .models import ModelRecipe, average_recipe, load_recipe
from .months import Month
from .near_repeat import NearRepeat, knox_test
from .validation import (
    Metrics,
    MonthEvaluation,
    RollingOrigin,
    Skipped,
    SpatialCV,
    default_block_size,
    skill_of,
)

__all__ = [
    "Ablation",
    "Choice",
    "Selection",
    "SelectionOptions",
    "TimeAblation",
    "Toggle",
    "describe_candidate",
    "held_out_months",
    "map_sentence",
    "month_verdict",
    "one_se_choice",
    "select_and_validate",
    "validation_fractions",
    "verdict",
]

log = logging.getLogger(__name__)


def validation_fractions(top: float) -> tuple[float, ...]:
    """The area fractions every surface is scored at: 5 %, 20 % and the configured one."""
    return tuple(sorted({0.05, top, 0.20}))


def held_out_months(months: np.ndarray, run_month: Month, at_least: int) -> list[Month]:
    """Held-out months for rolling origin: the last ``at_least`` months with incidents up
    to the run's month, extended back (up to 6) until they hold 30 incidents.

    ``months`` are the incidents' month numbers. The run's own month is always
    the last (reported as skipped when it has no incident to test on).

    >>> held_out_months(np.array([10, 11, 11, 12, 14]), Month(15), 2)
    [Month(index=14), Month(index=15)]
    """
    have = sorted({int(m) for m in months if m <= run_month.index})
    if run_month.index not in have:
        have.append(run_month.index)
    origins = have[-at_least:]
    while len(origins) < min(6, len(have) - 3):
        if int(np.isin(months, origins).sum()) >= 30:
            break
        origins = have[-(len(origins) + 1) :]
    return [Month(m) for m in origins]


def _paired_se(a: RollingOrigin | Skipped, b: RollingOrigin | Skipped) -> float:
    """Standard error of the mean per-month skill difference of two validations on the
    same months (0 when either is skipped or they share under two months)."""
    if not isinstance(a, RollingOrigin) or not isinstance(b, RollingOrigin):
        return 0.0
    skills_b = {e.month: e.model.skill for e in b.per_month}
    diffs = np.array(
        [e.model.skill - skills_b[e.month] for e in a.per_month if e.month in skills_b]
    )
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.std(ddof=1) / np.sqrt(diffs.size)) if diffs.size > 1 else 0.0


@dataclass(frozen=True, kw_only=True)
class Toggle:
    """Whether a feature group was kept, and the skill with and without it."""

    used: bool
    score_with: float
    score_without: float

    @classmethod
    def compare(
        cls,
        with_: RollingOrigin | Skipped,
        without: RollingOrigin | Skipped,
        keep_unless_worse: bool = False,
        clear_gain: bool = False,
    ) -> Toggle:
        """Whether to keep a feature group, by the held-out skill with and without it.

        By default the group is kept only if it adds skill. With ``keep_unless_worse``
        (a group derived from the user's own covariates) it stays unless leaving it out
        is clearly better: by more than one standard error of the paired per-month
        difference. On a few dozen held-out reports a toggle on any difference follows
        their noise (issue 17: sparse synthetic landscapes dropped the class fractions
        their truth depends on). With ``clear_gain`` the group joins only if it is
        clearly better, by the same margin.
        """
        score_with, score_without = skill_of(with_), skill_of(without)
        if keep_unless_worse:
            used = not score_without > score_with + _paired_se(with_, without)
        elif clear_gain:
            used = score_with > score_without + _paired_se(with_, without)
        else:
            used = score_with > score_without
        return cls(used=bool(used), score_with=score_with, score_without=score_without)

    def to_json(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "score_with": self.score_with,
            "score_without": self.score_without,
        }


@dataclass(frozen=True, kw_only=True)
class Choice:
    """What ``model: auto`` chose, and why (``model_choice`` in metrics.json)."""

    chosen: str
    reason: str
    candidates: dict[str, Metrics | None]
    skill: dict[str, float] | None = None
    toggles: dict[str, Toggle] = field(default_factory=dict)

    def toggled(self, name: str, toggle: Toggle, words: str) -> Choice:
        """The choice with a feature group's toggle recorded and said in the reason."""
        verb = "added" if toggle.used else "did not add"
        return replace(
            self,
            reason=f"{self.reason}; {words} {verb} skill",
            toggles={**self.toggles, name: toggle},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"chosen": self.chosen, "reason": self.reason}
        if self.skill is not None:
            out["skill"] = self.skill
        out["candidates"] = {
            n: (m.to_json() if m is not None else None) for n, m in self.candidates.items()
        }
        out.update({name: t.to_json() for name, t in self.toggles.items()})
        return out


def one_se_choice(
    results: dict[str, RollingOrigin | Skipped],
    top: float,
    average: tuple[str, ...] = (),
) -> Choice:
    """The recipe by the one-standard-error rule: the simplest candidate (the first in the
    recipe's order) within one standard error of the best skill; but when that is one of
    the two candidates named in ``average`` and the other is within one paired standard
    error of it (the per-month differences'), their equal-weight average
    (:func:`hwc_risk.models.average_recipe`).

    Skill is :attr:`~hwc_risk.validation.Metrics.skill` on the rolling-origin
    months. With few held-out incidents the months cannot tell close candidates
    apart; the simplest is then the one less likely to have won by chance. But
    where the map shipped is the model itself (reports that do not repeat: the
    map choice puts the model first), the pick between close candidates is a coin
    toss between maps that differ where it matters, and their average is rarely
    far below the better of them (issue 17: on synthetic landscapes without repeat
    reporting the GLM and MaxEnt tied on the held-out months while one was
    0.01-0.02 better against the truth, and their average was within 0.01 of the
    better). ``_auto`` names the two additive recipes (the spline GLM and MaxEnt:
    smooth functions of the same features) where reports do not repeat. Averaging
    gradient boosting in as well, when it was within the error, dragged the map
    down on sparse reports (a landscape of the family: 0.82 of the truth's capture
    with all three against 0.92 with the two); so did averaging with a MaxEnt more
    than a paired standard error below the GLM (the sparse landscape of
    ``tests/integration/test_model_quality.py``: GLM 0.905, MaxEnt 0.830, their
    average 0.877). Where reports repeat, the map is mostly a blend of the model with history,
    itself a hedge; averaging recipes there too cost the opossum series 0.03
    (README, "Real data"). ``chosen`` is the names joined by ``+``.
    """
    scored = {n: r for n, r in results.items() if isinstance(r, RollingOrigin)}
    candidates = {
        n: (r.mean.model if isinstance(r, RollingOrigin) else None) for n, r in results.items()
    }
    if not scored:
        first = next(iter(results))
        reason = "no held-out month to compare the candidates on; took the first"
        return Choice(chosen=first, reason=reason, candidates={n: None for n in results})
    skill = {n: r.mean.model.skill for n, r in scored.items()}
    best = max(skill, key=lambda n: skill[n])
    per_month = scored[best].month_skills()
    se = float(per_month.std(ddof=1) / np.sqrt(per_month.size)) if per_month.size > 1 else 0.0
    close = [n for n in skill if skill[n] >= skill[best] - se]
    chosen, what = [close[0]], "simplest candidate within one standard error"
    pair = [n for n in close if n in average]
    if len(average) == 2 and len(pair) == 2 and close[0] in pair:
        a, b = (scored[n] for n in pair)
        if abs(skill[pair[0]] - skill[pair[1]]) <= _paired_se(a, b):
            chosen = pair
            what = (
                f"the average of {' and '.join(pair)} (within one paired standard error of "
                "each other), the simplest within one standard error"
            )
    months = scored[best].months
    capture = ", ".join(f"{n} {r.mean.model.capture(top):.1%}" for n, r in scored.items())
    reason = (
        f"{what} ({se:.3f}) of the best skill (mean of top-10 % and top-20 % capture and "
        f"AUC; best: {best}) on {len(months)} rolling-origin month(s) ({', '.join(months)}); "
        f"top-{top:.0%} capture: {capture}"
    )
    return Choice(chosen="+".join(chosen), reason=reason, candidates=candidates, skill=skill)


def _model_json(result: RollingOrigin | SpatialCV | Skipped) -> dict[str, Any]:
    return result.to_json() if isinstance(result, Skipped) else result.mean.model.to_json()


@dataclass(frozen=True, kw_only=True)
class Ablation:
    """The model's validation with and without the connectivity layers hwc-risk built."""

    layers: list[str]
    with_temporal: RollingOrigin | Skipped
    with_spatial: SpatialCV | Skipped
    without_temporal: RollingOrigin | Skipped
    without_spatial: SpatialCV | Skipped

    @property
    def summary(self) -> str:
        verdicts = []
        pairs = {
            "temporal_holdout": (self.with_temporal, self.without_temporal),
            "spatial_block_cv": (self.with_spatial, self.without_spatial),
        }
        for name, (w, wo) in pairs.items():
            if isinstance(w, Skipped) or isinstance(wo, Skipped):
                continue
            a, b = w.mean.model.capture(0.10), wo.mean.model.capture(0.10)
            if not (w.mean.model.measures(0.10) and wo.mean.model.measures(0.10)):
                continue
            verdicts.append(
                f"{name.replace('_', ' ')}: top-10 % capture {a:.1%} with, "
                f"{b:.1%} without ({(a - b) * 100:+.1f} points)"
            )
        return "; ".join(verdicts) if verdicts else "not enough held-out incidents to compare"

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "with": {
                "temporal_holdout": _model_json(self.with_temporal),
                "spatial_block_cv": _model_json(self.with_spatial),
            },
            "without": {
                "temporal_holdout": _model_json(self.without_temporal),
                "spatial_block_cv": _model_json(self.without_spatial),
            },
            "summary": self.summary,
        }


def month_verdict(temporal: MonthEvaluation | Skipped, fraction: float) -> str:
    """One sentence: did the model beat every baseline in the held-out month?"""
    if isinstance(temporal, Skipped):
        return f"temporal holdout skipped: {temporal.reason}"
    model = temporal.model.capture(fraction)
    best_name, best = temporal.best_baseline(fraction)
    text = (
        f"In {temporal.month.label} the model's top {fraction:.0%} of the area held {model:.0%} "
        f"of the {temporal.n_test} incidents; the best baseline ({best_name}) held {best:.0%}."
    )
    if model > best:
        return text + " The model beats every baseline."
    return text + f" The model does NOT beat the {best_name} baseline this month."


def verdict(
    temporal: MonthEvaluation | Skipped, rolling: RollingOrigin | Skipped, fraction: float
) -> str:
    """The run's summary: the held-out month, and the mean over the rolling months."""
    text = month_verdict(temporal, fraction)
    if isinstance(rolling, Skipped) or len(rolling.per_month) < 2:
        return text
    mean = rolling.mean
    _, best = mean.best_baseline(fraction)
    return text + (
        f" Over the last {len(rolling.per_month)} months it held "
        f"{mean.model.capture(fraction):.0%} on average, the best baseline {best:.0%}."
    )


_CANDIDATE_WORDS = {
    "past_counts": "all past reports per cell",
    "recent_counts": "the last 12 months' reports per cell",
    "history_density": "a kernel density of past reports",
    "model": "the model",
}


def describe_candidate(name: str) -> str:
    """A map candidate in words."""
    weight = blend_weight(name)
    if weight is not None:
        return f"a blend of the model ({weight:.0%}) and a kernel density of past reports"
    return _CANDIDATE_WORDS[name]


def map_sentence(choice: MapChoice | Skipped | None, fraction: float = 0.10) -> str:
    """One sentence on the shipped map (empty without a map choice)."""
    if not isinstance(choice, MapChoice):
        return ""
    n = sum(m.n_test for m in choice.months)
    history = max(("past_counts", "recent_counts", "history_density"), key=choice.capture)
    return (
        f" The map shipped is {describe_candidate(choice.chosen)}: over {len(choice.months)} "
        f"held-out months ({n} incidents) its top {fraction:.0%} held "
        f"{choice.capture(choice.chosen, fraction):.0%}; the model's "
        f"{choice.capture('model', fraction):.0%}, the best history alone "
        f"({describe_candidate(history)}) {choice.capture(history, fraction):.0%}."
    )


@dataclass(frozen=True, kw_only=True)
class SelectionOptions:
    """What the selection stage takes from the config."""

    validation: ValidationSettings
    use_history: bool = True  # features.history
    ablate_connectivity: bool = False  # a connectivity section: validate without its layers
    neighbourhood: float = 500.0  # features.neighbourhood: bounds the default block size
    forecast: bool = False  # forecast.horizon > 0: held-out months against FORECAST_BASELINES

    @classmethod
    def of(cls, config: PipelineConfig) -> SelectionOptions:
        return cls(
            validation=config.validation,
            use_history=config.features.history,
            ablate_connectivity=config.connectivity is not None,
            neighbourhood=config.features.neighbourhood,
            forecast=config.forecast.horizon > 0,
        )


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The selection and validation stage's result: the model to fit and its record."""

    recipe: ModelRecipe
    design: Design  # the chosen features: static subset and history
    origins: list[Month]
    rolling: RollingOrigin | Skipped
    temporal: MonthEvaluation | Skipped
    spatial: SpatialCV | Skipped
    spread: Band | None
    block_size: float
    choice: Choice | None = None
    history: dict[str, Any] | None = None
    history_settings: HistorySettings | None = None  # chosen, used as a feature or not
    ablation: Ablation | None = None
    time_ablation: TimeAblation | None = None
    map_choice: MapChoice | Skipped | None = None  # which surface is shipped (model: auto)
    near_repeat: NearRepeat | None = None  # do the reports repeat near each other?

    @property
    def shipped(self) -> str:
        """The candidate the run ships (:mod:`hwc_risk.map_choice`): ``model`` unless
        the map choice picked history or a blend."""
        return self.map_choice.chosen if isinstance(self.map_choice, MapChoice) else "model"

    def shipped_surface(self, model_surface: Band, month: Month, tag: str = "shipped") -> Band:
        """The surface to ship for the month after ``month``, from the model's (work files
        named by ``tag``: the forecast's surfaces are made beside the run's)."""
        if not isinstance(self.map_choice, MapChoice) or self.history_settings is None:
            return model_surface
        return chosen_surface(
            self.map_choice, self.design, model_surface, month, self.history_settings, tag
        )

    def on_disk(self, stack: FeatureStack, store: FileStore) -> Selection:
        """The same selection on the run's feature files (``stack``), its later surfaces
        made in ``store`` and the fold models' spread written there: what the later stages
        (COG conversion, the forecast) need when validation ran in memory
        (:meth:`hwc_risk.modelling.Design.for_run`)."""
        spread = self.spread
        if spread is not None and not isinstance(spread, FileBand):
            grid, values = stack.grid, read_band(spread)
            spread = store.child("surfaces").band("spread", grid.shape, grid, SPREAD_DESCRIPTION)
            with spread.writer() as w:
                w.write(values, Window(0, 0, grid.width, grid.height))
        design = replace(self.design, stack=stack, store=store)
        return replace(self, design=design, spread=spread)

    def model_share(self, model_surface: Band, month: Month) -> float:
        """How much the shipped surface moves per unit of the model's (1 when the model
        is shipped; see :func:`hwc_risk.map_choice.model_share`)."""
        if not isinstance(self.map_choice, MapChoice) or self.history_settings is None:
            return 1.0
        return model_share(
            self.map_choice.chosen, self.design, model_surface, month, self.history_settings
        )

    def class_captures(self) -> dict[str, float] | None:
        """The shipped surface's share of the run month's incidents in each risk class."""
        if isinstance(self.map_choice, MapChoice) and self.shipped != "model":
            last = self.map_choice.months[-1]
            run_month = self.origins[-1] if self.origins else None
            return last.class_capture.get(self.shipped) if last.month == run_month else None
        return self.temporal.class_capture if isinstance(self.temporal, MonthEvaluation) else None

    def metrics_json(self) -> dict[str, Any]:
        """The validation sections of ``metrics.json``."""
        return {
            "model_choice": self.choice.to_json() if self.choice is not None else None,
            "history_features": self.history,
            "near_repeat": self.near_repeat.to_json() if self.near_repeat else None,
            "rolling_origin": self.rolling.to_json(),
            "temporal_holdout": self.temporal.to_json(),
            "spatial_block_cv": self.spatial.to_json(),
            "map_choice": self.map_choice.to_json() if self.map_choice is not None else None,
        }


def _choose_history(
    design: Design, origins: list[Month], run_month: Month, enabled: bool
) -> tuple[Design, dict[str, Any] | None]:
    """The design with the history bandwidth and recency chosen on the months before
    the held-out ones (none when history is off or the data span under 3 months)."""
    p_months = design.months[design.is_presence]
    data_months = sorted(set(p_months.tolist()))
    if not enabled or len(data_months) < 3:
        return design, None
    first_test = origins[0] if origins else run_month
    eval_months = [Month(m) for m in data_months if m < first_test.index][-6:]
    settings, info = choose_history(
        design.rows[design.is_presence],
        design.cols[design.is_presence],
        p_months,
        eval_months,
        design.stack.valid,
        design.stack.grid.cell_size,
    )
    return design.with_history(settings), info


#: The estimators ``model: auto`` averages when the held-out months cannot tell them apart
#: and the reports do not repeat (:func:`one_se_choice`).
_ADDITIVE = ("spline_logistic", "maxent")


def _auto(
    design: Design,
    recipe: ModelRecipe,
    origins: list[Month],
    fractions: tuple[float, ...],
    top: float,
    config_dir: Path | None,
    toggle_months: list[Month],
    repeats: bool = True,
) -> tuple[ModelRecipe, Design, RollingOrigin | Skipped, Choice]:
    """``model: auto``: the recipe (:func:`one_se_choice`: the simplest candidate within
    one standard error of the best; where the reports do not repeat near each other,
    ``repeats`` false (:mod:`hwc_risk.near_repeat`), the average of the GLM and MaxEnt
    when both are within it), then the feature groups by held-out skill
    (:meth:`Toggle.compare`) over the rolling months and the earlier of ``toggle_months``
    (the map choice's, up to 12: on the few rolling months alone a toggle followed their
    noise): the neighbourhood class fractions kept unless leaving them out is clearly
    better; incident history added if it adds skill, and only if it adds clearly (one
    standard error) where the reports do not repeat (history then carries only the
    static pattern the covariates may already describe, and on sparse series a chance
    gain on the held-out months let it add noise to the map). With no static feature
    (incidents alone), history is in from the start."""
    names = [str(c) for c in recipe.params.get("candidates", ["maxent", "glm", "gbm"])]
    static = design.with_history(None)
    if not static.names:
        static = design
    recipes = {n: load_recipe(n, config_dir) for n in names}
    jobs = [RollingMonths(static, r, tuple(origins), fractions) for r in recipes.values()]
    summaries = run_jobs(design.compute, jobs, "rolling-origin candidates")
    results = dict(zip(recipes, summaries, strict=True))
    additive = tuple(n for n, r in recipes.items() if r.estimator in _ADDITIVE)
    choice = one_se_choice(results, top, average=() if repeats else additive[:2])
    chosen = average_recipe(choice.chosen.split("+"), config_dir)
    if choice.chosen in results:
        rolling = results[choice.chosen]
    else:
        job = RollingMonths(static, chosen, tuple(origins), fractions)
        rolling = run_jobs(design.compute, [job], "the candidates' average")[0]
    months = _ToggleMonths(
        recipe=chosen,
        origins=tuple(origins),
        extra=tuple(m for m in toggle_months if m not in origins),
        fractions=fractions,
    )
    static_later: list[RollingOrigin | Skipped] | None = None
    if any(layer.kind == "fraction" for layer in design.stack.layers):
        static, rolling, static_later, choice = _toggle_fractions(
            static, rolling, choice, months, design.compute
        )
    if design.history is not None and static.history is None:
        with_history = static.with_history(design.history)
        jobs = [months.rolling(with_history), *months.later(with_history)]
        if static_later is None:
            jobs += months.later(static)
        found = run_jobs(design.compute, jobs, "with incident history")
        r_h, h_later = found[0], found[1:2]
        without_later = found[2:3] if static_later is None else static_later
        toggle = Toggle.compare(
            _joined(r_h, *h_later), _joined(rolling, *without_later), clear_gain=not repeats
        )
        choice = choice.toggled("history", toggle, "incident history")
        if toggle.used:
            return chosen, with_history, r_h, choice
    return chosen, static, rolling, choice


@dataclass(frozen=True, kw_only=True)
class _ToggleMonths:
    """The months ``model: auto`` judges feature groups on, with its chosen recipe: the
    rolling ones and the map choice's earlier ones (``extra``)."""

    recipe: ModelRecipe
    origins: tuple[Month, ...]
    extra: tuple[Month, ...]
    fractions: tuple[float, ...]

    def rolling(self, design: Design) -> RollingMonths:
        return RollingMonths(design, self.recipe, self.origins, self.fractions)

    def later(self, design: Design) -> list[RollingMonths]:
        """The job on the earlier months (none without them); no baselines needed."""
        if not self.extra:
            return []
        return [
            RollingMonths(design, self.recipe, self.extra, self.fractions, with_baselines=False)
        ]


def _toggle_fractions(
    static: Design,
    rolling: RollingOrigin | Skipped,
    choice: Choice,
    months: _ToggleMonths,
    compute: Compute,
) -> tuple[Design, RollingOrigin | Skipped, list[RollingOrigin | Skipped], Choice]:
    """The class fractions kept unless leaving them out is clearly better; the design,
    its rolling months and its earlier months as kept."""
    no_fractions = static.without("fraction")
    jobs = [months.rolling(no_fractions), *months.later(no_fractions), *months.later(static)]
    found = run_jobs(compute, jobs, "without class fractions")
    r_nf, nf_later, with_later = found[0], found[1:2], found[2:3]
    toggle = Toggle.compare(
        _joined(rolling, *with_later), _joined(r_nf, *nf_later), keep_unless_worse=True
    )
    choice = choice.toggled("neighbourhood_fractions", toggle, "neighbourhood class fractions")
    if toggle.used:
        return static, rolling, with_later, choice
    return no_fractions, r_nf, nf_later, choice


def _near_repeat(design: Design, run_month: Month) -> NearRepeat:
    """The Knox test of the incidents up to the run's month."""
    p = design.is_presence & (design.months <= run_month.index)
    return knox_test(design.rows[p], design.cols[p], design.months[p], design.stack.grid.cell_size)


def _joined(
    first: RollingOrigin | Skipped, *rest: RollingOrigin | Skipped
) -> RollingOrigin | Skipped:
    """Rolling-origin validations of one model on different months, as one."""
    parts = [r for r in (first, *rest) if isinstance(r, RollingOrigin)]
    if not parts:
        return first
    per_month = sorted((e for r in parts for e in r.per_month), key=lambda e: e.month.index)
    return RollingOrigin(per_month=tuple(per_month))


@dataclass(frozen=True, kw_only=True)
class TimeAblation:
    """The model's rolling-origin validation with and without its time features (the
    monthly covariates and the season), and whether they were kept."""

    features: list[str]
    with_time: RollingOrigin | Skipped
    without_time: RollingOrigin | Skipped
    kept: bool

    @property
    def toggle(self) -> Toggle:
        """The ablation as a feature-group toggle (``model_choice`` in metrics.json)."""
        return Toggle(
            used=self.kept,
            score_with=skill_of(self.with_time),
            score_without=skill_of(self.without_time),
        )

    @property
    def summary(self) -> str:
        w, wo = self.with_time, self.without_time
        if isinstance(w, Skipped) or isinstance(wo, Skipped):
            return "not enough held-out incidents to compare"
        a, b = w.mean.model.capture(0.10), wo.mean.model.capture(0.10)
        kept = "kept" if self.kept else "left out"
        return (
            f"rolling origin ({len(w.per_month)} months): top-10 % capture {a:.1%} with the "
            f"time features, {b:.1%} without ({(a - b) * 100:+.1f} points); {kept}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "with_time": _model_json(self.with_time),
            "without_time": _model_json(self.without_time),
            "kept": self.kept,
            "summary": self.summary,
        }


def _time_ablation(
    design: Design,
    recipe: ModelRecipe,
    origins: list[Month],
    fractions: tuple[float, ...],
    rolling: RollingOrigin | Skipped,
    decide: bool,
) -> tuple[Design, RollingOrigin | Skipped, TimeAblation | None]:
    """The model with and without its time features on the same held-out months; with
    ``decide`` (``model: auto``) they stay only if they add skill, as the other groups."""
    features = [x.name for x in design.static_layers if x.kind == "time"]
    reduced = design.without("time")
    if not features or not reduced.names:
        return design, rolling, None
    job = RollingMonths(reduced, recipe, tuple(origins), fractions)
    without = run_jobs(design.compute, [job], "without time features")[0]
    kept = Toggle.compare(rolling, without).used if decide else True
    ablation = TimeAblation(features=features, with_time=rolling, without_time=without, kept=kept)
    if not kept:
        return reduced, without, ablation
    return design, rolling, ablation


def _final_validation(
    design: Design,
    recipe: ModelRecipe,
    origins: list[Month],
    fractions: tuple[float, ...],
    settings: ValidationSettings,
    block_size: float,
    run_month: Month,
    rolling: RollingOrigin | Skipped,
    ablate: bool,
    map_job: MapMonths | None,
) -> tuple[SpatialCV | Skipped, Band | None, Ablation | None, MapChoice | Skipped | None]:
    """Spatial block cross-validation, the connectivity ablation and the map choice's
    months, their fits side by side."""
    target = run_month + 1
    spatial = SpatialFolds(design, recipe, settings.folds, block_size, fractions, target)
    jobs: list[Any] = [spatial, *([map_job] if map_job is not None else [])]
    if ablate:
        reduced = design.without("connectivity")
        jobs.append(RollingMonths(reduced, recipe, tuple(origins), fractions, with_baselines=False))
        jobs.append(
            SpatialFolds(
                reduced,
                recipe,
                settings.folds,
                block_size,
                fractions,
                target,
                with_spread=False,
                with_baselines=False,
            )
        )
    results = run_jobs(design.compute, jobs, "spatial cross-validation and the map choice")
    (summary, spread), rest = results[0], results[1:]
    map_choice = rest.pop(0) if map_job is not None else None
    if not ablate:
        return summary, spread, None, map_choice
    layers = [layer.name for layer in design.stack.layers if layer.kind == "connectivity"]
    ablation = Ablation(
        layers=layers,
        with_temporal=rolling,
        with_spatial=summary,
        without_temporal=rest[0],
        without_spatial=rest[1][0],
    )
    return summary, spread, ablation, map_choice


def select_and_validate(
    design: Design,
    recipe: ModelRecipe,
    options: SelectionOptions,
    run_month: Month,
    config_dir: Path | None = None,
) -> Selection:
    """The selection and validation stage of a run.

    ``design`` holds the samples with their static features; history settings
    are chosen here. Returns the recipe and features to fit on all incidents,
    and every validation result of ``metrics.json``.
    """
    settings, use_history = options.validation, options.use_history
    fractions = validation_fractions(settings.top_fraction)
    p_months = design.months[design.is_presence]
    origins = held_out_months(p_months, run_month, settings.rolling_months)
    design, history = _choose_history(design, origins, run_month, use_history)
    design = replace(design, forecast_baselines=options.forecast)
    history_settings = design.history
    grid = design.stack.grid
    block_size = settings.block_size or default_block_size(
        grid.shape, grid.cell_size, options.neighbourhood
    )
    choice_months = map_months(p_months, run_month, settings.map_months)
    near_repeat = _near_repeat(design, run_month)
    choice = None
    if recipe.estimator == "auto":
        recipe, design, rolling, choice = _auto(
            design,
            recipe,
            origins,
            fractions,
            settings.top_fraction,
            config_dir,
            choice_months,
            repeats=near_repeat.clustered,
        )
    else:
        job = RollingMonths(design, recipe, tuple(origins), fractions)
        rolling = run_jobs(design.compute, [job], "rolling-origin months")[0]
    design, rolling, time_ablation = _time_ablation(
        design, recipe, origins, fractions, rolling, decide=choice is not None
    )
    if choice is not None and time_ablation is not None:
        choice = choice.toggled("time_features", time_ablation.toggle, "time features")
    temporal = rolling.month(run_month) if isinstance(rolling, RollingOrigin) else rolling
    map_job = None
    if choice is not None and settings.map_choice and history_settings is not None:
        map_job = MapMonths(
            design,
            recipe,
            tuple(choice_months),
            history_settings,
            fractions,
            model_first=not near_repeat.clustered,
        )
    spatial, spread, ablation, map_choice = _final_validation(
        design,
        recipe,
        origins,
        fractions,
        settings,
        block_size,
        run_month,
        rolling,
        options.ablate_connectivity,
        map_job,
    )
    return Selection(
        recipe=recipe,
        design=design,
        origins=origins,
        rolling=rolling,
        temporal=temporal,
        spatial=spatial,
        spread=spread,
        block_size=block_size,
        choice=choice,
        history=history,
        history_settings=history_settings,
        ablation=ablation,
        time_ablation=time_ablation,
        map_choice=map_choice,
        near_repeat=near_repeat,
    )
