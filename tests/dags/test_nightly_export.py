"""dags/nightly_export.py: it imports cleanly, and it runs under ``dag.test()`` against the emulator."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "nightly_export.py"
TASKS = {"messages_to_parquet", "messages_to_sql", "conversations_to_parquet", "conversations_to_sql"}


@pytest.fixture
def dags_folder(dags_folder_of, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGs folder holding only this DAG, and an export folder of its own."""
    monkeypatch.setenv("SMSNEXUS_EXPORT_DIR", str(tmp_path / "exports"))
    # Airflow 3's real default (a cron schedule is a CronTriggerTimetable); Airflow's unit_tests.cfg,
    # loaded in unit-test mode, turns data intervals on.
    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "False")
    return dags_folder_of(DAG_FILE)


@pytest.fixture
def load_dag(dags_folder, parse_dag):
    """The DAG, parsed from its folder, without retries (a failure shows at once, not after five minutes)."""
    return lambda: parse_dag(dags_folder, "nightly_export", retries=0)


def drop_tables(engine) -> None:
    with engine.begin() as conn:
        for table in ("smsnexus_messages", "smsnexus_conversations"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def ids_created_in(admin, start: datetime, end: datetime) -> list[int]:
    def created(message):
        return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))

    return sorted(m["id"] for m in admin.messages() if start <= created(m) < end)


def test_dag_imports_cleanly_with_a_daily_schedule_and_a_two_day_lookback(load_dag, airflow_db, dags_folder):
    from airflow.sdk import Asset

    dag = load_dag()

    assert dag.schedule == "@daily"
    assert set(dag.task_ids) == TASKS
    assert dag.max_active_tasks == 1
    assert dag.get_task("messages_to_parquet").lookback == timedelta(days=2)
    assert dag.get_task("messages_to_sql").lookback == timedelta(days=2)
    assert dag.get_task("conversations_to_sql").mode == "replace"
    exports = dags_folder.parent / "exports"
    assert dag.get_task("messages_to_parquet").outlets == [Asset(uri=(exports / "messages").as_uri())]
    assert dag.get_task("messages_to_sql").outlets == [
        Asset(uri="smsnexus-sql://smsnexus_warehouse/smsnexus_messages")
    ]


def test_a_night_exports_the_window_and_its_lookback_to_parquet_and_the_embedded_warehouse(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    import pyarrow.dataset as ds

    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path
    from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine

    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc)
    admin.seed_messages(900, start=now - timedelta(days=6), end=now - timedelta(minutes=1))
    engine = sqlite_engine(default_warehouse_path())
    drop_tables(engine)
    dag = load_dag()

    dag_run = dag.test()

    assert dag_run.state == "success"
    assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()} == dict.fromkeys(TASKS, "success")
    # Airflow 3's @daily is a cron trigger: an empty data interval. The first run exports the whole history
    # up to its logical date; the next starts where it ended (tests/transfers/test_export_schedules.py).
    assert dag_run.data_interval_start == dag_run.data_interval_end
    expected = ids_created_in(admin, datetime.min.replace(tzinfo=timezone.utc), dag_run.logical_date)
    assert expected

    exports = dags_folder.parent / "exports"
    messages = ds.dataset(exports / "messages", partitioning="hive").to_table()
    assert sorted(messages.column("id").to_pylist()) == expected
    days = {m["created_at"][:10] for m in admin.messages() if m["id"] in set(expected)}
    partitions = {p.name for p in (exports / "messages").iterdir() if p.is_dir()}
    assert partitions == {f"created_date={day}" for day in days}
    with engine.connect() as conn:
        loaded = sorted(r[0] for r in conn.execute(sa.text("SELECT id FROM smsnexus_messages")))
        conversations = conn.execute(sa.text("SELECT count(*) FROM smsnexus_conversations")).scalar_one()
    assert loaded == expected
    assert conversations == ds.dataset(exports / "conversations").count_rows() > 0
    drop_tables(engine)
    engine.dispose()


@pytest.mark.postgres
def test_a_night_loads_into_a_postgres_warehouse(
    load_dag,
    airflow_db,
    dags_folder,
    smsnexus_emulator,
    smsnexus_conn,
    postgres_url,
    postgres_conn_id,
    monkeypatch,
):
    pg_engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc)
    admin.seed_messages(500, start=now - timedelta(days=4), end=now - timedelta(minutes=1))
    monkeypatch.setenv("SMSNEXUS_WAREHOUSE_CONN_ID", postgres_conn_id)
    # A schema of its own: another copy of the suite may run this DAG into the same database at once.
    schema = f"nightly_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("SMSNEXUS_WAREHOUSE_SCHEMA", schema)
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        dag_run = load_dag().test()
        assert dag_run.state == "success"
        expected = ids_created_in(admin, datetime.min.replace(tzinfo=timezone.utc), dag_run.logical_date)
        with pg_engine.connect() as conn:
            loaded = sorted(
                r[0] for r in conn.execute(sa.text(f'SELECT id FROM "{schema}".smsnexus_messages'))
            )
            recorded = conn.execute(
                sa.text(f'SELECT exported_table FROM "{schema}".smsnexus_export_runs')
            ).all()
        assert loaded == expected
        assert sorted(r[0] for r in recorded) == ["smsnexus_messages"]  # its record of runs is in the schema
    finally:
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        pg_engine.dispose()
