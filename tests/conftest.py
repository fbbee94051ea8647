"""Suite-wide fixtures: an isolated AIRFLOW_HOME, the emulator plugin, and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="smsnexus-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"

pytest_plugins = ["airflow_provider_smsnexus.emulator.testing"]

POSTGRES_URL = os.environ.get("SMSNEXUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_REQUIRED = os.environ.get("SMSNEXUS_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The suite's private AIRFLOW_HOME."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata database, for tests that run DAGs with ``dag.test()``."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
    )
    return airflow_home / "airflow.db"


def _postgres_reachable(url: str) -> str | None:
    """Return None when PostgreSQL answers at ``url``, else the reason it does not."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL (``postgresql://...``); skips with a reason where none answers, fails on CI."""
    reason = _postgres_reachable(POSTGRES_URL)
    if reason:
        if POSTGRES_REQUIRED:
            pytest.fail(f"{reason} (SMSNEXUS_REQUIRE_POSTGRES=1: PostgreSQL tests are required here)")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_conn_id(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection id (``smsnexus_test_pg``) that points at the test PostgreSQL."""
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_TEST_PG", postgres_url)
    return "smsnexus_test_pg"
