from pathlib import Path

import pytest

from hwc_risk.config import load_config
from hwc_risk.errors import ConfigError, MissingFileError
from tests.conftest import REPO

MINIMAL = """
name: demo
incidents: {path: data/incidents.csv, x: lon, y: lat, crs: "EPSG:4326"}
covariates:
  land_use: {path: data/lu.tif, type: categorical}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_sample_config_loads_with_absolute_existing_paths() -> None:
    cfg = load_config(REPO / "pipelines" / "sample.yaml")
    assert cfg.name == "sample-district"
    assert cfg.incidents.path.is_absolute() and cfg.incidents.path.exists()
    for cov in cfg.covariates.values():
        assert cov.path.is_absolute() and cov.path.exists()
    assert list(cfg.covariates) == ["land_use", "population", "connectivity", "greenness"]
    assert cfg.covariates["greenness"].source_kind == "cube"
    assert cfg.features.season and cfg.forecast.horizon == 1
    assert cfg.covariates["land_use"].classes == {
        1: "forest",
        2: "grassland",
        3: "cropland",
        4: "settlement",
        5: "water",
    }


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.incidents.path == tmp_path / "data" / "incidents.csv"
    assert cfg.covariates["land_use"].path == tmp_path / "data" / "lu.tif"
    assert cfg.output_dir == tmp_path / "out"  # the default is resolved too
    assert cfg.model == "auto"
    assert cfg.covariates["land_use"].band == 1


def test_template_config_is_valid() -> None:
    cfg = load_config(REPO / "pipelines" / "template.yaml")
    assert cfg.grid.crs is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "modle: gbm\n", "unknown key 'modle'"),
        (
            MINIMAL.replace('crs: "EPSG:4326"', 'crs: "EPSG:4326", dat: d'),
            "unknown key 'incidents.dat'",
        ),
        (
            MINIMAL.replace("type: categorical", "type: categorical, bnad: 2"),
            "unknown key 'covariates.land_use.bnad'",
        ),
        (
            MINIMAL.replace("type: categorical", "type: categorical, band: 0"),
            "covariates.land_use.band",
        ),
        (MINIMAL.replace("type: categorical", "type: ordinal"), "covariates.land_use.type"),
        (MINIMAL.replace("name: demo", "name: 'bad name/'"), "'name'"),
        (MINIMAL.replace("x: lon, ", ""), "give both 'x' and 'y'"),
        (
            "name: demo\ncovariates: {a: {path: a.tif, type: continuous}}\n",
            "key 'incidents' is missing",
        ),
        (MINIMAL + "grid: {extent: [10, 0, 0, 10]}\n", "xmin < xmax"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\nincidents: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
