"""Hypothesis profiles for the property-based tests.

``ci`` (chosen when the environment has ``CI`` set, as ``.ci/run`` does): the same
examples on every run (derandomized), no deadline (the machine is shared and slow),
no example database; so a CI run is reproducible. ``dev`` (the default elsewhere):
random examples, with the failures found kept in ``.hypothesis/`` and replayed first.
Choose one with ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=SLOW_DATA,
)
settings.register_profile("dev", deadline=None, suppress_health_check=SLOW_DATA)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
