"""Fixtures of the deployment tests: the processes they start, a fresh PostgreSQL database, the prerequisites.

These tests run everywhere the prerequisites are (``make test`` runs them); with
``SMSNEXUS_REQUIRE_DEPLOYMENT=1`` (``.ci/run``) a missing prerequisite fails them instead of skipping.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import pytest

from tests.deployment.deployment_support import PostgresDatabase, ProcessGroup, postgres_unavailable, require

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REQUIRED = os.environ.get("SMSNEXUS_REQUIRE_DEPLOYMENT") == "1"
_DATABASE_NUMBERS = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deployment: starts a real Airflow deployment (required on CI: SMSNEXUS_REQUIRE_DEPLOYMENT=1)",
    )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    """The processes this test starts; each is stopped by PID at the end, whatever the outcome."""
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
def database() -> Iterator[PostgresDatabase]:
    """A new database for this deployment's metadata (and ledger), dropped at the end."""
    require(postgres_unavailable(), REQUIRED, "PostgreSQL")
    db = PostgresDatabase(f"smsnexus_deploy_{os.getpid()}_{next(_DATABASE_NUMBERS)}").create()
    try:
        yield db
    finally:
        db.drop()
