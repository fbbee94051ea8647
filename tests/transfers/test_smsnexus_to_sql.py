"""SMSNexusToSqlOperator against the emulator, into the embedded SQLite warehouse and a real PostgreSQL."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusServerError
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import (
    SMSNexusToSqlOperator,
    SqlExportWriter,
    default_warehouse_path,
    table_asset_uri,
)
from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine
from tests.transfers.export_helpers import fail_after_pages, ids_created_in, run_export, seed_days, table_ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, table_name):
    """(sql_conn_id, engine to read with, table): the embedded SQLite warehouse, or PostgreSQL."""
    if request.param == "sqlite":
        conn_id, engine = None, sqlite_engine(default_warehouse_path())
    else:
        conn_id, engine = request.getfixturevalue("postgres_conn_id"), request.getfixturevalue("pg_engine")
    yield conn_id, engine, table_name
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table_name}"')
    engine.dispose()


def rows_by_id(engine, table):
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(sa.text(f'SELECT * FROM "{table}"'))}


def has_table(engine, table):
    return sa.inspect(engine).has_table(table)


def test_a_multi_page_export_loads_exactly_the_windows_ids(smsnexus_emulator, smsnexus_conn, warehouse):
    conn_id, engine, table = warehouse
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_500, days=6)
    start, end = first + timedelta(days=1), first + timedelta(days=4)
    op = SMSNexusToSqlOperator(task_id="export", sql_conn_id=conn_id, table=table)
    result = run_export(op, start, end)

    expected = ids_created_in(admin, start, end)
    assert len(expected) > 300
    assert table_ids(engine, table) == expected
    assert result["rows"] == len(expected)
    assert result["destination"].endswith(f"?table={table}")
    assert "@" not in result["destination"].split("?")[0].split("//", 1)[1]  # no user or password
    message = next(m for m in admin.messages() if m["id"] == expected[0])
    row = rows_by_id(engine, table)[expected[0]]
    assert (row["from_number"], row["to_number"], row["body"], row["status"]) == (
        message["from"],
        message["to"],
        message["body"],
        message["status"],
    )


def test_live_traffic_and_ignored_date_parameters_still_load_each_window_id_once(
    smsnexus_emulator, monkeypatch, warehouse
):
    conn_id, engine, table = warehouse
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_200, days=3)  # seeded up to a minute ago
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=30)
    expected = ids_created_in(admin, first, end)  # fixed before the run: live traffic comes after `end`
    admin.set_faults(live_traffic_per_list=9)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            date_from_param="from_ts", date_to_param="to_ts", retry_backoff=0.01
        ),
    )
    op = SMSNexusToSqlOperator(task_id="export", sql_conn_id=conn_id, table=table, per_page=40)
    result = run_export(op, first, end)
    assert table_ids(engine, table) == expected
    assert len(admin.messages(origin="live")) > 9 * 10
    assert result["duplicates_dropped"] > 0


def test_a_rerun_with_lookback_updates_the_status_of_earlier_rows(
    smsnexus_emulator, smsnexus_conn, warehouse
):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    conn_id, engine, table = warehouse
    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    sent = sorted(hook.send_sms("+12125550100", f"+121255501{n:02d}", "hi")["id"] for n in range(40, 55))
    time.sleep(1.01 - datetime.now(timezone.utc).microsecond / 1e6)  # the export leaves the current second
    now = datetime.now(timezone.utc)
    run_export(
        SMSNexusToSqlOperator(task_id="export", sql_conn_id=conn_id, table=table),
        now - timedelta(hours=1),
        now,
    )
    assert {r["status"] for r in rows_by_id(engine, table).values()} == {"queued"}

    admin.advance_lifecycle()
    later = datetime.now(timezone.utc)
    rerun = SMSNexusToSqlOperator(
        task_id="export", sql_conn_id=conn_id, table=table, lookback=timedelta(hours=2)
    )
    result = run_export(rerun, later, later + timedelta(hours=1))
    rows = rows_by_id(engine, table)
    assert sorted(rows) == sent
    assert {r["status"] for r in rows.values()} <= {"delivered", "failed"}
    assert result["rows"] == len(sent)


@pytest.mark.parametrize("table_existed", [True, False])
def test_a_run_failing_midway_leaves_the_table_exactly_as_it_was(
    smsnexus_emulator, smsnexus_conn, warehouse, monkeypatch, table_existed
):
    conn_id, engine, table = warehouse
    admin = smsnexus_emulator.admin
    first = seed_days(admin, 1_000, days=4)
    if table_existed:
        run_export(
            SMSNexusToSqlOperator(task_id="e", sql_conn_id=conn_id, table=table),
            first,
            first + timedelta(days=2),
        )
        before = rows_by_id(engine, table)
    admin.advance_lifecycle()

    fail_after_pages(monkeypatch, admin, SqlExportWriter, pages=5)
    op = SMSNexusToSqlOperator(task_id="e", sql_conn_id=conn_id, table=table, batch_size=100, mode="replace")
    with pytest.raises(SMSNexusServerError):
        run_export(op, first, first + timedelta(days=4))
    assert op._stats.rows >= 400
    if table_existed:
        assert rows_by_id(engine, table) == before
    else:
        assert not has_table(engine, table)


def test_conversations_and_phone_numbers_are_loaded_whole(smsnexus_emulator, smsnexus_conn, warehouse):
    conn_id, engine, table = warehouse
    seed_days(smsnexus_emulator.admin, 400, days=2)
    result = run_export(
        SMSNexusToSqlOperator(
            task_id="numbers", resource="phone_numbers", sql_conn_id=conn_id, table=table, mode="replace"
        )
    )
    numbers = rows_by_id(engine, table)
    assert result["rows"] == len(numbers) == 3
    assert result["window_start"] is None
    assert {n["number"] for n in numbers.values()} == {"+12125550100", "+12125550101", "+12125550102"}

    conversations = f"{table}_c"
    try:
        result = run_export(
            SMSNexusToSqlOperator(
                task_id="c", resource="conversations", sql_conn_id=conn_id, table=conversations
            )
        )
        assert result["rows"] == len(table_ids(engine, conversations)) > 0
        assert result["pages"] >= 1
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{conversations}"')


def test_outlets_and_lineage_name_the_table(smsnexus_emulator, smsnexus_conn, warehouse):
    conn_id, _, table = warehouse
    op = SMSNexusToSqlOperator(task_id="export", sql_conn_id=conn_id, table=table)
    events = OutletEventAccessors()
    op.execute({"data_interval_start": None, "data_interval_end": None, "outlet_events": events})
    namespace, name = op.lineage_datasets()["output"]
    if conn_id:
        # The alias is declared at parse time; the run attaches the table's asset in the postgres provider's
        # form (the address of the test database, written out by hand).
        alias = AssetAlias(name=f"smsnexus-sql://{conn_id}/{table}")
        assert op.outlets == [alias]
        attached = [event.dest_asset_key.uri for event in events[alias].asset_alias_events]
        assert attached == [f"postgres://127.0.0.1:5432/test/public/{table}"]
        assert (namespace, name) == ("postgres://127.0.0.1:5432", f"test.public.{table}")
    else:
        assert op.outlets == [Asset(uri=f"smsnexus-sql://smsnexus_warehouse/{table}")]
        assert list(events) == []
        assert (namespace, name) == (f"sqlite://{default_warehouse_path()}", table)


def test_the_postgres_asset_is_the_one_another_providers_task_names():
    url = sa.engine.make_url("postgresql+psycopg2://user:secret@db.example:5432/shop")
    ours = Asset(uri=table_asset_uri(url, "warehouse", None, "smsnexus_messages"))
    # How a task of another provider may spell the same table: Airflow's postgres handler normalises both.
    theirs = Asset(uri="postgresql://db.example/shop/public/smsnexus_messages")
    assert ours.uri == theirs.uri == "postgres://db.example:5432/shop/public/smsnexus_messages"


@pytest.mark.parametrize(
    ("url", "schema", "expected"),
    [
        ("postgresql://h:6543/db", "sales", "postgres://h:6543/db/sales/t"),
        ("mysql+pymysql://u:p@h/db", None, "mysql://h:3306/db/t"),
        ("mariadb://h:3307/db", None, "mysql://h:3307/db/t"),
        ("sqlite:////tmp/x.db", None, "smsnexus-sql://conn/t"),
        ("sqlite:////tmp/x.db", "main", "smsnexus-sql://conn/main/t"),
    ],
)
def test_a_database_without_a_registered_scheme_keeps_the_providers_own_uri(url, schema, expected):
    assert table_asset_uri(sa.engine.make_url(url), "conn", schema, "t") == expected


def test_a_templated_table_gets_no_outlet():
    assert SMSNexusToSqlOperator(task_id="t", sql_conn_id="pg", table="t_{{ ds_nodash }}").outlets == []


def test_the_embedded_warehouse_lives_in_airflow_home(airflow_home):
    assert default_warehouse_path() == airflow_home / "smsnexus_warehouse.db"
    assert SMSNexusToSqlOperator(task_id="t").table == "smsnexus_messages"
    assert SMSNexusToSqlOperator(task_id="t", resource="conversations").table == "smsnexus_conversations"


def test_a_connection_without_a_sql_engine_is_refused_with_advice(smsnexus_emulator, smsnexus_conn):
    op = SMSNexusToSqlOperator(task_id="export", sql_conn_id=smsnexus_conn)
    with pytest.raises(SMSNexusError, match="has no SQLAlchemy engine"):
        run_export(op)


def test_an_unknown_mode_is_refused_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="mode must be one of"):
        SMSNexusToSqlOperator(task_id="t", mode="merge")
