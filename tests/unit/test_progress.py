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
