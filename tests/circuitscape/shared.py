"""Where the shared verification cases are: an environment variable, or beside the repo.

The cases (Circuitscape's and Omniscape's own test suites, with their expected
outputs) live in ``shared/`` beside the repository. Without them the tests that
need them are skipped locally; under ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO


def shared_folder(env: str, name: str) -> Path:
    """``$env`` if set, else ``shared/<name>`` beside the repository."""
    return Path(os.environ.get(env, REPO.parent / "shared" / name))


def case_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def need(folder: Path, cases: list[str]) -> None:
    """Skip (locally) or fail (under CI) when the cases are missing."""
    if not cases:
        message = f"verification cases not found at {folder}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def stem(name: str) -> str:
    for suffix in (".gz", ".asc", ".tif", ".txt"):
        name = name.removesuffix(suffix)
    return name


def locate(case: Path, value: str) -> Path | None:
    """The case's own copy of a file an .ini names (by name, else by stem)."""
    name = Path(value).name
    if (case / name).exists():
        return case / name
    for p in sorted(case.iterdir()):
        if not p.name.startswith("expected_") and stem(p.name) == stem(name):
            return p
    return None


def mapped_ini(
    ini: Path,
    case: Path,
    keys: set[str],
    outputs: dict[str, Path],
    overrides: dict[str, str] | None = None,
) -> str:
    """The .ini's text with the paths of ``keys`` mapped onto the case folder.

    ``outputs`` maps keys to the path to write instead (e.g. ``output_file``);
    a path the case has no file for is left as it is (an option left off).
    """
    overrides = overrides or {}

    def repl(m: re.Match[str]) -> str:
        key, value = m.group(1), m.group(2).strip()
        if key in overrides:
            return f"{key} = {overrides[key]}"
        if key in outputs:
            return f"{key} = {outputs[key]}"
        if key in keys and not value.startswith("(") and value.lower() != "none":
            found = locate(case, value)
            if found is not None:
                return f"{key} = {found}"
        return m.group(0)

    return re.sub(r"^(\w+)\s*=\s*(.*)$", repl, ini.read_text(), flags=re.M)
