"""Monthly operations: killed runs, idempotent reruns, month-over-month, runs, validate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from hwc_risk.export.report import sha256
from hwc_risk.runfolder import RunFolders
from tests.conftest import HWC_RISK, cli, run_cli


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.iterdir())}


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.mark.slow  # runs the small area
def test_sigkill_at_any_moment_leaves_earlier_runs_intact(small_area: Path) -> None:
    start = time.perf_counter()
    first = run_cli("run", small_area, "--month", "2025-04", "-q")
    duration = time.perf_counter() - start
    assert first.returncode == 0, first.stderr
    run_dir = Path(first.stdout.strip())
    before = snapshot(run_dir)
    name_dir = run_dir.parent
    # kill real reruns of the same month at different moments of a run: while
    # reading, building features, validating, writing outputs
    killed = 0
    for share in (0.1, 0.3, 0.5, 0.7, 0.85):
        delay = share * duration
        proc = subprocess.Popen(
            [str(HWC_RISK), "run", str(small_area), "--month", "2025-04", "--force", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert visible(name_dir) == ["2025-04"]
        now = snapshot(run_dir)
        if proc.returncode != 0:
            killed += 1
        if now != before:
            # only a rerun that got its month into place may change it (it finished, or
            # was killed after the final move): then the folder is that complete run
            manifest = json.loads((run_dir / "manifest.json").read_text())
            assert manifest["status"] == "complete"
            for record in manifest["outputs"]:
                assert now[record["path"]] == record["sha256"], record["path"]
            before = now
    assert killed >= 3  # most reruns were killed part-way
    # the next run cleans up what the killed ones left and completes
    again = run_cli("run", small_area, "--month", "2025-04", "--force", "-q")
    assert again.returncode == 0, again.stderr
    leftovers = [p.name for p in name_dir.iterdir() if ".staging-" in p.name or ".old-" in p.name]
    assert leftovers == []
    assert visible(name_dir) == ["2025-04"]


def test_interrupted_replacement_is_restored(tmp_path: Path) -> None:
    folders = RunFolders(tmp_path / "area")
    # a run died between moving the old month aside and moving the new one in
    aside = folders.root / ".2025-04.old-abc123"
    (aside / "2025-04").mkdir(parents=True)
    (aside / "2025-04" / "risk.tif").write_bytes(b"earlier run")
    (aside / ".pid").write_text("999999999")  # no such process
    stale = folders.root / ".2025-05.staging-xyz"
    stale.mkdir()
    (stale / ".pid").write_text("999999999")
    notes = folders.recover()
    assert (folders.root / "2025-04" / "risk.tif").read_bytes() == b"earlier run"
    assert not aside.exists() and not stale.exists()
    assert len(notes) == 2
    # a staging folder of a live run is left alone
    live = folders.root / ".2025-06.staging-live"
    live.mkdir()
    (live / ".pid").write_text(str(os.getppid()))
    folders.recover()
    assert live.exists()


@pytest.mark.slow  # runs the small area
def test_reruns_are_identical_and_skipped_when_nothing_changed(small_area: Path) -> None:
    first = run_cli("run", small_area, "--month", "2025-04", "-q")
    assert first.returncode == 0, first.stderr
    run_dir = Path(first.stdout.strip())
    with rasterio.open(run_dir / "risk.tif") as ds:
        risk_first = ds.read(1)
    manifest_first = json.loads((run_dir / "manifest.json").read_text())

    skipped = run_cli("run", small_area, "--month", "2025-04")
    assert skipped.returncode == 0
    assert "nothing changed" in skipped.stderr
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest_first

    forced = run_cli("run", small_area, "--month", "2025-04", "--force", "-q")
    assert forced.returncode == 0, forced.stderr
    with rasterio.open(run_dir / "risk.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), risk_first)  # same seed, same surface
    manifest_forced = json.loads((run_dir / "manifest.json").read_text())
    assert manifest_forced["fingerprint"] == manifest_first["fingerprint"]
    assert manifest_forced["finished"] >= manifest_first["finished"]

    # a changed input is noticed
    incidents = small_area.parent / "incidents.csv"
    incidents.write_text(incidents.read_text() + "late,2025-01-15,14.55,46.9,wolf,x\n")
    changed = run_cli("run", small_area, "--month", "2025-04")
    assert changed.returncode == 0
    assert "nothing changed" not in changed.stderr
    assert (
        json.loads((run_dir / "manifest.json").read_text())["fingerprint"]
        != (manifest_first["fingerprint"])
    )


@pytest.mark.slow  # runs the small area
def test_month_over_month_change(small_area: Path) -> None:
    assert run_cli("run", small_area, "--month", "2025-02", "-q").returncode == 0
    proc = run_cli("run", small_area, "--month", "2025-03", "-q")
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip())
    change = json.loads((run_dir / "manifest.json").read_text())["change_since_previous"]
    assert change["previous"] == "2025-02"
    assert change["cells_compared"] > 0
    assert change["summary"].startswith("Since 2025-02:")
    with (
        rasterio.open(run_dir / "risk_change.tif") as ds,
        rasterio.open(run_dir / "risk.tif") as now,
        rasterio.open(run_dir.parent / "2025-02" / "risk.tif") as before,
    ):
        np.testing.assert_allclose(ds.read(1), now.read(1) - before.read(1), atol=1e-6)
        assert ds.tags()["previous_month"] == "2025-02"
    assert "Since 2025-02:" in (run_dir / "map.html").read_text()
    log_lines = (run_dir / "run.log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in log_lines]
    assert records and all({"time", "level", "message"} <= set(r) for r in records)
    assert any("run complete" in r["message"] for r in records)

    listing = run_cli("runs", small_area.parent / "out")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "month", "status"]
    assert any("2025-02" in line and "complete" in line for line in lines)
    assert any("2025-03" in line and "complete" in line for line in lines)
    as_json = json.loads(run_cli("runs", small_area.parent / "out", "--json").stdout)
    assert [r["month"] for r in as_json] == ["2025-02", "2025-03"]
    assert all(r["read"] == 160 for r in as_json)


def test_validate_reports_what_a_run_would_use(small_area: Path) -> None:
    proc = cli("validate", small_area, "--month", "2025-03")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "is valid" in out and "EPSG:32633" in out
    assert "incidents: 160 read" in out and "month: 2025-03" in out
    assert not (small_area.parent / "out").exists()  # nothing written


@pytest.mark.slow  # runs the small area
def test_a_second_run_of_the_same_month_waits_its_turn(small_area: Path) -> None:
    folders = RunFolders(small_area.parent / "out" / "synthetic")
    with folders.lock("2025-03"):
        proc = run_cli("run", small_area, "--month", "2025-03")
    assert proc.returncode == 2
    assert "another run of this month is in progress" in proc.stderr


@pytest.mark.slow  # runs the small area
@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_runs_print_only_the_folder(small_area: Path, flag: str) -> None:
    proc = run_cli("run", small_area, "--month", "2025-03", flag)
    assert proc.returncode == 0
    assert proc.stderr.strip() == ""
    assert Path(proc.stdout.strip()).is_dir()
