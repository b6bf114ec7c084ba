"""Exports: GeoTIFFs, the planners' HTML map, metrics and the manifest."""
