"""Machine-readable records of a run: metrics.json and manifest.json."""

from __future__ import annotations

import hashlib
import json
import math
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["file_record", "package_versions", "sha256", "write_json"]

_PACKAGES = (
    "hwc-risk",
    "numpy",
    "pandas",
    "scipy",
    "rasterio",
    "pyproj",
    "shapely",
    "geopandas",
    "pyogrio",
    "scikit-learn",
    "elapid",
    "folium",
    "pydantic",
)


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path, relative_to: Path | None = None) -> dict[str, Any]:
    name = str(path.relative_to(relative_to)) if relative_to else str(path)
    return {"path": name, "bytes": path.stat().st_size, "sha256": sha256(path)}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    except ImportError:  # pragma: no cover - rasterio is a dependency
        pass
    return out


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(_clean(data), indent=2, default=str) + "\n", encoding="utf-8")
    return path
