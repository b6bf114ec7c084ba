"""Circuitscape's own test cases in every mode, run through `hwc-risk circuitscape`.

The 35 cases are in ``shared/circuitscape-verify-modes`` (or
``HWC_CIRCUITSCAPE_VERIFY_MODES``): one-to-all, all-to-one, network pairwise and
advanced, and more pairwise options. Each is judged as Circuitscape's harness
(``test/test_utils.jl``) judges it, as the folder's README says:

- every ``.asc`` map the run wrote whose name has an ``_`` must match the expected
  map of that name: sum of squared differences below 1e-6;
- the resistances (``_resistances.out``) must match element-wise within sqrt(1e-6);
- network files: expected node numbers are 0-based where Circuitscape 5 (and
  hwc-risk) writes them 1-based, so 1 is added to them (file names too) before
  comparing; node and branch currents and voltages are compared by node, a
  missing entry counting as 0, sum of squared differences below 1e-6.

Beyond the harness, each case must write at least one map or list when its
``.ini`` asks for maps, so that a run writing nothing cannot pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hwc_risk.circuitscape import read_grid
from tests.circuitscape.shared import case_names, mapped_ini, need, shared_folder
from tests.conftest import cli

VERIFY = shared_folder("HWC_CIRCUITSCAPE_VERIFY_MODES", "circuitscape-verify-modes")
CASES = case_names(VERIFY)
PATH_KEYS = {
    "habitat_file",
    "source_file",
    "ground_file",
    "polygon_file",
    "point_file",
    "mask_file",
    "included_pairs_file",
    "variable_source_file",
    "reclass_file",
}
TOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def _need_cases() -> None:
    need(VERIFY, CASES)


def run_case(case: Path, out: Path) -> list[Path]:
    ini = next(case.glob("*.ini"))
    outputs = {}
    m = re.search(r"^output_file\s*=\s*(.*)$", ini.read_text(), flags=re.M)
    assert m, "no output_file"
    outputs["output_file"] = out / Path(m.group(1).strip()).name
    path = out / ini.name
    path.write_text(mapped_ini(ini, case, PATH_KEYS, outputs))
    proc = cli("circuitscape", path)
    assert proc.returncode == 0, proc.stderr
    return [Path(line) for line in proc.stdout.split()]


def _keyed(rows: np.ndarray, nkey: int, shift: int) -> dict[tuple[int, ...], float]:
    rows = np.atleast_2d(rows)
    if rows.size == 0:
        return {}
    return {tuple(int(v) + shift for v in row[:nkey]): float(row[nkey]) for row in rows}


def _network_expected(case: Path, name: str) -> Path:
    """The expected file of an output: numbers in its name are 0-based there."""
    parts = re.split(r"(_\d+)", name)
    renamed = "".join(f"_{int(p[1:]) - 1}" if re.fullmatch(r"_\d+", p) else p for p in parts)
    return case / f"expected_{renamed}"


def compare_network_file(case: Path, got: Path) -> str | None:
    expected = _network_expected(case, got.name)
    if not expected.exists():
        return f"{got.name}: no expected file {expected.name}"
    nkey = 2 if "branch" in got.name else 1
    a = _keyed(np.loadtxt(got, ndmin=2), nkey, 0)
    b = _keyed(np.loadtxt(expected, ndmin=2), nkey, 1)
    ssd = sum((a.get(k, 0.0) - b.get(k, 0.0)) ** 2 for k in set(a) | set(b))
    return None if ssd < TOL else f"{got.name}: sum of squared differences {ssd:.3g}"


def compare_map(case: Path, got: Path) -> str | None:
    expected = case / f"expected_{got.name}"
    if not expected.exists():
        return f"{got.name}: written, but Circuitscape's expected outputs have no such map"
    a, _ = read_grid(expected, "expected")
    b, _ = read_grid(got, "computed")
    if a.shape != b.shape:
        return f"{got.name}: shape {b.shape}, expected {a.shape}"
    ssd = float(np.sum((np.nan_to_num(a, nan=-9999) - np.nan_to_num(b, nan=-9999)) ** 2))
    return None if ssd < TOL else f"{got.name}: sum of squared differences {ssd:.3g}"


def compare_resistances(case: Path, got: Path, network: bool) -> str | None:
    expected = case / f"expected_{got.name}"
    x, r = np.loadtxt(expected, ndmin=2), np.loadtxt(got, ndmin=2)
    if x.shape != r.shape:
        return f"{got.name}: shape {r.shape}, expected {x.shape}"
    if network:  # node numbers in the header row and column are 0-based in the expected file
        if not np.array_equal(x[1:, 0] + 1, r[1:, 0]):
            return f"{got.name}: focal nodes {r[1:, 0]}, expected {x[1:, 0] + 1}"
        x, r = x[1:, 1:], r[1:, 1:]
    bad = np.abs(x - r) > np.sqrt(TOL)
    if bad.any():
        k = np.argwhere(bad)[0]
        at = tuple(k)
        return f"{got.name}: {int(bad.sum())} entries differ, e.g. {at}: {r[at]:.6g} vs {x[at]:.6g}"
    return None


def test_all_35_cases_are_there() -> None:
    assert len(CASES) == 35, CASES


@pytest.mark.parametrize("name", CASES)
def test_case_matches_circuitscape(name: str, tmp_path: Path) -> None:
    case = VERIFY / name
    written = run_case(case, tmp_path)
    network = name.startswith("network")
    problems = []
    compared = 0
    for got in written:
        if got.name.endswith("_resistances.out"):
            problems.append(compare_resistances(case, got, network))
        elif got.suffix == ".asc" and "_" in got.name:
            problems.append(compare_map(case, got))
        elif network and got.suffix == ".txt":
            problems.append(compare_network_file(case, got))
        else:
            continue
        compared += 1
    assert compared >= 1, f"nothing written to compare: {written}"
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems)
    if not network:
        # the harness compares what was written; a case must not pass by writing nothing
        assert any(got.name.endswith("_resistances.out") for got in written) or any(
            got.suffix == ".asc" for got in written
        )
