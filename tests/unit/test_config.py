from pathlib import Path

import pytest

from hwc_risk.config import load_config
from hwc_risk.errors import ConfigError, MissingFileError
from hwc_risk.scenarios.config import SetClassEdit
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


SCENARIOS = """
scenarios:
  - name: farms
    edits:
      - {kind: set_class, covariate: land_use, path: farms.gpkg, class: cropland}
  - name: fence
    edits:
      - {kind: set_class, covariate: land_use, path: fence.gpkg, class: 4}
"""
NAMED = MINIMAL.replace(
    "type: categorical}", "type: categorical, classes: {1: forest, 3: cropland, 4: settlement}}"
)


def test_scenarios_in_the_pipeline_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, NAMED + SCENARIOS))
    assert [s.name for s in cfg.scenarios] == ["farms", "fence"]
    farms = cfg.scenarios[0].edits[0]
    assert farms.path == tmp_path / "farms.gpkg"  # relative to the config
    assert isinstance(farms, SetClassEdit) and farms.class_ == 3  # the name made a code
    assert cfg.outputs.bulletin and cfg.outputs.bulletin_paper == "A4"
    assert load_config(write(tmp_path, MINIMAL)).scenarios == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            NAMED + SCENARIOS.replace("name: fence", "name: farms"),
            "key 'scenarios': scenario names must differ; 'farms' is used twice",
        ),
        (
            NAMED + SCENARIOS.replace("class: cropland", "class: cropland, widht: 3"),
            "unknown key 'scenarios.0.edits.0.widht'",  # the edit's kind is not in the key
        ),
        (
            NAMED + SCENARIOS.replace("kind: set_class,", "kind: paint,", 1),
            "key 'scenarios.0.edits.0.kind' must be one of set_class, burn_lines",
        ),
        (
            NAMED + SCENARIOS.replace("class: cropland", "class: orchard"),
            "scenarios.0.edits.0 (farms, set_class): class 'orchard' is not a class name",
        ),
        (
            NAMED + SCENARIOS + "      - {kind: resistance, path: f.gpkg, barrier: true}\n",
            "scenarios.1.edits.1 (fence, resistance): a resistance edit needs a connectivity:",
        ),
        (
            NAMED + SCENARIOS.replace("land_use, path: fence", "pop, path: f"),
            "covariate 'pop' is not under covariates",
        ),
        (MINIMAL + "outputs: {bulletin_paper: A5}\n", "outputs.bulletin_paper"),
    ],
)
def test_scenario_config_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_the_templates_commented_scenarios_are_valid(tmp_path: Path) -> None:
    """Uncommented, the template's connectivity and scenarios blocks load."""
    text = (REPO / "pipelines" / "template.yaml").read_text()
    out, inside = [], False
    for line in text.splitlines():
        inside = line.startswith(("# connectivity:", "# scenarios:")) or (
            inside and line.startswith("#")
        )
        out.append(line[2:] if inside and not line.startswith("#   #") else line)
    data = "\n".join(out).replace("../sample_data/", f"{REPO / 'sample_data'}/")
    cfg = load_config(write(tmp_path, data))
    assert cfg.connectivity is not None
    assert [s.name for s in cfg.scenarios] == ["planned-road", "farm-expansion"]
    assert [e.kind for e in cfg.scenarios[0].edits] == ["burn_lines", "resistance"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("incidents:", "incidnets:", "unknown key 'incidnets'; did you mean 'incidents'?"),
        ("name: demo", "nmae: demo", "unknown key 'nmae'; did you mean 'name'?"),
        ("x: lon", "X: lon", "unknown key 'incidents.X'; did you mean 'incidents.x'?"),
        (
            "type: categorical",
            "type: categorical, bnad: 2",
            "unknown key 'covariates.land_use.bnad'; did you mean 'covariates.land_use.band'?",
        ),
    ],
)
def test_a_typo_names_the_key_it_should_be(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    # one problem: the missing required key is the typo, not a second problem
    assert str(info.value) == f"{path}: {expected}"


def test_an_unknown_key_unlike_any_lists_the_keys_of_its_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "grid: {resolution: 100, zzz: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: unknown key 'grid.zzz'; remove it or use one of: crs, resolution, extent"
    )


def test_every_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    text = """
name: demo
incidnets: {path: data/incidents.csv}
covariates:
  land_use: {path: data/lu.tif, type: ordinal}
  elevation: {type: continuous}
seed: abc
grid: {resolution: ten}
outputs: {generalise_incidents: [1]}
validation: {folds: 5, foldz: 3}
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    first, *problems = str(info.value).splitlines()
    assert first == f"{path}: 7 problems in the config:"
    assert all(line.startswith("  ") for line in problems)
    assert [p.strip() for p in problems] == [
        "unknown key 'validation.foldz'; did you mean 'validation.folds'?",
        "unknown key 'incidnets'; did you mean 'incidents'?",
        "key 'grid.resolution': Input should be a valid number, unable to parse string as a "
        "number (got 'ten')",
        "key 'covariates.land_use.type': Input should be 'categorical' or 'continuous' "
        "(got 'ordinal')",
        "key 'covariates.elevation.path' is missing; add it (see pipelines/template.yaml)",
        "key 'outputs.generalise_incidents': Input should be a valid number or a valid string",
        "key 'seed': Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc')",
    ]


def test_the_command_line_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hwc_risk.cli import app

    path = write(tmp_path, MINIMAL.replace("incidents:", "incidnets:") + "seed: abc\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"hwc-risk: error: {path}: 2 problems in the config:",
        "  unknown key 'incidnets'; did you mean 'incidents'?",
        "  key 'seed': Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc')",
    ]
