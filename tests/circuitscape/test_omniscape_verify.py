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

from hwc_risk.omniscape.ini import OmniscapeIni, read_options
from hwc_risk.omniscape.run import landscape_of
from hwc_risk.omniscape.window import find_targets
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


#: Expected outputs hwc-risk does not reproduce. test4a's expected flow potential carries,
#: on one cell beside each target (see :func:`artefact_cells`), 13 to 1 176 A more than
#: the windows can put there; every other cell matches (checked below). Left visible as
#: an expected failure rather than imitated.
KNOWN = {
    ("test4a", "flow_potential.tif"): "13-1 176 A extra on one cell beside each target",
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


def artefact_cells(ini: Path) -> np.ndarray:
    """The cells where test4a's expected maps carry current no window can put there.

    One cell beside each target: the next cell to the right when the target's
    window is not cut at the left edge (target column >= radius + buffer), the next
    cell below when it is not cut at the top. A cell whose neighbours carry no
    extra current cannot carry any itself (the current through a cell flows on
    through its neighbours), so no solve of Omniscape's windows gives these values.
    """
    opts = read_options(OmniscapeIni(ini))
    land, _, strength = landscape_of(OmniscapeIni(ini), opts)
    h, w = land.shape
    reach = opts.window.reach
    mask = np.zeros((h, w), dtype=bool)
    for row, col, _amps in find_targets(strength, opts.window).astype(int):
        if col >= reach and col + 1 < w:
            mask[row, col + 1] = True
        if row >= reach and row + 1 < h:
            mask[row + 1, col] = True
    return mask


@pytest.mark.slow
@pytest.mark.parametrize(
    "output", ["flow_potential.tif", "normalized_cum_currmap.tif", "cum_currmap.tif"]
)
def test_test4a_matches_omniscape_off_its_artefact_cells(
    output: str, runs: dict[str, Path]
) -> None:
    """Everywhere but the artefact cells, test4a's maps are Omniscape's (its criterion)."""
    mask = artefact_cells(runs["test4a"].parent / "config.ini")
    a = read(VERIFY / "test4a" / f"expected_{output}")
    b = read(runs["test4a"] / output)
    valid = a != -9999
    assert mask.sum() == 160  # right of 80 of its 100 targets, below 80
    assert omniscape_isapprox(a[~mask], b[~mask]), f"{output}: differs off the artefact cells"
    if output == "flow_potential.tif":
        extra = a[mask & valid] - b[mask & valid]
        assert extra.min() > 10.0, "the expected map's extra current is where it was"
