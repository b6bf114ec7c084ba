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


#: Expected outputs hwc-risk does not reproduce. test4a's expected flow potential has,
#: beside every target, a cell carrying up to 1 161 A where all the targets whose
#: windows reach it inject 74 A together (440 A over the whole grid); everywhere else it
#: agrees with hwc-risk to 1e-3, and the case's current map (same sources, windows and
#: correction) matches. Left visible as an expected failure rather than imitated.
KNOWN = {
    ("test4a", "flow_potential.tif"): "expected map: 1 161 A where the windows inject 74 A",
    ("test4a", "normalized_cum_currmap.tif"): "divides by that flow potential",
}
OUTPUTS = [
    (name, exp.name.removeprefix("expected_"))
    for name in CASES
    for exp in sorted((VERIFY / name).glob("expected_*"))
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case run once; the outputs are then checked one by one."""
    return {name: run_case(VERIFY / name, tmp_path_factory.mktemp(name)) for name in CASES}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "output"),
    [
        pytest.param(n, o, marks=pytest.mark.xfail(strict=True, reason=KNOWN[(n, o)]))
        if (n, o) in KNOWN
        else (n, o)
        for n, o in OUTPUTS
    ],
)
def test_output_matches_omniscape(name: str, output: str, runs: dict[str, Path]) -> None:
    got = runs[name] / output
    assert got.exists(), f"{output}: not written"
    assert (runs[name] / "config.ini").exists()
    a, b = read(VERIFY / name / f"expected_{output}"), read(got)
    assert a.shape == b.shape
    assert np.array_equal(a == -9999, b == -9999), f"{output}: nodata cells differ"
    assert omniscape_isapprox(a, b), f"{output}: differs beyond rtol 1e-6"
