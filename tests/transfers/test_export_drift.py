"""Exports while the list drifts under them (the emulator's switches): conversations that move to the top,
messages that leave a status while paged, an oldest-first server that ignores the dates. Expected rows come
from the emulator's record; exported rows are read back from the destination."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import (
    SMSNexusToSqlOperator,
    default_warehouse_path,
)
from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine
from tests.transfers.export_helpers import read_dataset, run_export, table_ids


def test_conversations_moving_to_the_top_while_exported_are_all_in_the_table(
    smsnexus_emulator, smsnexus_conn, table_name
):
    admin = smsnexus_emulator.admin
    admin.seed_messages(12_000, random_seed=9)
    admin.configure(reorder_conversations_per_list=1)
    op = SMSNexusToSqlOperator(task_id="c", resource="conversations", table=table_name, mode="replace")
    result = run_export(op)
    engine = sqlite_engine(default_warehouse_path())
    try:
        with engine.connect() as conn:
            pairs = set(conn.exec_driver_sql(f'SELECT phone_number, contact_number FROM "{table_name}"'))
        numbers = {n["number"] for n in SMSNexusHook().get_phone_numbers()}
        expected = {
            (m["from"], m["to"]) if m["from"] in numbers else (m["to"], m["from"]) for m in admin.messages()
        }
        assert len(expected) > 2_000
        assert pairs == expected
        assert len(table_ids(engine, table_name)) == len(expected)
        assert result["reread_rows"] > 0
        assert result["passes"] >= 2
        assert admin.stats()["drift"]["conversation_moves"] > 0
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table_name}"')
        engine.dispose()


def test_a_status_export_keeps_every_message_that_stays_in_the_status_while_others_leave(
    smsnexus_emulator, smsnexus_conn, tmp_path
):
    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    for n in range(250):
        hook.send_sms("+12125550100", f"+1212555{n // 100 + 1:01d}1{n % 100:02d}", f"hi {n}")
    admin.configure(status_changes_per_list=20)
    # Rows of the second the export starts in are left to the next run: start it in the next second.
    time.sleep(1.01 - datetime.now(timezone.utc).microsecond / 1e6)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    op = SMSNexusToParquetOperator(task_id="q", path=str(tmp_path / "m"), status="queued")
    run_export(op, end - timedelta(hours=1), end)  # the end is cut to the task's start: all 250 sent before

    exported = read_dataset(tmp_path / "m")
    ids = exported.column("id").to_pylist()
    queued_after = {m["id"] for m in admin.messages() if m["status"] == "queued"}
    assert admin.stats()["drift"]["status_changes"] > 0
    assert len(queued_after) < 250
    assert len(ids) == len(set(ids))
    assert queued_after <= set(ids) <= {m["id"] for m in admin.messages(origin="api")}
    assert set(exported.column("status").to_pylist()) == {"queued"}


def test_an_oldest_first_server_ignoring_dates_with_a_bulk_imported_first_page_exports_the_window(
    smsnexus_emulator, smsnexus_conn, tmp_path
):
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc).replace(microsecond=0)
    bulk = now - timedelta(days=4)
    admin.seed_messages(300, start=bulk, end=bulk + timedelta(seconds=1))  # one second, three pages
    admin.seed_messages(400, random_seed=3, start=now - timedelta(days=2), end=now - timedelta(minutes=1))
    admin.configure(list_order="oldest_first", ignore_date_params=True)
    start, end = now - timedelta(days=3), now - timedelta(seconds=30)
    expected = sorted(
        m["id"]
        for m in admin.messages()
        if start <= datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")) < end
    )
    assert len(expected) == 400
    op = SMSNexusToSqlOperator(task_id="m", table="oldest_first_export", mode="replace")
    engine = sqlite_engine(default_warehouse_path())
    try:
        run_export(op, start, end)
        assert table_ids(engine, "oldest_first_export") == expected
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql('DROP TABLE IF EXISTS "oldest_first_export"')
        engine.dispose()
