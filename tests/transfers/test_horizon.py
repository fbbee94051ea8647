"""The listed horizon (issue 23, holes 1 and 2): an export's window never ends after the server's present minus
the listing delay, so a server clock behind the worker's, or a message listed a few seconds late, loses nothing.

Expected rows come from the emulator's own record; the destination is read back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.transfers.horizon import listed_horizon, wait_for_horizon
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator
from airflow_provider_smsnexus.transfers.sql_loading import sqlite_engine
from tests.transfers.export_helpers import ids_created_in, parse_api_time, run_export, table_ids

SENDER = "+12125550100"


def chained_run(table: str, run: int, **context) -> dict:
    """A manual run without a logical date (the CLI's and REST API's default), appending to ``table``."""
    operator = SMSNexusToSqlOperator(task_id="export", table=table, mode="append")
    now = datetime.now(timezone.utc)
    return operator.execute({"run_id": f"manual__{run}", "run_after": now, **context})


def exported(table: str) -> list[int]:
    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path

    engine = sqlite_engine(default_warehouse_path())
    try:
        return table_ids(engine, table)
    finally:
        engine.dispose()


def text(to: str = "+12125550150") -> dict:
    return SMSNexusHook().send_sms(SENDER, to, "late or not, exported once")


def until_listed(created_at: str) -> None:
    """Wait (on the server's clock, as the hook measures it) until a message is inside the horizon."""
    hook = SMSNexusHook()
    wait_for_horizon(hook, parse_api_time(created_at) + timedelta(seconds=1), log=_log())


def server_time_passes(moment: datetime) -> None:
    """Poll the server's ``Date`` (through the hook's clock) until its present is surely past ``moment``."""
    import threading

    hook = SMSNexusHook()
    for _ in range(600):
        hook.get_balance()
        estimate, uncertainty = hook.server_clock.to_server(datetime.now(timezone.utc))
        if estimate - timedelta(seconds=uncertainty) > moment:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"the server's clock never passed {moment}")


def _log():
    import logging

    return logging.getLogger("test")


@pytest.mark.parametrize("offset", [-120, 120], ids=["server-2-min-behind", "server-2-min-ahead"])
def test_a_skewed_server_clock_loses_no_message_between_chained_runs(
    smsnexus_emulator, smsnexus_conn, table_name, offset
):
    admin = smsnexus_emulator.admin
    now = datetime.now(timezone.utc)
    admin.seed_messages(40, random_seed=3, start=now - timedelta(hours=3), end=now - timedelta(hours=1))
    admin.configure(clock_offset_seconds=offset)
    first = chained_run(table_name, 1)
    # Sent after run 1: with the server 2 minutes behind it is dated inside run 1's window on the worker's
    # clock, which the old export had already closed there: neither run exported it.
    late = text()
    until_listed(late["created_at"])
    second = chained_run(table_name, 2)
    end = parse_api_time(second["window_end"])
    assert parse_api_time(first["window_end"]) <= end
    # The union of the windows run holds every message created before the chain's end, each once (append
    # mode fails on a repeated id); the next run starts there.
    assert exported(table_name) == ids_created_in(admin, None, end)
    if offset < 0:
        assert late["id"] in exported(table_name)
    else:  # dated 2 minutes ahead of the worker's run_after: after this chain's end, in the next run's window
        assert parse_api_time(late["created_at"]) >= end


def test_a_message_listed_seconds_after_its_creation_is_exported_by_the_next_run(
    smsnexus_emulator, monkeypatch, table_name
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(listing_delay=5, timeout=10)
    )
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=4000)  # the first message created from now on is listed 4 s late
    late = text()
    # Run 1 once the server's clock has left the message's second (an end in the same second would leave it
    # to run 2 by chance), while the message is still not listed.
    server_time_passes(parse_api_time(late["created_at"]) + timedelta(seconds=1))
    first = chained_run(table_name, 1)
    assert late["id"] not in exported(table_name)
    until_listed(late["created_at"])
    second = chained_run(table_name, 2)
    assert late["id"] in exported(table_name)
    assert parse_api_time(first["window_end"]) <= parse_api_time(late["created_at"])
    assert exported(table_name) == ids_created_in(admin, None, parse_api_time(second["window_end"]))


def test_a_data_interval_that_just_ended_waits_for_its_last_messages_to_be_listed(
    smsnexus_emulator, monkeypatch, table_name
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(listing_delay=3, timeout=10)
    )
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=2500)
    late = text()  # created inside the interval, listed 2.5 s later
    end = parse_api_time(late["created_at"]) + timedelta(seconds=1)
    operator = SMSNexusToSqlOperator(task_id="export", table=table_name, mode="append")
    result = run_export(operator, end - timedelta(hours=1), end)  # an interval run: it is never repeated
    assert parse_api_time(result["window_end"]) == end
    assert exported(table_name) == ids_created_in(admin, end - timedelta(hours=1), end)
    assert late["id"] in exported(table_name)


def test_a_server_clock_far_behind_fails_the_run_with_the_reason_and_exports_nothing(
    smsnexus_emulator, smsnexus_conn, table_name
):
    from airflow_provider_smsnexus.exceptions import SMSNexusError

    admin = smsnexus_emulator.admin
    admin.configure(clock_offset_seconds=-3600)
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    operator = SMSNexusToSqlOperator(task_id="export", table=table_name, mode="append")
    with pytest.raises(SMSNexusError, match="its clock runs behind"):
        run_export(operator, end - timedelta(hours=1), end)
    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import default_warehouse_path

    engine = sqlite_engine(default_warehouse_path())
    try:
        assert not sa.inspect(engine).has_table(table_name)  # nothing was written
    finally:
        engine.dispose()


def test_the_horizon_is_the_servers_present_less_its_uncertainty_and_the_listing_delay(
    smsnexus_emulator, monkeypatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(listing_delay=7, timeout=10)
    )
    smsnexus_emulator.admin.configure(clock_offset_seconds=-600)
    before = datetime.now(timezone.utc)
    horizon = listed_horizon(SMSNexusHook())
    after = datetime.now(timezone.utc)
    # The emulator's clock: the machine's minus 600 s; a Date header has whole seconds (1 s of uncertainty).
    assert before - timedelta(seconds=600 + 7 + 2) <= horizon <= after - timedelta(seconds=600 + 7)
