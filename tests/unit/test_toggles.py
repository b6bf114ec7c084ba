"""Feature-group toggles of ``model: auto``: the class fractions (from the user's own
land cover) stay unless leaving them out is clearly better, so a few noisy held-out
months do not drop them by chance; incident history joins on any gain."""

from __future__ import annotations

from hwc_risk.months import Month
from hwc_risk.selection import Toggle
from hwc_risk.validation import Metrics, MonthEvaluation, RollingOrigin


def _rolling(captures: list[float]) -> RollingOrigin:
    months = [
        MonthEvaluation(
            model=Metrics(n_incidents=20, auc=0.7, boyce=0.5, rates=((0.1, c, c * 10),)),
            month=Month(24300 + k),
            n_train=100,
            n_test=20,
        )
        for k, c in enumerate(captures)
    ]
    return RollingOrigin(per_month=tuple(months))


NOISY_GAIN = ([0.40, 0.30, 0.45, 0.28], [0.32, 0.36, 0.38, 0.33])  # +0.01 on average
CLEAR_GAIN = ([0.40, 0.42, 0.45, 0.41], [0.30, 0.33, 0.34, 0.31])  # +0.10 every month


def test_any_gain_decides_without_the_margin() -> None:
    assert Toggle.compare(_rolling(NOISY_GAIN[0]), _rolling(NOISY_GAIN[1])).used
    assert not Toggle.compare(_rolling(NOISY_GAIN[1]), _rolling(NOISY_GAIN[0])).used


def test_a_covariate_group_stays_unless_leaving_it_out_is_clearly_better() -> None:
    # with the group a little worse on average, but not clearly: kept
    noisy = Toggle.compare(_rolling(NOISY_GAIN[1]), _rolling(NOISY_GAIN[0]), keep_unless_worse=True)
    assert noisy.score_with < noisy.score_without and noisy.used
    # clearly worse with it, every month: left out
    clear = Toggle.compare(_rolling(CLEAR_GAIN[1]), _rolling(CLEAR_GAIN[0]), keep_unless_worse=True)
    assert not clear.used
