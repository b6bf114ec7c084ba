"""Where offline maps find Leaflet: HWC_RISK_WEB_ASSETS overrides the installed copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hwc_risk.errors import InputError
from hwc_risk.export import offline


def _copy_assets(source: Path, dest: Path) -> Path:
    for rel in set(offline.ASSETS.values()):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / rel, dest / rel)
    return dest


def test_the_override_wins_over_the_installed_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = offline.find_web_assets()
    if found is None:
        pytest.skip("needs the Leaflet copies (make web-assets)")
    mine = _copy_assets(found, tmp_path / "node_modules")
    monkeypatch.setenv("HWC_RISK_WEB_ASSETS", str(mine))
    assert offline.require_web_assets() == mine


def test_an_incomplete_override_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "leaflet" / "dist").mkdir(parents=True)
    monkeypatch.setenv("HWC_RISK_WEB_ASSETS", str(tmp_path))
    assert offline.find_web_assets() is None  # no silent fall back to another copy
    with pytest.raises(InputError, match=r"HWC_RISK_WEB_ASSETS=.*leaflet/dist/leaflet.js"):
        offline.require_web_assets()
