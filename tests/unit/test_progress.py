import io
import sys

import pytest

from hwc_risk import progress as progress_module
from hwc_risk.progress import enable, progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTTY()
    monkeypatch.setattr(sys, "stderr", fake)
    enable(False)
    assert list(progress(range(3), "x", 3)) == [0, 1, 2]
    assert fake.getvalue() == ""
    enable(True)
    try:
        assert list(progress(range(3), "features", 3, "covariate")) == [0, 1, 2]
    finally:
        enable(False)
    out = fake.getvalue()
    assert "features" in out and "covariate" in out  # tqdm shows rate and time left
    assert progress_module._ENABLED is False


def test_cell_bar_shows_rate_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    from hwc_risk.progress import progress_bar

    fake = FakeTTY()
    monkeypatch.setattr(sys, "stderr", fake)
    enable(True)
    try:
        with progress_bar("predicting", 4_000_000, "cell") as bar:
            bar.update(1_000_000)
            bar.update(3_000_000)
    finally:
        enable(False)
    out = fake.getvalue()
    assert "predicting" in out and "cell/s" in out and "4.00M" in out
    with progress_bar("quiet", 10, "cell") as bar:  # disabled: a silent bar
        bar.update(5)
    assert "quiet" not in fake.getvalue()
