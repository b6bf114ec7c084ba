"""The compute layer's process settings."""

from __future__ import annotations

import platform
import sys

import pytest


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)
def test_large_arrays_are_mapped_on_their_own_under_glibc() -> None:
    """The run fixes glibc's mmap threshold (README "Performance": without it a run's
    freed chunk arrays stayed resident); mallopt accepts it, and again (once per process)."""
    from hwc_risk.compute import map_large_arrays

    assert map_large_arrays() is True
    assert map_large_arrays() is True
