"""Build hook: the wheel carries the Leaflet copies that offline maps inline.

``hwc-risk run --offline`` inlines Leaflet and its plugins into ``map.html``.
A source checkout gets them with ``make web-assets``; an installed package
gets them from its wheel, which this hook fills: it installs the packages
pinned in ``web/package.json`` from the npm registry into ``build/web-assets``
(reused while ``web/package.json`` is unchanged) and adds the files offline
maps use (``hwc_risk/export/web_assets.json``), the images their stylesheets
point to, and each package's licence and ``package.json`` to the wheel under
``hwc_risk/_web/node_modules``. Nothing of it is committed to the repository.

Building a wheel needs npm, or ``HWC_RISK_WEB_ASSETS`` set to a ``node_modules``
folder holding those packages at the pinned versions (an air-gapped build).
Editable installs (``make demo``) are left alone: they use ``web/node_modules``.

This file runs inside hatchling's isolated build environment, with the
standard library only: it cannot import hwc_risk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TARGET = "hwc_risk/_web/node_modules"
_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|https?:|#)([^'\")]+)\1\)")


class WebAssetsError(RuntimeError):
    """The Leaflet copies for offline maps could not be put in the wheel."""


class WebAssetsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        pinned = json.loads((root / "web" / "package.json").read_text())["dependencies"]
        try:
            modules = _node_modules(root, pinned)
            files = _files(root, modules, pinned)
        except WebAssetsError as exc:  # one clear line in pip's output, not a traceback
            raise SystemExit(f"hwc-risk build error: {exc}") from None
        for rel in files:
            build_data["force_include"][str(modules / rel)] = f"{TARGET}/{rel}"


def _node_modules(root: Path, pinned: dict[str, str]) -> Path:
    """A node_modules folder with the pinned packages: given, cached, or installed now."""
    given = os.environ.get("HWC_RISK_WEB_ASSETS")
    if given:
        modules = Path(given)
        _check_versions(modules, pinned, f"HWC_RISK_WEB_ASSETS={given}")
        return modules
    folder = root / "build" / "web-assets"
    modules = folder / "node_modules"
    package = (root / "web" / "package.json").read_text()
    stamp = folder / "package.json"
    if not (stamp.is_file() and stamp.read_text() == package and _has(modules, pinned)):
        _npm_install(folder, package)
    _check_versions(modules, pinned, str(modules))
    return modules


def _npm_install(folder: Path, package: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise WebAssetsError(
            "building the hwc-risk wheel needs npm, to put Leaflet (web/package.json) in the "
            "wheel for offline maps: install npm (Debian: apt-get install npm), or set "
            "HWC_RISK_WEB_ASSETS to a node_modules folder with those packages"
        )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(package)
    command = [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--omit=dev"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        (folder / "package.json").unlink()  # no stamp: the next build tries again
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise WebAssetsError(
            f"`npm install` of web/package.json failed ({tail}); the hwc-risk wheel needs "
            "Leaflet from the npm registry for offline maps: check the network or the npm "
            "registry settings, or set HWC_RISK_WEB_ASSETS to a node_modules folder"
        )


def _has(modules: Path, pinned: dict[str, str]) -> bool:
    return all((modules / name / "package.json").is_file() for name in pinned)


def _check_versions(modules: Path, pinned: dict[str, str], where: str) -> None:
    for name, version in pinned.items():
        meta = modules / name / "package.json"
        found = json.loads(meta.read_text()).get("version") if meta.is_file() else None
        if found != version:
            raise WebAssetsError(
                f"{where}: npm package {name} is {found or 'missing'}, web/package.json pins "
                f"{version}; install the pinned versions (npm install in web/)"
            )


def _files(root: Path, modules: Path, pinned: dict[str, str]) -> list[str]:
    """Paths under node_modules the wheel needs: assets, their images, licences, metadata."""
    table = json.loads((root / "hwc_risk" / "export" / "web_assets.json").read_text())
    files = set(table.values())
    for rel in list(files):
        if rel.endswith(".css"):
            css = modules / rel
            for match in _CSS_URL.finditer(css.read_text(encoding="utf-8")):
                target = (css.parent / match.group(2)).resolve()
                if target.is_file():
                    files.add(target.relative_to(modules.resolve()).as_posix())
    for name in pinned:
        files.add(f"{name}/package.json")
        files.update(  # LICENSE, MIT-LICENCE.txt, ...
            p.relative_to(modules).as_posix()
            for p in (modules / name).iterdir()
            if "LICEN" in p.name.upper() and p.is_file()
        )
    missing = sorted(rel for rel in files if not (modules / rel).is_file())
    if missing:
        raise WebAssetsError(f"{modules}: missing {', '.join(missing)}; reinstall web/package.json")
    return sorted(files)
