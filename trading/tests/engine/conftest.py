"""Engine tests need no database, Redis or Django.

The repository's root conftest.py adds autouse fixtures that reach Django settings and Redis.
These same-named fixtures replace them for this directory, so the engine suite runs the same
inside the full Django test run and alone (``pytest -p no:django --noconftest
trading/tests/engine``, where the root conftest is not loaded at all).
"""

import pytest


@pytest.fixture(autouse=True)
def _clean_redis():
    """The engine keeps nothing in Redis."""


@pytest.fixture(autouse=True)
def _fast_test_settings():
    """The engine hashes no passwords and serves no files: no Django settings to change."""
