"""Exports on Airflow 3's real default schedule: ``schedule="@daily"`` with no lookback is a cron trigger whose
runs have an empty data interval. Three consecutive scheduled runs, a manual run with a logical date between
them and one without a logical date after them, into SQL (append: a repeated id would fail the run) and
Parquet: each message of the days covered lands exactly once, checked after every run against the emulator's
record of the span the test computes itself."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tests.transfers.export_helpers import ids_created_in, read_dataset

if TYPE_CHECKING:
    from pathlib import Path

DAG_SOURCE = textwrap.dedent(
    """
    import os
    from datetime import datetime, timezone

    from airflow.sdk import dag

    from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator

    FIRST = os.environ["EXPORT_FIRST_WINDOW_START"]


    @dag(dag_id="daily_export", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
         catchup=False)
    def daily_export():
        SMSNexusToParquetOperator(task_id="to_parquet", path=os.environ["EXPORT_DIR"], initial_window_start=FIRST)
        SMSNexusToSqlOperator(task_id="to_sql", sql_conn_id=os.environ.get("EXPORT_SQL_CONN_ID") or None,
                              table=os.environ["EXPORT_TABLE"], mode="append", initial_window_start=FIRST)


    daily_export()
    """
)


@pytest.fixture
def daily_dag_folder(
    dags_folder_of, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_name: str
) -> Path:
    # Airflow 3's real default; its unit_tests.cfg (loaded in unit-test mode) turns cron data intervals on.
    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "False")
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "messages"))
    monkeypatch.setenv("EXPORT_TABLE", table_name)
    return dags_folder_of(sources={"daily_export.py": DAG_SOURCE})


@pytest.fixture
def load_dag(daily_dag_folder, parse_dag):
    """The DAG, parsed from its folder, without retries."""
    return lambda: parse_dag(daily_dag_folder, "daily_export", retries=0)


def scheduled_runs(dag, count: int, last: datetime) -> list[tuple[datetime, datetime, datetime]]:
    """``(logical_date, data_interval_start, data_interval_end)`` of the scheduler's last ``count`` runs up
    to ``last``, from the DAG's own timetable."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)  # the scheduler's view of the DAG's timetable
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    runs, previous = [], None
    first = last - timedelta(days=count)
    previous = DataInterval(first, first)
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=previous, restriction=restriction)
        runs.append((info.logical_date, info.data_interval.start, info.data_interval.end))
        previous = info.data_interval
    return runs


@pytest.mark.parametrize("sql", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_three_daily_runs_and_manual_runs_export_every_message_exactly_once(
    load_dag,
    airflow_db,
    daily_dag_folder,
    smsnexus_emulator,
    smsnexus_conn,
    monkeypatch,
    table_name,
    tmp_path,
    request,
    sql,
):
    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path
    from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine

    if sql == "postgres":
        conn_id = request.getfixturevalue("postgres_conn_id")
        monkeypatch.setenv("EXPORT_SQL_CONN_ID", conn_id)
        engine = request.getfixturevalue("pg_engine")
    else:
        engine = sqlite_engine(default_warehouse_path())
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc).replace(microsecond=0)
    today = now.replace(hour=0, minute=0, second=0)
    first = today - timedelta(days=3)
    monkeypatch.setenv("EXPORT_FIRST_WINDOW_START", first.isoformat())
    admin.seed_messages(3_000, random_seed=7, start=first - timedelta(days=2), end=now - timedelta(minutes=1))
    dag = load_dag()
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"  # the SDK's or the core's class
    runs = scheduled_runs(dag, 3, today)
    assert [r[0] for r in runs] == [today - timedelta(days=2), today - timedelta(days=1), today]
    assert all(start == end for _, start, end in runs)  # the empty data interval of a cron trigger

    def exported() -> tuple[list[int], list[int]]:
        parquet = read_dataset(tmp_path / "messages").column("id").to_pylist()
        with engine.connect() as conn:
            rows = [r[0] for r in conn.execute(sa.text(f'SELECT id FROM "{table_name}"'))]
        return sorted(parquet), sorted(rows)

    def check(dag_run, end: datetime) -> None:
        assert dag_run.state == "success"  # append mode: a repeated id would have failed the SQL task
        parquet, rows = exported()
        assert rows == ids_created_in(admin, first, end)
        # Day partitions are rewritten whole: a window ending inside a day covers that day up to the moment
        # the task ran (every message was seeded before that).
        midnight = end.replace(hour=0, minute=0, second=0)
        day_end = end if end == midnight else midnight + timedelta(days=1)
        assert parquet == ids_created_in(admin, first, day_end)  # each once (duplicates would show)

    try:
        manual_at = runs[1][0] + timedelta(hours=12)
        for logical_date, interval_start, interval_end in runs[:2]:
            dag_run = dag.test(logical_date=logical_date)
            assert (dag_run.data_interval_start, dag_run.data_interval_end) == (interval_start, interval_end)
            check(dag_run, logical_date)
        check(dag.test(logical_date=manual_at), manual_at)  # a manual run with a logical date, between
        check(dag.test(logical_date=runs[2][0]), runs[2][0])
        run_after = now - timedelta(seconds=20)  # a manual run without a logical date (CLI / REST default)
        dag_run = dag.test(logical_date=None, run_after=run_after)
        assert dag_run.logical_date is None
        assert dag_run.data_interval_start is None
        check(dag_run, run_after)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table_name}"')
            # Only this test's record: other exports (another copy of the suite) may share the records table.
            if sa.inspect(conn).has_table("smsnexus_export_runs"):
                conn.execute(
                    sa.text("DELETE FROM smsnexus_export_runs WHERE exported_table = :t"), {"t": table_name}
                )
        engine.dispose()
