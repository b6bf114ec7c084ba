"""The exception hierarchy of hwc-risk.

Every error raised on purpose is an :class:`HWCRiskError`. Problems with what
the user gave us (config, files, columns, CRS, overlap) are :class:`InputError`
and its subclasses: the command line prints their one-line message and exits
with code 2. Anything else is a bug and exits with code 1.

Like rasterio's errors, the input errors also inherit a built-in exception so
that callers can catch them the way they already catch such problems.
"""

from __future__ import annotations


class HWCRiskError(Exception):
    """Base class of every error hwc-risk raises on purpose."""


class InputError(HWCRiskError, ValueError):
    """The input (config, files, data) is wrong; the message says how to fix it."""


class ConfigError(InputError):
    """The pipeline config is invalid: unknown key, wrong type, bad value."""


class MissingFileError(InputError, FileNotFoundError):
    """A file named in the config does not exist or cannot be read."""


class MissingColumnError(InputError, KeyError):
    """A column named in the config is not in the incident table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CRSError(InputError):
    """A coordinate reference system is missing or unknown."""


class NoOverlapError(InputError):
    """A raster or the incidents do not overlap the analysis grid."""


class NoIncidentsError(InputError):
    """There are no usable incidents for the requested month."""


class ModelRecipeError(InputError):
    """A model recipe is missing or invalid."""
