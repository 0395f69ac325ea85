"""Shared pytest configuration, and the one hypothesis profile every property test runs under.

``reachdiff-ci`` (the default) is reproducible: derandomized, no example database, no
deadline (the machine may be busy; speed is measured by benchmarks/, not by tests).
``REACHDIFF_HYPOTHESIS_PROFILE=reachdiff-deep`` hunts with fresh random seeds and many more
examples; modules scale their own counts with ``tests.strategies.examples``.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fakegithub.fixtures", "tests.botharness"]

settings.register_profile(
    "reachdiff-ci",
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "reachdiff-deep",
    parent=settings.get_profile("reachdiff-ci"),
    derandomize=False,
    max_examples=3000,
)
settings.load_profile(os.environ.get("REACHDIFF_HYPOTHESIS_PROFILE", "reachdiff-ci"))
