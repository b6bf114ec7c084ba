"""Readers for the exports agencies have: EarthRanger events and SMART observations.

Each reader turns an export into a flat table with canonical columns, which
:mod:`hwc_risk.incidents` then maps, checks and accepts or rejects like any
other table: ``id``, ``time``, ``lon``, ``lat`` (WGS 84), ``type``,
``category``, ``species``, ``description``, plus the export's own fields
(nested objects flattened with dots, e.g. ``event_details.species``).

EarthRanger (the ``/activity/events`` API of EarthRanger 2.x, and the tables
its Python clients ``earthranger-client``/``ecoscope`` write): an event has
``id``, ``serial_number``, ``time`` (ISO 8601 with offset), ``event_type``,
``event_category``, ``title``, ``location`` (``{"latitude", "longitude"}``)
or a GeoJSON point geometry, and ``event_details`` (the event type's form:
species, notes, ...). JSON (a list, ``{"results": [...]}`` or the API's
``{"data": {"results": [...]}}``), GeoJSON feature collections and CSV
(``location`` and ``event_details`` as JSON text, or flattened
``location.latitude`` columns) are read.

SMART (SMART 7 observation exports, as SMART Connect's API and data queries
give them): an observation has ``X`` and ``Y`` (WGS 84 longitude and
latitude), ``datetime``, ``category`` (a path such as
``humanwildlifeconflict.cropdamage`` or ``Human Wildlife Conflict > Crop
damage``) and ``attributes``, a list of ``{"attribute"|"key": name, "value":
value}`` pairs; ids in ``id``, ``uuid`` or ``waypoint_id``. JSON (a list or
``{"observations": [...]}``), GeoJSON and CSV (``attributes`` as JSON text) are
read.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["read_earthranger", "read_smart"]

SPECIES_KEYS = ("species", "animal", "wildlife_species", "species_name", "animal_species")
NOTE_KEYS = ("notes", "note", "description", "comments", "comment", "details")


def _parse_obj(value: Any) -> Any:
    """A dict or list from JSON text (or Python repr, as pandas writes dicts to CSV)."""
    if isinstance(value, dict | list):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None


def _records(path: Path, list_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Records from JSON/GeoJSON (features flattened with their geometry) or CSV."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text; re-save the export as UTF-8") from None
        except pd.errors.EmptyDataError:
            raise InputError(f"{path}: the export is empty; export it again") from None
        return [{str(k): v for k, v in rec.items()} for rec in frame.to_dict(orient="records")]
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; re-save the export as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}); export it again") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        out = []
        for feature in data.get("features") or []:
            rec = dict(feature.get("properties") or {})
            geom = feature.get("geometry") or {}
            if geom.get("type") == "Point" and len(geom.get("coordinates") or []) >= 2:
                rec["__lon"], rec["__lat"] = geom["coordinates"][:2]
            elif geom:
                rec["__geometry_type"] = geom.get("type")
            out.append(rec)
        return out
    if isinstance(data, dict):
        for key in list_keys:
            node: Any = data
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, list):
                return node
        raise InputError(
            f"{path}: no list of records found (looked for {', '.join(list_keys)}); "
            "check the export format"
        )
    if isinstance(data, list):
        return data
    raise InputError(f"{path}: expected a list of records or a GeoJSON FeatureCollection")


def _first(rec: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = rec.get(key)
        if value not in (None, ""):
            return value
    return None


def _flatten(rec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def read_earthranger(path: Path) -> pd.DataFrame:
    """EarthRanger events as a flat table with the canonical columns."""
    rows = []
    for rec in _records(path, ("data.results", "results", "data", "events")):
        if not isinstance(rec, dict):
            continue
        details = _parse_obj(rec.get("event_details")) or {}
        location = _parse_obj(rec.get("location")) or {}
        lon = rec.get("__lon", _first(location, ("longitude", "lon", "x")) if location else None)
        lat = rec.get("__lat", _first(location, ("latitude", "lat", "y")) if location else None)
        if lon is None:
            lon = _first(rec, ("location.longitude", "longitude", "lon"))
            lat = _first(rec, ("location.latitude", "latitude", "lat"))
        species = _first(details, SPECIES_KEYS) if isinstance(details, dict) else None
        species = species or _first(rec, tuple(f"event_details.{k}" for k in SPECIES_KEYS))
        note = _first(details, NOTE_KEYS) if isinstance(details, dict) else None
        flat = _flatten({k: v for k, v in rec.items() if not k.startswith("__")})
        flat.update(
            {
                "id": _first(rec, ("serial_number", "id")),
                "time": _first(rec, ("time", "updated_at", "created_at")),
                "lon": _num(lon),
                "lat": _num(lat),
                "type": rec.get("event_type"),
                "category": rec.get("event_category"),
                "species": species,
                "description": note or rec.get("title"),
            }
        )
        if rec.get("__geometry_type"):
            flat["__geometry_type"] = rec["__geometry_type"]
        rows.append(flat)
    return pd.DataFrame(rows)


def _attributes(value: Any) -> dict[str, Any]:
    items = _parse_obj(value)
    out: dict[str, Any] = {}
    if isinstance(items, dict):
        return {str(k): v for k, v in items.items()}
    for item in items or []:
        if isinstance(item, dict):
            name = _first(item, ("attribute", "key", "name", "attributeKey"))
            if name is not None:
                out[str(name)] = item.get("value", item.get("val"))
    return out


def read_smart(path: Path) -> pd.DataFrame:
    """SMART observations as a flat table with the canonical columns."""
    rows = []
    for rec in _records(path, ("observations", "data.observations", "data", "results")):
        if not isinstance(rec, dict):
            continue
        attrs = _attributes(rec.get("attributes"))
        category = rec.get("category")
        leaf = None
        if isinstance(category, str) and category:
            leaf = category.replace(">", ".").split(".")[-1].strip()
        flat = {k: v for k, v in rec.items() if not k.startswith("__") and k != "attributes"}
        flat.update({f"attributes.{k}": v for k, v in attrs.items()})
        flat.update(
            {
                "id": _first(rec, ("id", "uuid", "observation_id", "waypoint_id")),
                "time": _first(rec, ("datetime", "date_time", "waypoint_datetime", "date")),
                "lon": _num(rec.get("__lon", rec.get("X", rec.get("x")))),
                "lat": _num(rec.get("__lat", rec.get("Y", rec.get("y")))),
                "type": leaf,
                "category": category,
                "species": _first(attrs, SPECIES_KEYS),
                "description": _first(attrs, NOTE_KEYS) or rec.get("comment"),
            }
        )
        rows.append(flat)
    return pd.DataFrame(rows)
