"""The results of a run's stages, carried from one to the next.

Each stage returns a frozen dataclass; :class:`RunStages` holds those the
products and records stages read, so their signatures do not grow with every
new stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .covariates import FeatureStack
from .forecast_stage import NextMonths
from .incidents import MonthIncidents
from .modelling import FittedModel
from .predict import RiskMap
from .sampling import Samples
from .scenarios.results import ScenarioResults
from .selection import Selection

__all__ = ["RunStages"]


@dataclass(frozen=True, kw_only=True)
class RunStages:
    """What the stages of a run computed, for the products and the records."""

    stack: FeatureStack
    incidents: MonthIncidents
    samples: Samples
    selection: Selection
    fitted: FittedModel
    risk: RiskMap
    scenarios: ScenarioResults = field(default_factory=ScenarioResults)
    forecast: NextMonths | None = None  # forecast.horizon > 0
