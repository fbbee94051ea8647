"""The hook's rate budget: its extras, its stores under concurrent processes, its fallback, its priorities."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import re
import threading
import uuid

import pytest
from airflow.models.connection import Connection

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks import _budget_stores
from airflow_provider_smsnexus.hooks._budget import SharedBudget, account_key
from airflow_provider_smsnexus.hooks._budget_stores import HostStore, open_store
from airflow_provider_smsnexus.hooks._config import BudgetSettings, SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook
from airflow_provider_smsnexus.utils.rate_budget import BULK, INTERACTIVE, SharedWindow
from tests.hooks.budget_scenario import redis_server


def _config(**extra: object) -> SMSNexusConnectionConfig:
    conn = Connection(
        conn_id="c",
        conn_type="smsnexus",
        host="sms.example.com/api",
        password="tok-secret",
        extra=json.dumps(extra),
    )
    return SMSNexusConnectionConfig.from_connection(conn)


# -- the extras --------------------------------------------------------------------------------------------


def test_the_budget_is_the_hooks_own_unless_the_connection_shares_it():
    assert _config().rate_budget == BudgetSettings(kind="process", store=None, reserve_share=0.1)
    shared = _config(rate_budget="SQL", rate_budget_store="smsnexus_pg", rate_budget_reserve="0.2")
    assert shared.rate_budget == BudgetSettings(kind="sql", store="smsnexus_pg", reserve_share=0.2)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"rate_budget": "cluster"}, "rate_budget='cluster': expected one of process, host, sql, redis"),
        (
            {"rate_budget": "sql"},
            "rate_budget_store: missing; rate_budget=sql needs a connection id or a SQLAlchemy",
        ),
        (
            {"rate_budget": "redis", "rate_budget_store": " "},
            "rate_budget_store: missing; rate_budget=redis needs",
        ),
        ({"rate_budget": "host", "rate_budget_store": 5}, "rate_budget_store: a int; expected text"),
        (
            {"rate_budget_reserve": 0.9},
            "rate_budget_reserve=0.9: expected a share of the limit from 0 to 0.5",
        ),
        ({"rate_budget_reserve": "most"}, "rate_budget_reserve='most': expected a share"),
    ],
)
def test_a_bad_budget_extra_fails_with_a_message_naming_the_connection_and_the_extra(extra, named):
    with pytest.raises(SMSNexusError, match=f"Connection 'c' has an invalid extra {re.escape(named)}"):
        _config(**extra)


def test_the_account_key_is_the_base_url_and_a_hash_of_the_token_never_the_token():
    key = account_key(_config())
    assert key.startswith("https://sms.example.com/api#")
    assert "tok-secret" not in key
    other = Connection(conn_id="c", conn_type="smsnexus", host="sms.example.com/api", password="other")
    assert account_key(SMSNexusConnectionConfig.from_connection(other)) != key


def test_a_hook_refuses_an_unknown_priority():
    with pytest.raises(ValueError, match="priority must be one of interactive, bulk"):
        SMSNexusHook(priority="urgent")
    assert SMSNexusHook().priority == SMSNexusAsyncHook().priority == INTERACTIVE


def test_exports_and_campaigns_draw_on_the_budget_as_bulk_and_single_sends_and_sensors_as_interactive(
    tmp_path,
):
    from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator
    from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor
    from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator

    export = SMSNexusToParquetOperator(task_id="export", path=str(tmp_path))
    campaign = SMSNexusBulkSendOperator(
        task_id="campaign", recipients=[], from_number="+12125550100", message_template="hi"
    )
    single = SMSNexusSendSmsOperator(
        task_id="one", from_number="+12125550100", to="+12125550101", message="hi"
    )
    sensor = SMSNexusBalanceSensor(task_id="balance", threshold=10)
    assert (export.hook.priority, campaign.hook.priority) == (BULK, BULK)
    assert (single.hook.priority, sensor.hook.priority) == (INTERACTIVE, INTERACTIVE)


# -- the stores under concurrent processes -----------------------------------------------------------------


def _count_refusals(kind: str, store: str, key: str, times: int) -> None:
    budget_store = open_store(BudgetSettings(kind=kind, store=store))
    for _ in range(times):
        budget_store.transact(key, lambda window: setattr(window, "refusals", window.refusals + 1))


@pytest.fixture(params=["host", "sql", "redis"])
def store_target(request, tmp_path):
    """``(kind, store)`` of a store of each kind (PostgreSQL's table is shared: tests use keys of their own)."""
    if request.param == "host":
        yield "host", str(tmp_path / "budget")
    elif request.param == "sql":
        yield "sql", request.getfixturevalue("postgres_url")
    else:
        try:
            with redis_server() as url:
                yield "redis", url
        except FileNotFoundError as exc:
            pytest.skip(str(exc))


@pytest.mark.slow
def test_a_store_loses_no_change_of_processes_and_threads_changing_one_window_at_once(store_target):
    kind, store = store_target
    key = f"https://h/api#{uuid.uuid4().hex}#read"
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_count_refusals, args=(kind, store, key, 150)) for _ in range(3)]
    threads = [threading.Thread(target=_count_refusals, args=(kind, store, key, 150)) for _ in range(2)]
    for worker in [*processes, *threads]:
        worker.start()
    for worker in [*processes, *threads]:
        worker.join(timeout=240)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    window = open_store(BudgetSettings(kind=kind, store=store)).transact(key, lambda w: w)
    assert window.refusals == 5 * 150


def test_sql_refuses_sqlite_and_names_the_host_budget_instead(tmp_path):
    with pytest.raises(SMSNexusError, match="use rate_budget=host"):
        open_store(BudgetSettings(kind="sql", store=f"sqlite:///{tmp_path / 'budget.db'}"))


# -- the hook with a shared budget ------------------------------------------------------------------------


def _shared_conn(monkeypatch, emulator, **extra: object) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_SHARED",
        emulator.connection_json(read_rate_limit=10, rate_limit_period=1, timeout=10, **extra),
    )


def test_a_hook_with_an_unreachable_store_paces_itself_alone_and_warns_once(
    monkeypatch, smsnexus_emulator, tmp_path, caplog, capfd
):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    _shared_conn(monkeypatch, smsnexus_emulator, rate_budget="host", rate_budget_store=str(not_a_directory))
    hook = SMSNexusHook("smsnexus_shared")
    caplog.set_level(logging.INFO)
    for _ in range(3):
        hook.get_balance()
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert logs.count("The shared rate budget cannot be reached") == 1
    assert "HostStore" in logs
    assert "FileExistsError" in logs
    assert hook.stats["requests"] == 3


def test_a_shared_budget_is_told_every_answer_and_frees_a_send_that_never_left(
    monkeypatch, smsnexus_emulator, tmp_path
):
    smsnexus_emulator.admin.set_limits(read_limit=10, window_seconds=1)
    _shared_conn(monkeypatch, smsnexus_emulator, rate_budget="host", rate_budget_store=str(tmp_path))
    hook = SMSNexusHook("smsnexus_shared")
    hook.get_balance()

    def refuse() -> None:
        raise RuntimeError("the ledger is down")

    with pytest.raises(RuntimeError, match="the ledger is down"):
        hook.send_sms("+12125550100", "+12125550101", "hello", before_send=refuse)
    budget = hook._driver.budget
    assert isinstance(budget, SharedBudget)
    store = HostStore(tmp_path)
    read = SharedWindow.from_json(store.path(budget.keys["read"]).read_bytes())
    send = SharedWindow.from_json(store.path(budget.keys["send"]).read_bytes())
    assert [slot[4] for slot in read.slots] == [False]  # answered
    assert read.remaining == 9
    assert read.reset_at is not None
    assert send.slots == []  # the send never left: its slot is free again
    assert smsnexus_emulator.admin.sent_messages() == []


def test_the_async_hook_reaches_its_shared_store_off_the_event_loop(monkeypatch, smsnexus_emulator, tmp_path):
    _shared_conn(monkeypatch, smsnexus_emulator, rate_budget="host", rate_budget_store=str(tmp_path))
    threads: set[int] = set()
    opened = open_store(BudgetSettings(kind="host", store=str(tmp_path)))

    class RecordingStore:
        def transact(self, key, change):
            threads.add(threading.get_ident())
            return opened.transact(key, change)

    monkeypatch.setattr(_budget_stores, "open_store", lambda settings: RecordingStore())
    hook = SMSNexusAsyncHook("smsnexus_shared")

    async def poll() -> int:
        await hook.get_balance()
        return threading.get_ident()

    loop_thread = asyncio.run(poll())
    assert threads
    assert loop_thread not in threads
    assert hook.stats["requests"] == 1


def test_a_sql_store_whose_table_was_dropped_creates_it_again_at_the_next_change(postgres_url):
    import sqlalchemy as sa

    table = f"smsnexus_rate_budget_{uuid.uuid4().hex[:12]}"  # its own: other tests share the default one
    engine = sa.create_engine(postgres_url)
    store = _budget_stores.SqlStore(engine, "test", table_name=table)
    drop = sa.text(f"DROP TABLE {table}")
    try:
        store.transact("https://h/api#k#send", lambda window: setattr(window, "refusals", 1))
        with engine.begin() as conn:
            conn.execute(drop)
        with pytest.raises(_budget_stores.StoreUnavailableError, match="ProgrammingError"):
            store.transact("https://h/api#k#send", lambda window: None)
        assert store.transact("https://h/api#k#send", lambda window: window.refusals) == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
