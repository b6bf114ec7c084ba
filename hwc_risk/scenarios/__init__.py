"""What-if scenarios: a planner's edits to the inputs, and what they change.

A scenario is a list of edits drawn in QGIS and saved as GeoPackages (a farm
block, a road, a fence, a restored corridor) or a replacement raster (a
land-use plan). The month's fitted model is evaluated on the edited inputs;
nothing is refitted.

- :mod:`hwc_risk.scenarios.config`: the scenario file's pydantic models
  (``SCENARIO.yaml`` or a ``scenarios:`` list in the pipeline config);
- :mod:`hwc_risk.scenarios.geometry`: the edits' GeoPackages read, checked and
  reprojected, and their cells on a grid;
- :mod:`hwc_risk.scenarios.edits`: the edits as pure functions on arrays and
  a chunked driver that writes edited covariates on the analysis grid;
- :mod:`hwc_risk.scenarios.summary`: risk delta, classes on the baseline's
  thresholds, area and people per class, hotspots gained and lost, current
  cut by a new line, pinch points that move, and the table of scenarios.

This package's ``__init__`` imports nothing, so that :mod:`hwc_risk.config`
can import :mod:`hwc_risk.scenarios.config` without a cycle.
"""
