"""The scenario file: edits a planner drew, typed at the edge.

A scenario file (``SCENARIO.yaml``) holds a ``scenarios:`` list, or one
scenario as a mapping; the pipeline config may hold the same ``scenarios:``
list. Paths are relative to the file that names them. Every model has
``extra="forbid"``, so a misspelt key is an error, never a silent default.

.. code-block:: yaml

    scenarios:
      - name: planned-road
        description: A tarmac road across the forest corridor
        edits:
          - {kind: burn_lines, covariate: land_use, path: road.gpkg, width: 30, value: settlement}
          - {kind: resistance, path: road.gpkg, width: 30, value: 500}
      - name: farm-expansion
        edits:
          - {kind: set_class, covariate: land_use, path: farms.gpkg, class: cropland}
          - {kind: adjust, covariate: population, path: farms.gpkg, add: 40}

Edits of one scenario apply in the order given. ``replace`` swaps a whole
covariate for another raster (aligned onto the grid as covariates are), so it
must come first among the edits of its covariate.

This module imports nothing else of hwc-risk but :mod:`hwc_risk.errors`, so
that :mod:`hwc_risk.config` can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import ConfigError

__all__ = [
    "EDIT_KINDS",
    "AdjustEdit",
    "BurnLinesEdit",
    "Edit",
    "ReplaceEdit",
    "ResistanceEdit",
    "ScenarioConfig",
    "ScenarioFile",
    "SetClassEdit",
    "check_scenarios",
    "load_scenarios",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
#: The edit kinds (the discriminator pydantic puts in error locations).
EDIT_KINDS = ("set_class", "burn_lines", "adjust", "replace", "resistance")


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """A path relative to the file that names it (``base_dir`` in the context)."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = (Path(base) / path).resolve()
    return path


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _GeometryEdit(_Model):
    """An edit whose cells come from a vector layer (a GeoPackage drawn in QGIS)."""

    path: Path = Field(description="GeoPackage (or any OGR vector file) with the geometries.")
    layer: str | None = Field(None, description="Layer name; needed when the file has several.")
    description: str | None = None

    _resolve_path = field_validator("path")(_resolve)


class SetClassEdit(_GeometryEdit):
    """Set a categorical covariate to a class inside polygons (a farm block, a settlement)."""

    kind: Literal["set_class"]
    covariate: str
    class_: int | str = Field(alias="class", description="Class code or name, e.g. cropland.")


class BurnLinesEdit(_GeometryEdit):
    """Burn lines of a given width into a covariate (a road, a railway, a canal)."""

    kind: Literal["burn_lines"]
    covariate: str
    width: float = Field(gt=0, description="Width of the line on the ground, metres.")
    value: float | str = Field(
        description="The value burnt: a number, or a class code or name for a categorical one."
    )


class AdjustEdit(_GeometryEdit):
    """Scale or add to a continuous covariate inside polygons (population growth):
    ``value * multiply + add``."""

    kind: Literal["adjust"]
    covariate: str
    multiply: float = Field(1.0, ge=0)
    add: float = 0.0

    @model_validator(mode="after")
    def _changes_something(self) -> AdjustEdit:
        if self.multiply == 1.0 and self.add == 0.0:
            raise ValueError("give multiply (other than 1) or add (other than 0)")
        return self


class ReplaceEdit(_Model):
    """Replace a covariate by another raster (a land-use plan for 2030)."""

    kind: Literal["replace"]
    covariate: str
    raster: Path = Field(description="Any GDAL raster; aligned onto the grid like covariates.")
    band: int = Field(1, ge=1)
    nodata: float | None = None
    description: str | None = None

    _resolve_raster = field_validator("raster")(_resolve)


class ResistanceEdit(_GeometryEdit):
    """Change the connectivity resistance along lines or inside polygons.

    ``barrier: true`` makes the cells impassable (a fence); ``value`` sets the
    resistance (a crossing or a restored corridor: a low value); ``multiply``
    scales it. Lines need ``width``.
    """

    kind: Literal["resistance"]
    width: float | None = Field(None, gt=0, description="Width of lines, metres.")
    value: float | None = Field(None, gt=0)
    multiply: float | None = Field(None, gt=0)
    barrier: bool = False

    @model_validator(mode="after")
    def _one_change(self) -> ResistanceEdit:
        given = [self.value is not None, self.multiply is not None, self.barrier]
        if sum(given) != 1:
            raise ValueError("give exactly one of value, multiply or barrier: true")
        return self


Edit = Annotated[
    SetClassEdit | BurnLinesEdit | AdjustEdit | ReplaceEdit | ResistanceEdit,
    Field(discriminator="kind"),
]
CellEdit = SetClassEdit | BurnLinesEdit | AdjustEdit


class ScenarioConfig(_Model):
    """One scenario: a name (its folder under ``scenarios/``) and its edits, in order."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    edits: list[Edit] = Field(min_length=1)

    @model_validator(mode="after")
    def _replace_first(self) -> ScenarioConfig:
        seen: set[str] = set()
        for i, edit in enumerate(self.edits):
            if isinstance(edit, ReplaceEdit) and edit.covariate in seen:
                raise ValueError(
                    f"edits.{i}: replace of '{edit.covariate}' must be its first edit "
                    "(a replacement would undo the edits before it); move it up"
                )
            if not isinstance(edit, ResistanceEdit):
                seen.add(edit.covariate)
        return self

    @property
    def covariates(self) -> list[str]:
        """The covariates this scenario edits, in order of first edit."""
        out: list[str] = []
        for edit in self.edits:
            if not isinstance(edit, ResistanceEdit) and edit.covariate not in out:
                out.append(edit.covariate)
        return out

    @property
    def edits_resistance(self) -> bool:
        return any(isinstance(e, ResistanceEdit) for e in self.edits)

    def input_files(self) -> list[tuple[str, Path, str | None]]:
        """The files the edits read, as ``(key, path, layer)``: ``edits.M.path`` (a
        GeoPackage) or ``edits.M.raster`` (a replacement), in edit order."""
        out: list[tuple[str, Path, str | None]] = []
        for j, edit in enumerate(self.edits):
            if isinstance(edit, ReplaceEdit):
                out.append((f"edits.{j}.raster", edit.raster, None))
            else:
                out.append((f"edits.{j}.path", edit.path, edit.layer))
        return out


def distinct_names(scenarios: list[ScenarioConfig]) -> list[ScenarioConfig]:
    """Scenario names name folders: no two alike (a scenario file and the pipeline
    config's ``scenarios:`` both check it)."""
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"scenario names must differ; '{dup[0]}' is used twice")
    return scenarios


class ScenarioFile(_Model):
    """A scenario file: one or more scenarios with distinct names."""

    scenarios: list[ScenarioConfig] = Field(min_length=1)
    source: Path | None = Field(None, exclude=True)

    _distinct = field_validator("scenarios")(distinct_names)


def _format_error(path: Path, exc: ValidationError) -> str:
    """pydantic's first error as one line naming the key and the fix."""
    err = exc.errors()[0]
    parts = [str(p) for p in err["loc"] if p not in ("__root__",)]
    # the discriminated union puts the kind into the location: scenarios.0.edits.1.adjust.add
    loc = ".".join(p for p in parts if p not in EDIT_KINDS) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key '{loc}'; remove it or fix its spelling (see the README)"
    if kind == "missing":
        return f"{path}: key '{loc}' is missing; add it (see the README's scenarios section)"
    if kind == "union_tag_invalid":
        return f"{path}: key '{loc}.kind' must be one of {', '.join(EDIT_KINDS)}"
    if kind == "union_tag_not_found":
        return f"{path}: key '{loc}.kind' is missing; add kind: set_class, burn_lines, ..."
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: key '{loc}': {msg}"


def parse_scenarios(data: Any, source: Path, base_dir: Path) -> ScenarioFile:
    """Validate a scenario file's parsed YAML (a ``scenarios:`` list or one scenario)."""
    if isinstance(data, dict) and "scenarios" not in data and "edits" in data:
        data = {"scenarios": [data]}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'scenarios:' list")
    try:
        parsed = ScenarioFile.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None
    return parsed.model_copy(update={"source": source})


def load_scenarios(path: str | Path) -> ScenarioFile:
    """Read and validate a scenario file; paths become absolute.

    Raises
    ------
    MissingFileError
        The file does not exist.
    ConfigError
        The YAML does not parse or does not follow the schema.
    """
    from ..config import read_yaml  # hwc_risk.config imports this module

    path = Path(path)
    data = read_yaml(path, "scenario file")
    return parse_scenarios(data, path.resolve(), path.parent.resolve())


class CovariateLike(Protocol):
    """What :func:`check_scenarios` reads of a covariate's config."""

    @property
    def type(self) -> str: ...

    @property
    def classes(self) -> dict[int, str] | None: ...


def _class_code(value: int | float | str, names: dict[int, str] | None, where: str) -> int:
    """A class given by code or name, as a code."""
    if isinstance(value, str):
        for code, name in (names or {}).items():
            if name.lower() == value.strip().lower():
                return code
        known = ", ".join(f"{c} ({n})" for c, n in (names or {}).items()) or "none named"
        raise ConfigError(
            f"{where}: class '{value}' is not a class name of the covariate; use a code or "
            f"one of: {known}"
        )
    if float(value) != int(value):
        raise ConfigError(f"{where}: class {value} is not a whole number; give a class code")
    code = int(value)
    if names and code not in names:
        known = ", ".join(f"{c} ({n})" for c, n in names.items())
        raise ConfigError(
            f"{where}: class {code} is not one of the covariate's classes ({known}); a class "
            "the model never saw has no features"
        )
    return code


def _check_edit(
    edit: SetClassEdit | BurnLinesEdit | AdjustEdit | ReplaceEdit,
    cov: CovariateLike | None,
    where: str,
) -> SetClassEdit | BurnLinesEdit | AdjustEdit | ReplaceEdit:
    if cov is None:
        raise ConfigError(
            f"{where}: covariate '{edit.covariate}' is not under covariates in the pipeline "
            "config; use one of its covariate names"
        )
    if isinstance(edit, SetClassEdit | AdjustEdit) and cov.type != (
        "categorical" if isinstance(edit, SetClassEdit) else "continuous"
    ):
        need = "categorical" if isinstance(edit, SetClassEdit) else "continuous"
        raise ConfigError(
            f"{where}: {edit.kind} needs a {need} covariate, and '{edit.covariate}' is "
            f"{cov.type}; use {'adjust' if need == 'categorical' else 'set_class'} instead"
        )
    if isinstance(edit, SetClassEdit):
        return edit.model_copy(update={"class_": _class_code(edit.class_, cov.classes, where)})
    if isinstance(edit, BurnLinesEdit):
        if cov.type == "categorical":
            code = _class_code(edit.value, cov.classes, where)
            return edit.model_copy(update={"value": float(code)})
        if isinstance(edit.value, str):
            raise ConfigError(
                f"{where}: value '{edit.value}' is not a number; '{edit.covariate}' is continuous"
            )
    return edit


def check_scenarios(
    scenarios: ScenarioFile,
    covariates: Mapping[str, CovariateLike],
    has_connectivity: bool,
) -> ScenarioFile:
    """Check the scenarios against a pipeline config; class names become codes.

    Every edited covariate must be one of ``covariates``, of the right type
    (``set_class`` categorical, ``adjust`` continuous), and every class one the
    covariate has (when the config names its classes); ``resistance`` edits
    need a ``connectivity:`` section.

    Raises
    ------
    ConfigError
        Naming the scenario file, the key (``scenarios.N.edits.M``) and the fix.
    """
    source = scenarios.source or Path("scenarios")
    out = []
    for i, scenario in enumerate(scenarios.scenarios):
        edits: list[Any] = []
        for j, edit in enumerate(scenario.edits):
            where = f"{source}: scenarios.{i}.edits.{j} ({scenario.name}, {edit.kind})"
            if isinstance(edit, ResistanceEdit):
                if not has_connectivity:
                    raise ConfigError(
                        f"{where}: a resistance edit needs a connectivity: section in the "
                        "pipeline config; add one or remove the edit"
                    )
                edits.append(edit)
                continue
            edits.append(_check_edit(edit, covariates.get(edit.covariate), where))
        out.append(scenario.model_copy(update={"edits": edits}))
    return scenarios.model_copy(update={"scenarios": out})
