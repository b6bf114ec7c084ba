"""The CLI's log handler follows ``sys.stderr`` (one process, several commands).

CI found this: a ``run`` earlier in the test session set up logging on a
CliRunner stream that was closed by the time ``validate`` logged, and the user
saw "--- Logging error --- Traceback" above the one-line error.
"""

from __future__ import annotations

import io
import logging
import sys

import pytest

from hwc_risk.cli import _setup_logging


def test_logging_writes_to_the_current_stderr_after_the_first_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    _setup_logging(quiet=False)
    logging.getLogger("hwc_risk.test").info("first command")
    assert "first command" in first.getvalue()
    first.close()

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("hwc_risk.test").info("second command")
    assert "second command" in second.getvalue()
    assert "Logging error" not in second.getvalue()
