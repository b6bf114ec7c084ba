"""Omniscape.jl's own verified cases, run through `hwc-risk omniscape`.

The five cases are in ``shared/omniscape-verify`` (or ``HWC_OMNISCAPE_VERIFY``).
Their ``config.ini`` files use paths relative to Omniscape's test folder
(``input/resistance.asc``); the cases hold their inputs under the same names,
so ``input/`` is mapped onto the case folder. Acceptance is Omniscape's own
(``test/runtests.jl``): ``isapprox(expected, computed; rtol = 1e-6)`` after
nodata is set to -9999, i.e. the norm of the difference at most 1e-6 of the
larger norm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.circuitscape.shared import case_names, need, shared_folder
from tests.conftest import run_cli

VERIFY = shared_folder("HWC_OMNISCAPE_VERIFY", "omniscape-verify")
CASES = case_names(VERIFY)


@pytest.fixture(scope="module", autouse=True)
def _need_cases() -> None:
    need(VERIFY, CASES)


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        a = ds.read(1).astype(np.float64)
        if ds.nodata is not None:
            a[a == ds.nodata] = -9999.0
    a[np.isnan(a)] = -9999.0
    return a


def omniscape_isapprox(expected: np.ndarray, computed: np.ndarray) -> bool:
    """Julia's ``isapprox(A, B; rtol = 1e-6)`` on arrays: a norm-wise comparison."""
    diff = np.linalg.norm(expected - computed)
    return bool(diff <= 1e-6 * max(np.linalg.norm(expected), np.linalg.norm(computed)))


def run_case(case: Path, tmp: Path) -> Path:
    text = (case / "config.ini").read_text().replace("input/", f"{case}/")
    lines = [
        f"project_name = {tmp / 'out'}" if line.strip().startswith("project_name") else line
        for line in text.splitlines()
    ]
    ini = tmp / "config.ini"
    ini.write_text("\n".join(lines) + "\n")
    proc = run_cli("omniscape", ini, "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    written = [Path(p) for p in proc.stdout.split()]
    assert all(p.parent == tmp / "out" for p in written)
    return tmp / "out"


def test_all_five_cases_are_there() -> None:
    assert CASES == ["test1", "test2", "test3", "test4a", "test_reclass"]


@pytest.mark.parametrize("name", CASES)
def test_case_matches_omniscape(name: str, tmp_path: Path) -> None:
    case = VERIFY / name
    out = run_case(case, tmp_path)
    expected = sorted(case.glob("expected_*"))
    assert expected
    problems = []
    for exp in expected:
        got = out / exp.name.removeprefix("expected_")
        if not got.exists():
            problems.append(f"{got.name}: not written")
            continue
        a, b = read(exp), read(got)
        assert a.shape == b.shape
        assert np.array_equal(a == -9999, b == -9999), f"{got.name}: nodata cells differ"
        if not omniscape_isapprox(a, b):
            problems.append(f"{got.name}: differs beyond rtol 1e-6")
    assert (out / "config.ini").exists()
    assert problems == []
