"""Surfaces on disk, ranked chunk by chunk, give the numbers of the definitions; any
chunking of every window task gives the whole grid's layers (files or arrays)."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from hwc_risk.bands import ArrayBand, FileBand
from hwc_risk.classes import RISK_CLASSES
from hwc_risk.compute import Compute
from hwc_risk.mask import ValidMask
from hwc_risk.surfaces import (
    Area,
    BaselineJob,
    RankedSurface,
    SpreadJob,
    baseline_surfaces,
    baseline_window,
    class_captures,
    class_window,
    classify,
    evaluate_surface,
    float_keys,
    key_value,
    spread_window,
)
from hwc_risk.validation import (
    BlockFolds,
    Metrics,
    boyce_index,
    capture_rate,
    kde_bandwidth,
    surface_auc,
)
from tests.conftest import DEFAULT_TRANSFORM, assert_chunked_equals_whole, mask_file

SHAPE = (70, 90)
FRACTIONS = (0.05, 0.1, 0.2)


def _surface_file(values: np.ndarray, path: Path) -> Path:
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": "float32",
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
        "crs": "EPSG:32736",
        "transform": DEFAULT_TRANSFORM,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(np.float32), 1)
    return path


def _case(seed: int, levels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A surface (ties when ``levels`` is set, NaN holes) and a valid mask with a hole."""
    rng = np.random.default_rng(seed)
    surface = rng.gamma(2.0, 1.0, SHAPE).astype(np.float32)
    if levels is not None:
        surface = np.round(surface * levels / 6.0).astype(np.float32)
    surface[rng.random(SHAPE) < 0.05] = np.nan
    valid = np.ones(SHAPE, bool)
    valid[:10, :25] = False
    return surface, valid


def _same(ma: Metrics, mb: Metrics) -> None:
    a, b = ma.to_json(), mb.to_json()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and np.isnan(a[key]):
            assert np.isnan(b[key]), key
        else:
            assert a[key] == b[key], key


def test_float_keys_keep_the_order_of_values() -> None:
    values = np.array([-np.inf, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, np.inf], np.float32)
    keys = float_keys(values)
    assert (np.diff(keys.astype(np.int64)) >= 0).all() and keys[3] == keys[4]
    assert [key_value(int(k)) for k in keys] == [float(v) + 0.0 for v in values]


@pytest.mark.parametrize(("levels", "chunk"), [(None, 16), (4, 16), (30, 64), (1, 32)])
def test_metrics_on_disk_equal_the_in_memory_metrics(
    tmp_path: Path, levels: int | None, chunk: int
) -> None:
    surface, valid = _case(1, levels)
    path = _surface_file(surface, tmp_path / "s.tif")
    mask = mask_file(valid, tmp_path)
    rng = np.random.default_rng(2)
    rows, cols = rng.integers(0, SHAPE[0], 150), rng.integers(0, SHAPE[1], 150)
    folds = BlockFolds.of(SHAPE, 20, 3, np.random.default_rng(0))
    for area, area_array in (
        (Area(mask), valid),
        (Area(mask, folds, 1), valid & (folds.window(_whole()) == 1)),
    ):
        ranked = RankedSurface.for_incidents(path, area, rows, cols, chunk)
        expected = _defined_metrics(surface, area_array, rows, cols)
        _same(ranked.evaluate(FRACTIONS), expected)
        _same(evaluate_surface(surface, area_array, rows, cols, FRACTIONS), expected)
    assert expected.n_incidents > 20  # the fold held incidents


def _defined_metrics(
    surface: np.ndarray, area: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> Metrics:
    """The metrics by their definitions (validation.py), on the area's values in memory."""
    area = area & np.isfinite(surface)
    values, scores = surface[area], surface[rows[area[rows, cols]], cols[area[rows, cols]]]
    rates = tuple(
        (f, capture_rate(values, scores, f), capture_rate(values, scores, f) / f) for f in FRACTIONS
    )
    return Metrics(
        n_incidents=int(scores.size),
        auc=surface_auc(values, scores),
        boyce=boyce_index(values, scores),
        rates=rates,
    )


def _whole():
    from rasterio.windows import Window

    return Window(0, 0, SHAPE[1], SHAPE[0])


@pytest.mark.parametrize(("levels", "chunk"), [(None, 16), (3, 16), (1, 64), (40, 32)])
def test_classes_on_disk_are_their_definition(
    tmp_path: Path, levels: int | None, chunk: int
) -> None:
    surface, valid = _case(3, levels)
    path = _surface_file(surface, tmp_path / "s.tif")
    mask = mask_file(valid, tmp_path)
    cut = RankedSurface(path, Area(mask), chunk=chunk).classes()
    got = np.zeros(SHAPE, np.uint8)
    for win in Compute(chunk_size=chunk).windows(SHAPE):
        (codes,) = class_window(cut, win)
        r, c = int(win.row_off), int(win.col_off)
        got[r : r + codes.shape[0], c : c + codes.shape[1]] = codes
    expected, thresholds = _ranked_classes(surface, valid)
    np.testing.assert_array_equal(got, expected)
    assert cut.thresholds == thresholds
    in_memory, memory_thresholds = classify(surface, valid)
    np.testing.assert_array_equal(in_memory, expected)
    assert memory_thresholds == thresholds
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, SHAPE[0], 300), rng.integers(0, SHAPE[1], 300)
    np.testing.assert_array_equal(cut.at(rows, cols), expected[rows, cols])
    hit = expected[rows, cols]
    hit = hit[hit > 0]
    shares = {c.label: float(np.mean(hit == c.code)) for c in RISK_CLASSES}
    assert class_captures(cut, rows, cols) == shares
    if levels is not None:
        assert cut.offsets  # ties were split across a class boundary


def _ranked_classes(surface: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The classes by definition: cells ranked (ties in raster order), cut at the shares."""
    out = np.zeros(surface.shape, np.uint8)
    ok = valid & np.isfinite(surface)
    values = surface[ok]
    order = np.argsort(-values, kind="stable")
    codes = np.empty(values.size, np.uint8)
    thresholds, start, cumulative = {}, 0, 0.0
    for cls in RISK_CLASSES:
        cumulative += cls.area_share
        stop = values.size if cls is RISK_CLASSES[-1] else round(cumulative * values.size)
        codes[order[start:stop]] = cls.code
        if stop > start:
            thresholds[cls.label] = float(values[order[stop - 1]])
        start = stop
    out[ok] = codes
    return out, thresholds


def test_baselines_are_their_definitions(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    _, valid = _case(0, None)
    rows, cols = rng.integers(0, SHAPE[0], 60), rng.integers(0, SHAPE[1], 60)
    rows[:10], cols[:10] = 1, 2  # a pile in a corner: the kernel is cut by the edge
    bw = kde_bandwidth(rows, cols, SHAPE)
    got = baseline_surfaces(SHAPE, rows, cols, valid)
    counts = np.zeros(SHAPE)
    np.add.at(counts, (rows, cols), 1.0)
    kde = ndimage.gaussian_filter(counts, sigma=bw, mode="constant", truncate=4.0)
    nan = np.float32(np.nan)
    np.testing.assert_array_equal(got["uniform"], np.where(valid, np.float32(1.0), nan))
    np.testing.assert_array_equal(got["past_counts"], np.where(valid, counts, nan))
    np.testing.assert_allclose(got["kde"], np.where(valid, kde, np.nan), rtol=1e-6, atol=1e-12)
    assert np.nanmax(got["kde"]) > 0.01 and bw > 3


def test_spread_of_fold_surfaces(tmp_path: Path) -> None:
    surfaces = [_case(s, None)[0] for s in (6, 7, 8)]
    bands = tuple(
        FileBand(_surface_file(a, tmp_path / f"f{k}.tif")) for k, a in enumerate(surfaces)
    )
    valid = _case(0, None)[1]
    (got,) = spread_window(SpreadJob(mask_file(valid, tmp_path), bands), _whole())
    total, total_sq = np.zeros(SHAPE), np.zeros(SHAPE)  # as spatial_cv summed in memory
    for a in surfaces:
        total += np.nan_to_num(a)
        total_sq += np.nan_to_num(a) ** 2
    mean = total / 3
    expected = np.sqrt(np.maximum(total_sq / 3 - mean**2, 0.0)).astype(np.float32)
    expected[~valid] = np.nan
    np.testing.assert_array_equal(got, expected)
    every = valid & np.isfinite(np.stack(surfaces)).all(axis=0)
    np.testing.assert_allclose(got[every], np.stack(surfaces).std(axis=0)[every], atol=1e-3)


def test_valid_mask_file(tmp_path: Path) -> None:
    _, valid = _case(0, None)
    mask = mask_file(valid, tmp_path)
    assert mask.count == valid.sum() and ValidMask.open(mask.path, 16).count == valid.sum()
    rows, cols = np.nonzero(np.ones(SHAPE, bool))
    np.testing.assert_array_equal(mask.at(rows, cols), valid.ravel())


def test_masks_in_memory_and_on_disk_agree(tmp_path: Path) -> None:
    _, valid = _case(0, None)
    disk, memory = mask_file(valid, tmp_path), ValidMask.of_array(valid)
    assert disk.count == memory.count == valid.sum() and memory.share == disk.share
    rng = np.random.default_rng(9)
    rows, cols = rng.integers(0, SHAPE[0], 400), rng.integers(0, SHAPE[1], 400)
    np.testing.assert_array_equal(memory.at(rows, cols), disk.at(rows, cols))
    np.testing.assert_array_equal(memory.to_array(), valid)
    with pytest.raises(ValueError, match="held in memory"):
        _ = memory.path


def _window_cases(tmp_path: Path) -> dict[str, tuple]:
    """A job of every window task whose layers a run writes chunk by chunk."""
    surface, valid = _case(3, 5)
    mask = mask_file(valid, tmp_path)
    rng = np.random.default_rng(11)
    rows, cols = rng.integers(0, SHAPE[0], 80), rng.integers(0, SHAPE[1], 80)

    def cut(chunk: int) -> object:  # tie offsets follow the chunking
        return RankedSurface(ArrayBand(surface), Area(mask), chunk=chunk).classes()

    folds = tuple(ArrayBand(_case(s, None)[0]) for s in (6, 7))
    assert cut(16).offsets  # ties are split across a class boundary
    return {
        "baselines": (baseline_window, BaselineJob(mask, rows, cols, 4.0)),
        "classes": (class_window, cut),
        "spread": (spread_window, SpreadJob(mask, folds)),
    }


@pytest.mark.parametrize("kind", ["baselines", "classes", "spread"])
def test_surface_layers_in_chunks_equal_the_whole_grid(tmp_path: Path, kind: str) -> None:
    task, job = _window_cases(tmp_path)[kind]
    assert_chunked_equals_whole(task, job, SHAPE, tmp_path)
