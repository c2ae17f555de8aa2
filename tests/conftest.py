"""Shared fixtures; helpers with defaults live in tests/helpers/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.history_files import require_shared_data
from tests.helpers.logstate import preserved_logging

# Fixtures shared by every test package, registered by module rather than imported by name.
pytest_plugins = ["tests.helpers.netguard"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets folder (../shared/data); skips with the reason when it is absent."""
    return require_shared_data()


@pytest.fixture(autouse=True)
def _no_network(loopback_only):
    """Every test: only 127.0.0.1 is reachable (RELIABILITY.md test rig)."""
    yield loopback_only


@pytest.fixture(autouse=True)
def _logging_restored():
    """A test that runs `liqbot` in-process must not leave its log set-up to the next test."""
    with preserved_logging():
        yield
