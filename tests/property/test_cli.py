"""Generated incident tables and configs through the command line, in-process.

``hwc-risk validate`` and ``hwc-risk run`` must always end with exit code 0, or
exit code 2 and exactly one line on stderr (``hwc-risk: error: ...``); never a
traceback (exit code 1). Where they go through, the incident rows they report add
up: ``read = accepted + merged + rejected``.

Runs are slow, so they use a tiny landscape (40 x 40 cells), a cheap model (glm, one
held-out month, two folds, no history features) and few examples (marked slow).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from hwc_risk.cli import app
from hwc_risk.synthetic import SyntheticArea

from .strategies import COLUMNS, incident_tables, note

INCIDENTS_LINE = re.compile(
    r"^incidents: (\d+) read from \d+ file\(s\): (\d+) accepted, (\d+) duplicates merged, "
    r"(\d+) rejected"
)


def invoke(*args: str) -> Result:
    """The CLI in-process; checks the exit-code contract and returns the result."""
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception,
        result.stderr,
    )
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("hwc-risk: error: "), lines[0]
        note(f"exit 2: {_kind(lines[0])}")
    else:
        note("exit 0")
    return result


def _kind(line: str) -> str:
    """A short label of an error line for hypothesis's statistics."""
    for key in ("usable incidents", "unknown key", "not valid YAML", "column", "not UTF-8"):
        if key in line:
            return key
    return line.split(": ")[-1][:40]


def check_counts(stdout: str) -> None:
    """``validate``'s incidents line: read = accepted + merged + rejected."""
    for line in stdout.splitlines():
        match = INCIDENTS_LINE.match(line)
        if match:
            read, accepted, merged, rejected = map(int, match.groups())
            assert read == accepted + merged + rejected, line
            return
    raise AssertionError(f"no incidents line in {stdout!r}")


def _good_rows(folder: Path) -> tuple[tuple[str, ...], ...]:
    lines = (folder / "incidents.csv").read_text(encoding="utf-8").splitlines()[1:]
    return tuple(tuple(line.split(",")) for line in lines)


@pytest.fixture(scope="module")
def area(small_area_template: Path) -> Path:
    assert (small_area_template / "incidents.csv").read_text().startswith(",".join(COLUMNS))
    return small_area_template


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hwc-prop-") as tmp:
        yield Path(tmp)


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest / "config.yaml"


# --- validate: generated incident tables ------------------------------------------

_SMALL = SyntheticArea  # the CLI tests' small area: size 48, seed 5 (tests/conftest.py)
GOOD_ROWS: tuple[tuple[str, ...], ...] = ()


@pytest.fixture(scope="module")
def good_rows(area: Path) -> tuple[tuple[str, ...], ...]:
    return _good_rows(area)


@given(data=st.data())
@settings(max_examples=60)
def test_validate_on_generated_tables(
    data: st.DataObject, area: Path, good_rows: tuple[tuple[str, ...], ...]
) -> None:
    table = data.draw(incident_tables(max_rows=30, good_rows=good_rows), label="table")
    with tempfile.TemporaryDirectory(prefix="hwc-prop-") as tmp:
        config = _copy(area, Path(tmp) / "area")
        (config.parent / "incidents.csv").write_bytes(table.data)
        result = invoke("validate", str(config))
        if result.exit_code == 0:
            check_counts(result.stdout)
