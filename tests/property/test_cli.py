"""Generated incident tables and configs through the command line, in-process.

``hwc-risk validate`` and ``hwc-risk run`` must always end with exit code 0, or
exit code 2 and exactly one line on stderr (``hwc-risk: error: ...``); never a
traceback (exit code 1). Where they go through, the incident rows they report add
up: ``read = accepted + merged + rejected``.

Runs are slow, so they use a tiny landscape (40 x 40 cells), a cheap model (glm, one
held-out month, two folds, no history features) and few examples (marked slow).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from hwc_risk.cli import app
from hwc_risk.synthetic import SyntheticArea

from .strategies import (
    COLUMNS,
    SMALL_AREA_CONFIG,
    config_texts,
    incident_tables,
    mutated_config,
    note,
    tables_with_good_rows,
)

EXAMPLES = int(os.environ.get("HWC_PROPERTY_EXAMPLES", "60"))
INCIDENTS_LINE = re.compile(
    r"^incidents: (\d+) read from \d+ file\(s\): (\d+) accepted, (\d+) duplicates merged, "
    r"(\d+) rejected"
)
months = st.one_of(
    st.none(), st.sampled_from(["2025-03", "2024-01", "2019-01", "2031-12", "2025-13", "Jan"])
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
        assert lines[0].startswith("hwc-risk: error: "), lines[0]
        # one line; or, for several config problems, a line counting them and one each
        counted = re.search(r": (\d+) problems in the config:$", lines[0])
        assert len(lines) == (1 + int(counted.group(1)) if counted else 1), result.stderr
        assert all(line.startswith("  ") for line in lines[1:]), result.stderr
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
    lines = (folder / "incidents.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    return tuple(tuple(line.split(",")) for line in lines[1:])


@pytest.fixture(scope="module")
def good_rows(small_area_template: Path) -> tuple[tuple[str, ...], ...]:
    return _good_rows(small_area_template)


@pytest.fixture(scope="module")
def base_config(small_area_template: Path) -> dict[str, Any]:
    config = yaml.safe_load((small_area_template / "config.yaml").read_text())
    assert isinstance(config, dict)
    return config


def _month(month: str | None) -> list[str]:
    return [] if month is None else ["--month", month]


# --- validate ---------------------------------------------------------------------


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
@given(data=st.data())
@settings(max_examples=EXAMPLES)
def test_validate_on_generated_tables(
    data: st.DataObject, small_area_template: Path, good_rows: tuple[tuple[str, ...], ...]
) -> None:
    table = data.draw(incident_tables(max_rows=30, good_rows=good_rows), label="table")
    month = data.draw(months, label="month")
    with tempfile.TemporaryDirectory(prefix="hwc-prop-") as tmp:
        folder = Path(tmp) / "area"
        shutil.copytree(small_area_template, folder)
        (folder / "incidents.csv").write_bytes(table.data)
        result = invoke("validate", str(folder / "config.yaml"), *_month(month))
        if result.exit_code == 0:
            check_counts(result.stdout)


def _config_text(section: str = "incidents", **changes: Any) -> bytes:
    """The small area's config with keys of ``section`` (dotted: ``covariates.cover``) changed."""
    config = copy.deepcopy(SMALL_AREA_CONFIG)
    node = config
    for part in section.split("."):
        node = node[part]
    node.update(changes)
    return yaml.safe_dump(config, sort_keys=False).encode()


@given(text=config_texts(SMALL_AREA_CONFIG))
@settings(max_examples=EXAMPLES)
@example(text=yaml.safe_dump(SMALL_AREA_CONFIG).encode())
# found by this property: a date_format strptime refuses was a traceback
@example(text=_config_text(date_format="%Q"))
@example(text=_config_text(date_format="%"))
# a nodata value the raster's type cannot hold (uint8) was a traceback from rasterio
@example(text=_config_text("covariates.cover", nodata=-9999))
@example(text=_config_text("covariates.cover", nodata=float("nan")))
# a path holding a character str.splitlines breaks at (\x1e) split the error line
@example(text=_config_text("covariates.cover", path="\x1e"))
def test_validate_on_generated_configs(text: bytes, small_area_template: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hwc-prop-") as tmp:
        folder = Path(tmp) / "area"
        shutil.copytree(small_area_template, folder)
        (folder / "config.yaml").write_bytes(text)
        result = invoke("validate", str(folder / "config.yaml"))
        if result.exit_code == 0:
            check_counts(result.stdout)


def test_the_config_strategy_starts_from_the_small_area(base_config: dict[str, Any]) -> None:
    assert base_config == SMALL_AREA_CONFIG


# --- run --------------------------------------------------------------------------

TINY = {
    "model": "glm",
    "validation": {"rolling_months": 1, "folds": 2},
    "features": {"history": False},
    "background": {"n_points": 400},
}


@pytest.fixture(scope="module")
def tiny_area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 x 40 landscape with 120 incidents over 6 months and a cheap model."""
    folder = tmp_path_factory.mktemp("tiny-area")
    SyntheticArea(size=40, cell_size=250.0, seed=1).write(
        folder, n_incidents=120, n_months=6, model="glm", extra_config=TINY
    )
    return folder


@pytest.mark.slow
def test_run_on_the_tiny_landscape_of_seed_11(tmp_path: Path) -> None:
    """Found by the property below: a fold's spline GLM with too few distinct knots
    crashed the compiled scorer (issue 13 item 1)."""
    config = SyntheticArea(size=40, cell_size=250.0, seed=11).write(
        tmp_path / "area", n_incidents=120, n_months=6, model="glm", extra_config=TINY
    )
    result = invoke("run", str(config), "--quiet")
    assert result.exit_code == 0, result.stderr


def _check_run(result: Result, folder: Path) -> None:
    """A run that went through left a complete folder whose manifest adds up."""
    name_dir = folder / "out" / "synthetic"
    runs = (
        [p for p in name_dir.iterdir() if not p.name.endswith(".lock")] if name_dir.exists() else []
    )
    if result.exit_code == 2:
        assert runs == [], runs  # nothing half-written
        return
    run_dir = Path(result.stdout.splitlines()[-1])
    assert runs == [run_dir]
    counts = json.loads((run_dir / "manifest.json").read_text())["incidents"]
    assert counts["read"] == counts["accepted"] + counts["duplicates_merged"] + counts["rejected"]


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=max(4, EXAMPLES // 8))
def test_run_on_generated_tables_and_configs(data: st.DataObject, tiny_area: Path) -> None:
    good = _good_rows(tiny_area)
    table = data.draw(tables_with_good_rows(good), label="table")
    base = yaml.safe_load((tiny_area / "config.yaml").read_text())
    config = data.draw(st.none() | mutated_config(base), label="config")
    with tempfile.TemporaryDirectory(prefix="hwc-prop-") as tmp:
        folder = Path(tmp) / "area"
        shutil.copytree(tiny_area, folder)
        (folder / "incidents.csv").write_bytes(table.data)
        if config is not None:
            (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        result = invoke("run", str(folder / "config.yaml"), "--quiet")
        _check_run(result, folder)
