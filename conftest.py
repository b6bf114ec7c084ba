"""Set-up for the library's docstring examples (pytest ``--doctest-modules``, pyproject.toml).

The examples run as a reader would type them in the repository's root folder
(``load_config("pipelines/sample.yaml")``), and may write into ``tmp_path``, a
fresh folder. The tests' own fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
LIBRARY = REPO / "hwc_risk"


@pytest.fixture(autouse=True)
def _docstring_examples(request: pytest.FixtureRequest) -> None:
    if LIBRARY not in request.node.path.parents:
        return  # a test in tests/, not a docstring example
    namespace = request.getfixturevalue("doctest_namespace")
    namespace["tmp_path"] = request.getfixturevalue("tmp_path")
    request.getfixturevalue("monkeypatch").chdir(REPO)
