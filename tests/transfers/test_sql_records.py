"""Tests of the export record of a SQL destination: the table beside the exported one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from airflow_provider_smsnexus.transfers.sql_records import RECORDS_TABLE, read_sql_records, write_sql_record
from airflow_provider_smsnexus.transfers.window import ExportRun

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 2, tzinfo=timezone.utc)
T2 = datetime(2026, 3, 3, tzinfo=timezone.utc)


def test_sql_records_are_written_in_the_transaction_and_read_per_table(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dest.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE messages (id INTEGER)"))
    assert read_sql_records(engine, None, "messages") == []
    with engine.begin() as conn:
        write_sql_record(conn, None, "messages", ExportRun("d.t", "r1", T0, T1, rows=3, exported_at=T1))
        write_sql_record(conn, None, "messages", ExportRun("d.t", "r1", T0, T2, rows=4, exported_at=T2))
        write_sql_record(conn, None, "other", ExportRun("d.t", "r1", T0, T1, rows=9))
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(f"SELECT run_id, rows FROM {RECORDS_TABLE} WHERE exported_table = 'messages'")
        )
        assert stored.all() == [("r1", 4)]
    assert read_sql_records(engine, None, "messages") == [
        ExportRun("d.t", "r1", T0, T2, rows=4, exported_at=T2)
    ]
    engine.dispose()


def test_a_record_written_in_a_rolled_back_transaction_does_not_exist(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dest.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE messages (id INTEGER)"))

    def failed_load() -> None:
        with engine.begin() as conn:
            write_sql_record(conn, None, "messages", ExportRun("d.t", "r1", T0, T1, rows=3))
            raise RuntimeError("the load failed")

    with pytest.raises(RuntimeError):
        failed_load()
    assert read_sql_records(engine, None, "messages") == []
    engine.dispose()


@pytest.mark.postgres
def test_two_exports_creating_the_records_table_at_once_both_record_their_run(postgres_url) -> None:
    """
    Two exports into one PostgreSQL database, each the first to record a run: the second ``CREATE TABLE``
    waits for the first transaction and then fails on the catalog's unique index. Both loads must still
    commit their record (the failure used to fail the second load, reported as "ids already in" the table).
    """
    import threading
    import time
    import uuid

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    schema = f"records_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    second: dict[str, object] = {}

    def second_export() -> None:
        try:
            with engine.begin() as conn:
                second["pid"] = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                write_sql_record(conn, schema, "table_b", ExportRun("d.b", "r", None, T1, rows=2))
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    try:
        with engine.begin() as first:
            write_sql_record(first, schema, "table_a", ExportRun("d.a", "r", None, T1, rows=1))
            thread = threading.Thread(target=second_export)
            thread.start()
            # The event the race needs: the second transaction waits on the first's new table.
            deadline = time.monotonic() + 30
            with engine.connect() as watcher:
                while True:
                    # pg_locks, each poll in a transaction of its own: a transaction keeps its first snapshot
                    # of pg_stat_activity, so a poll made before the wait began never saw it.
                    waiting = watcher.exec_driver_sql(
                        "SELECT count(*) FROM pg_locks WHERE pid = %(pid)s AND NOT granted",
                        {"pid": second.get("pid", -1)},
                    ).scalar()
                    watcher.rollback()
                    if waiting or "error" in second or not thread.is_alive():
                        break
                    assert time.monotonic() < deadline, "the second export never waited on the first"
                    time.sleep(0.01)
            assert waiting, f"the second export did not wait on the first: {second}"
        thread.join(30)
        assert not thread.is_alive()
        assert "error" not in second, second.get("error")
        with engine.connect() as conn:
            recorded = conn.exec_driver_sql(
                f'SELECT exported_table, task_key, "rows" FROM "{schema}".{RECORDS_TABLE} ORDER BY 1'
            ).all()
        assert [tuple(r) for r in recorded] == [("table_a", "d.a", 1), ("table_b", "d.b", 2)]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()
