"""Feature-group toggles of ``model: auto``: the class fractions (from the user's own
land cover) stay unless leaving them out is clearly better, so a few noisy held-out
months do not drop them by chance; incident history joins on any gain."""

from __future__ import annotations

from hwc_risk.months import Month
from hwc_risk.selection import Toggle
from hwc_risk.validation import Metrics, MonthEvaluation, RollingOrigin


def _rolling(captures: list[float], first: int = 24300) -> RollingOrigin:
    months = [
        MonthEvaluation(
            model=Metrics(n_incidents=20, auc=0.7, boyce=0.5, rates=((0.1, c, c * 10),)),
            month=Month(first + k),
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


def test_history_is_judged_on_the_rolling_months_and_the_map_choices_earlier_ones() -> None:
    from hwc_risk.selection import _joined

    with_late, with_early = _rolling([0.40, 0.30]), _rolling([0.20, 0.25], first=24290)
    both = _joined(with_late, with_early)
    assert isinstance(both, RollingOrigin)
    assert [e.month.index for e in both.per_month] == [24290, 24291, 24300, 24301]
    without_late, without_early = _rolling([0.35, 0.28]), _rolling([0.40, 0.45], first=24290)
    # better on the rolling months alone, worse over all the months: not kept
    assert Toggle.compare(with_late, without_late).used
    assert not Toggle.compare(both, _joined(without_late, without_early)).used


def test_history_needs_a_clear_gain_where_reports_do_not_repeat() -> None:
    # a noisy gain joins by default, not when a clear gain is asked for; a clear one does
    assert not Toggle.compare(
        _rolling(NOISY_GAIN[0]), _rolling(NOISY_GAIN[1]), clear_gain=True
    ).used
    assert Toggle.compare(_rolling(CLEAR_GAIN[0]), _rolling(CLEAR_GAIN[1]), clear_gain=True).used


def test_the_glm_and_maxent_are_averaged_when_the_months_cannot_tell_them_apart() -> None:
    from hwc_risk.models import average_recipe
    from hwc_risk.selection import one_se_choice

    pair = ("glm", "maxent")
    tied = {
        "glm": _rolling(NOISY_GAIN[1]),
        "maxent": _rolling(NOISY_GAIN[0]),
        "gbm": _rolling([0.1, 0.12, 0.11, 0.1]),
    }
    # by default (reports that repeat) the simplest within one SE: glm
    assert one_se_choice(tied, 0.10).chosen == "glm"
    choice = one_se_choice(tied, 0.10, average=pair)
    assert choice.chosen == "glm+maxent"
    assert "the average of glm and maxent" in choice.reason, choice.reason
    recipe = average_recipe(choice.chosen.split("+"))
    assert recipe.name == "glm+maxent" and recipe.estimator == "blend"
    assert recipe.params == {"members": ["glm", "maxent"], "cv": 0}
    # a clear winner is taken alone
    clear = {"glm": _rolling(CLEAR_GAIN[1]), "maxent": _rolling(CLEAR_GAIN[0])}
    assert one_se_choice(clear, 0.10, average=pair).chosen == "maxent"
    assert average_recipe(["maxent"]).estimator == "maxent"
    # boosting is never averaged in; and MaxEnt a steady 0.04 below the GLM every month
    # is told apart from it (outside one paired SE), though within one SE of the best
    glm = [0.50, 0.20, 0.55, 0.18]
    steady = {
        "glm": _rolling(glm),
        "maxent": _rolling([c - 0.04 for c in glm]),
        "gbm": _rolling([c + 0.01 for c in glm]),
    }
    choice = one_se_choice(steady, 0.10, average=pair)
    assert choice.chosen == "glm" and "simplest candidate" in choice.reason
