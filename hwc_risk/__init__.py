"""hwc-risk: human-wildlife conflict risk maps from agency incident reports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hwc-risk")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
