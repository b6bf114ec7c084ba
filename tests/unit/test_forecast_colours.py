"""The "expected incidents" overlay's colours, coloured a strip of rows at a time."""

from __future__ import annotations

import numpy as np

from hwc_risk.export.forecast_map import COLOUR_ROWS, _colour
from hwc_risk.export.qgis import EXPECTED_RAMP


def _rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]


def test_every_strip_takes_the_ramp_and_leaves_empty_cells_clear() -> None:
    stops = [0.01, 0.1, 0.5, 1.0, 2.0]
    rows = 2 * COLOUR_ROWS + 17  # three strips, the last a short one
    values = np.zeros((rows, 5), dtype=np.float32)
    values[:, 0] = np.nan
    values[:, 1] = 0.0
    values[:, 2] = 0.001  # below the first stop: the first colour
    values[:, 3] = 0.5  # on the middle stop: its colour
    values[:, 4] = 9.0  # above the last stop: the last colour
    rgba = _colour(values, stops)
    assert rgba.shape == (rows, 5, 4) and rgba.dtype == np.uint8
    for row in (0, COLOUR_ROWS - 1, COLOUR_ROWS, rows - 1):
        assert rgba[row, 0].tolist() == [0, 0, 0, 0]
        assert rgba[row, 1].tolist() == [0, 0, 0, 0]
        assert rgba[row, 2].tolist() == [*_rgb(EXPECTED_RAMP[0]), 210]
        assert rgba[row, 3].tolist() == [*_rgb(EXPECTED_RAMP[2]), 210]
        assert rgba[row, 4].tolist() == [*_rgb(EXPECTED_RAMP[-1]), 210]
