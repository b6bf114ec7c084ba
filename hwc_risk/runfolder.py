"""Run folders that a scheduler can trust: staging, atomic moves, locks, fingerprints.

A run builds ``<output_dir>/<name>/.<YYYY-MM>.staging-XXXX/`` and renames it
to ``<YYYY-MM>/`` only when every file is written, so a run killed at any
moment (SIGKILL included) leaves earlier runs untouched and no half-written
file where a user looks. Replacing an earlier run of the same month takes two
renames (the old folder aside, the new one in); if a run dies between them,
the next run puts the old folder back before it starts. Leftover staging
folders of dead runs are removed. A lock file stops two runs of the same
name and month from writing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError
from .export.report import sha256

__all__ = [
    "RunFolders",
    "fingerprint",
    "list_runs",
    "read_manifest",
]

PID_FILE = ".pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and _alive(pid)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def fingerprint(
    config_dump: dict[str, Any], month: str, inputs: list[Path], options: dict[str, Any]
) -> str:
    """A hash of everything that decides a run's outputs.

    The config (as parsed), the month, the content of every input file, the
    run options and the hwc-risk version. Equal fingerprints mean a rerun
    would write the same files.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(config_dump, sort_keys=True, default=str).encode())
    digest.update(month.encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    digest.update(__version__.encode())
    for path in inputs:
        digest.update(str(path.name).encode())
        digest.update(sha256(path).encode())
    return digest.hexdigest()


@dataclass
class RunFolders:
    """The folder of one run name: ``<output_dir>/<name>``."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self, label: str) -> Iterator[None]:
        """Hold the lock of one month; another holder makes this an input error."""
        path = self.root / f".{label}.lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                other = fh.read().strip() or "?"
                raise InputError(
                    f"{self.root / label}: another run of this month is in progress "
                    f"(pid {other}); wait for it to finish"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def recover(self) -> list[str]:
        """Undo what dead runs left: restore a month set aside, remove stale staging."""
        notes = []
        for folder in sorted(self.root.glob(".*.old-*")):
            if _owner_alive(folder):
                continue
            label = folder.name[1:].split(".old-")[0]
            kept = folder / label
            final = self.root / label
            if kept.is_dir() and not final.exists():
                kept.rename(final)
                notes.append(f"restored {final.name} after an interrupted replacement")
            shutil.rmtree(folder, ignore_errors=True)
        for folder in sorted(self.root.glob(".*.staging-*")):
            if not _owner_alive(folder):
                shutil.rmtree(folder, ignore_errors=True)
                notes.append(f"removed {folder.name} left by an interrupted run")
        return notes

    def staging(self, label: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f".{label}.staging-", dir=self.root))
        (folder / PID_FILE).write_text(str(os.getpid()))
        return folder

    def commit(self, staging: Path, label: str) -> Path:
        """Move a complete staging folder into place as ``<label>``."""
        (staging / PID_FILE).unlink(missing_ok=True)
        os.chmod(staging, 0o755)
        final = self.root / label
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{label}.old-", dir=self.root))
            (old / PID_FILE).write_text(str(os.getpid()))
            final.rename(old / label)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(final)
        return final

    def months(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def previous(self, label: str) -> Path | None:
        """The latest complete run of an earlier month."""
        for month in reversed(self.months()):
            if (
                month < label
                and (read_manifest(self.root / month) or {}).get("status") == "complete"
            ):
                return self.root / month
        return None


def list_runs(output_dir: Path) -> list[dict[str, Any]]:
    """Every run folder under ``output_dir`` with its key facts, by name and month."""
    rows = []
    if not output_dir.is_dir():
        raise InputError(f"{output_dir}: no such folder; give the output_dir of your runs")
    for name_dir in sorted(p for p in output_dir.iterdir() if p.is_dir()):
        for run_dir in sorted(
            p for p in name_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            manifest = read_manifest(run_dir)
            if manifest is None:
                rows.append({"name": name_dir.name, "month": run_dir.name, "status": "no manifest"})
                continue
            inc = manifest.get("incidents", {})
            metrics = manifest.get("metrics", {})
            temporal = metrics.get("temporal_holdout_model") or {}
            row: dict[str, Any] = {
                "name": manifest.get("name", name_dir.name),
                "month": manifest.get("month", run_dir.name),
                "status": manifest.get("status", "?"),
                "finished": manifest.get("finished", ""),
                "model": (manifest.get("model") or {}).get("recipe", ""),
                "capture_10": temporal.get("capture_rate_10"),
                "best_baseline_capture_10": metrics.get("best_baseline_capture_10"),
                "read": inc.get("read"),
                "used": inc.get("used"),
                "rejected": inc.get("rejected"),
                "duplicates": inc.get("duplicates_merged"),
            }
            rows.append(row)
    return rows
