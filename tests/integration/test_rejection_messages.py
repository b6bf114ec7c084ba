"""Rejected rows that say what is wrong, through the real command line.

When most rows are rejected, or too few incidents are left, the message gives the
counts by reason, the first offending value and its fix, and says where the
rejected rows are: ``validate`` writes them beside the config; a failed run leaves
no run folder and says how to get them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hwc_risk.cli import app


def _rewrite(config: Path, column: str, change) -> None:  # type: ignore[no-untyped-def]
    path = config.parent / "incidents.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df[column] = change(df)
    df.to_csv(path, index=False)


def _day_first(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df["date"]).dt.strftime("%d/%m/%Y")


def _invoke(*args: str | Path) -> tuple[int, list[str], list[str]]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout.splitlines(), result.stderr.splitlines()


def test_validate_names_the_date_format_and_writes_the_rejected_rows(small_area: Path) -> None:
    _rewrite(small_area, "date", _day_first)
    code, _, err = _invoke("validate", small_area)
    assert code == 2
    (line,) = err
    written = small_area.parent / "config.rejected_incidents.csv"
    first = pd.read_csv(small_area.parent / "incidents.csv", dtype=str)["date"].iloc[0]
    assert line == (
        f"hwc-risk: error: {small_area.parent / 'incidents.csv'}: 0 usable incidents; at least "
        f"10 are needed; 160 of 160 rows rejected: bad_date 160, e.g. line 2 '{first}' does "
        "not match ISO 8601 (YYYY-MM-DD); set incidents.date_format, e.g. '%d/%m/%Y'; "
        f"the rejected rows are in {written}"
    )
    rows = pd.read_csv(written, dtype=str, keep_default_na=False)
    assert list(rows.columns) == [
        "source_file",
        "source_row",
        "id",
        "date",
        "lon",
        "lat",
        "species",
        "kind",
        "reason",
        "detail",
    ]
    assert rows["source_row"].astype(int).tolist() == list(range(2, 162))
    assert set(rows["reason"]) == {"bad_date"}


def test_a_failed_run_says_how_to_get_the_rejected_rows(small_area: Path) -> None:
    _rewrite(small_area, "date", _day_first)
    code, out, err = _invoke("run", small_area, "--quiet")
    assert code == 2 and out == []
    (line,) = err
    assert "160 of 160 rows rejected: bad_date 160, e.g. line 2 " in line
    assert line.endswith(
        f"run `hwc-risk validate {small_area}` to write the rejected rows to "
        f"{small_area.parent / 'config.rejected_incidents.csv'}"
    )
    # nothing half-written: no run folder, and the run itself wrote no rejected rows
    out_dir = small_area.parent / "out" / "synthetic"
    assert not out_dir.exists() or all(p.name.endswith(".lock") for p in out_dir.iterdir())
    assert not (small_area.parent / "config.rejected_incidents.csv").exists()
    # following the advice gives the file
    assert _invoke("validate", small_area)[0] == 2
    assert (small_area.parent / "config.rejected_incidents.csv").exists()


def _swap_most(df: pd.DataFrame) -> pd.DataFrame:
    swap = df.index >= 60  # 100 of 160 rows
    df.loc[swap, ["lon", "lat"]] = df.loc[swap, ["lat", "lon"]].to_numpy()
    return df


@pytest.mark.slow
def test_most_rows_rejected_is_a_warning_in_validate_and_run(small_area: Path) -> None:
    path = small_area.parent / "incidents.csv"
    _swap_most(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    code, out, _ = _invoke("validate", small_area)
    assert code == 0
    (warning,) = [line for line in out if line.startswith("warning:")]
    assert warning.startswith(
        "warning: most incident rows were rejected: 100 of 160 rows rejected: "
        "outside_study_area 100, e.g. line 62 ("
    )
    assert warning.endswith(
        "100 would fall inside the area with latitude and longitude swapped; "
        "check incidents.x and incidents.y"
    )
    written = small_area.parent / "config.rejected_incidents.csv"
    assert f"rejected rows written to {written}" in out
    assert len(pd.read_csv(written)) == 100

    code, out, err = _invoke("run", small_area, "--quiet", "--month", "2024-08")
    assert code == 0, err
    (line,) = err  # --quiet: only the warning
    assert "most incident rows were rejected: 100 of 160 rows rejected" in line
    assert line.endswith("the run folder's rejected_incidents.csv lists them")
    run_dir = Path(out[0])
    log = [json.loads(x) for x in (run_dir / "run.log.jsonl").read_text().splitlines()]
    assert any("most incident rows were rejected" in rec.get("message", "") for rec in log)
    assert len(pd.read_csv(run_dir / "rejected_incidents.csv")) == 100
