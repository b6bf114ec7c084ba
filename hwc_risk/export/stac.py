"""A STAC item (``item.json``) describing a run folder, with pystac.

Extensions: projection (CRS, shape, transform), raster (bands: type, nodata,
unit), classification (risk classes), file (size and sha256 multihash) and
processing (software and lineage).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping

from .. import __version__
from ..classes import RISK_CLASSES
from ..grid import GridSpec
from .outputs import OutputSpec
from .report import sha256

__all__ = ["PROCESSING_SCHEMA", "write_stac_item"]

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"

_MEDIA = {
    ".tif": pystac.MediaType.COG,
    ".html": pystac.MediaType.HTML,
    ".json": pystac.MediaType.JSON,
    ".gpkg": pystac.MediaType.GEOPACKAGE,
    ".csv": "text/csv",
    ".qml": "application/xml",
}


def _file_fields(asset: pystac.Asset, path: Path) -> None:
    ext = FileExtension.ext(asset, add_if_missing=True)
    ext.size = path.stat().st_size
    ext.checksum = "1220" + sha256(path)  # multihash: sha2-256, 32 bytes


def _add_asset(item: pystac.Item, file: Path, spec: OutputSpec, run_dir: Path) -> None:
    """One output as an asset, with its file, raster and classification fields."""
    rel = file.relative_to(run_dir).as_posix()
    asset = pystac.Asset(
        href=f"./{rel}",
        title=spec.title,
        media_type=_MEDIA.get(file.suffix),
        roles=list(spec.roles),
    )
    item.add_asset(spec.key, asset)
    _file_fields(asset, file)
    if file.suffix == ".tif" and spec.categorical:
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            RasterBand.create(nodata=0, data_type=DataType.UINT8)
        ]
        if not spec.risk_classes:  # codes of their own (pinch points, feature numbers)
            return
        ClassificationExtension.ext(asset, add_if_missing=True).classes = [
            Classification.create(
                value=c.code,
                name=c.label.replace(" ", "_"),
                description=f"{c.label}: {c.area_share:.0%} of the area with the highest risk"
                if c.code != 1
                else f"{c.label}: the remaining {c.area_share:.0%} of the area",
                color_hint=c.colour.lstrip("#").upper(),
            )
            for c in sorted(RISK_CLASSES, key=lambda c: c.code)
        ]
    elif file.suffix == ".tif":
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            RasterBand.create(nodata=float("nan"), data_type=DataType.FLOAT32, unit=spec.units)
        ]


def _item(run_name: str, month: str, grid: GridSpec, model: str) -> pystac.Item:
    """The item of a run: its footprint, time span and projection."""
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    first = pd.Timestamp(f"{month}-01")
    last = first + pd.offsets.MonthEnd(1)
    item = pystac.Item(
        id=f"{run_name}-{month}",
        geometry=mapping(box(west, south, east, north)),
        bbox=[west, south, east, north],
        datetime=None,
        start_datetime=first.to_pydatetime().replace(tzinfo=UTC),
        end_datetime=last.to_pydatetime().replace(hour=23, minute=59, second=59, tzinfo=UTC),
        properties={
            "title": f"Human-wildlife conflict risk, {run_name}, {month}",
            "description": (
                "Relative risk of human-wildlife conflict from incident reports and landscape "
                f"covariates, modelled with '{model}'; validated against baselines (metrics)."
            ),
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    if grid.epsg is not None:
        proj.epsg = grid.epsg
    else:
        proj.wkt2 = grid.crs.to_wkt()
    proj.shape = [grid.height, grid.width]
    proj.transform = list(grid.transform)[:6]
    proj.bbox = list(grid.bounds)
    return item


def write_stac_item(
    path: Path,
    *,
    run_name: str,
    month: str,
    grid: GridSpec,
    run_dir: Path,
    files: list[tuple[Path, OutputSpec]],
    model: str,
    inputs: list[dict[str, Any]],
) -> pystac.Item:
    """Write ``item.json`` for a run: every file of ``files`` (with its registry entry,
    :mod:`hwc_risk.export.outputs`) as an asset."""
    item = _item(run_name, month, grid, model)
    for file, spec in files:
        _add_asset(item, file, spec, run_dir)
    item.stac_extensions.append(PROCESSING_SCHEMA)
    item.properties.update(
        {
            "processing:level": "L4",
            "processing:software": {"hwc-risk": __version__},
            "processing:datetime": datetime.now(UTC).isoformat(timespec="seconds"),
            "processing:lineage": (
                f"hwc-risk run of '{run_name}' for {month}: incidents and covariates "
                + ", ".join(str(i.get("role")) for i in inputs)
                + f"; model '{model}'."
            ),
        }
    )
    item.set_self_href(None)
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return item
