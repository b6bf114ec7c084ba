"""A pip-installed hwc-risk makes offline maps: the wheel carries Leaflet.

The wheel is built from this checkout as pip builds it (``pip wheel``: the
build hook ``hatch_build.py`` installs Leaflet from the npm registry into the
wheel) and installed into a fresh virtual environment outside the repository.
Only the package comes from the wheel: its dependencies are taken from the
development environment (a ``.pth`` file), which saves downloading them again
and cannot supply Leaflet (it is nowhere in site-packages). The run then
makes an offline map with the network blocked (a network namespace without
interfaces, ``unshare -rn``, where the kernel allows it; else a guard that
refuses every internet socket), and headless Chromium opens the map with every
outside request refused: it must make none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

from hwc_risk.synthetic import SyntheticArea
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# refuses internet sockets in every Python process of the fresh environment
SOCKET_GUARD = """
import socket

_connect = socket.socket.connect

def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError("network blocked by the hwc-risk wheel test")
    return _connect(self, address)

socket.socket.connect = _refuse
"""


def _network_namespace() -> list[str]:
    """``unshare -rn`` where the kernel allows an unprivileged network namespace."""
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["unshare", "-rn"] if ok.returncode == 0 else []


def _fresh_env(folder: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed by its own pip; returns its bin."""
    venv.EnvBuilder(with_pip=True).create(folder)
    scripts = folder / "bin"
    subprocess.run(
        [scripts / "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [scripts / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "hwc_risk_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (Path(site) / "sitecustomize.py").write_text(SOCKET_GUARD)
    return scripts


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(dist), "-q"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = dist.glob("hwc_risk-*.whl")
    return _fresh_env(tmp_path_factory.mktemp("fresh-venv"), wheel)


def test_the_wheel_carries_leaflet_with_its_licences(installed: Path) -> None:
    code = (
        "import hwc_risk, hwc_risk.export.offline as o; "
        "print(hwc_risk.__file__); print(o.find_web_assets())"
    )
    env = {k: v for k, v in os.environ.items() if k != "HWC_RISK_WEB_ASSETS"}
    out = subprocess.run(
        [installed / "python", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed,
        env=env,
    ).stdout.split()
    package = Path(out[0]).parent
    assert REPO not in package.parents  # the installed copy, not the checkout
    assert Path(out[1]) == package / "_web" / "node_modules"
    for name in ("leaflet/LICENSE", "leaflet.markercluster/MIT-LICENCE.txt"):
        assert (package / "_web" / "node_modules" / name).is_file()


def test_an_installed_package_makes_an_offline_map_without_network(
    installed: Path, tmp_path: Path, open_map: Any
) -> None:
    config = SyntheticArea(size=48, cell_size=250.0, seed=5).write(
        tmp_path / "area",
        n_incidents=160,
        n_months=16,
        model="glm",
        extra_config={"background": {"n_points": 1500}, "validation": {"folds": 3}},
    )
    env = {k: v for k, v in os.environ.items() if k != "HWC_RISK_WEB_ASSETS"}
    proc = subprocess.run(
        [*_network_namespace(), installed / "hwc-risk", "run", config, "--offline", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page_path = Path(proc.stdout.strip()) / "map.html"
    source = page_path.read_text()
    assert not re.search(r"<(script|link|img)[^>]*(src|href)=\"https?://", source)
    assert "Leaflet 1.9.3, a JS library" in source  # Leaflet itself, from the wheel
    opened = open_map(page_path, network=False)
    opened.page.wait_for_selector(".leaflet-image-layer")
    opened.page.wait_for_timeout(500)
    assert opened.refused == []  # not a single request left the page
    assert opened.page_errors == [] and opened.console_errors == []
    assert opened.page.locator(".leaflet-control-layers").count() == 1
