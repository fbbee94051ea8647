"""Fixtures for the export tests: unique table names and a PostgreSQL engine."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def table_name() -> str:
    """A table name no other test uses."""
    return f"export_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_engine(postgres_conn_id: str):
    """A SQLAlchemy engine on the test PostgreSQL, through the Airflow connection's hook."""
    from airflow.sdk import BaseHook

    engine = BaseHook.get_connection(postgres_conn_id).get_hook().get_sqlalchemy_engine()
    yield engine
    engine.dispose()
