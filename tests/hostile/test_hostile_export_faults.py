"""Exports of 20,000 messages while pages fail (500s before processing; 429s because another client spends
the same account's budget) and live traffic pushes rows onto later pages: the destination holds exactly
the window's ids, each once."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator
from tests.hostile.hostile_support import no_token

if TYPE_CHECKING:
    from collections.abc import Callable

MESSAGES = 20_000
DAYS = 10


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seed(admin) -> datetime:
    now = datetime.now(timezone.utc)
    first = (now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    admin.seed_messages(MESSAGES, random_seed=20, start=first, end=now - timedelta(minutes=1))
    return first


def seeded_ids(admin) -> list[int]:
    """The expected export: every seeded message. All were created before the export started, and live
    traffic only after it started (while it pages), so the emulator's record decides, not the run's XCom."""
    return sorted(m["id"] for m in admin.messages(origin="seed"))


@contextmanager
def noisy_neighbour(emulator, until: Callable[[], bool]):
    """Another client of the same account that spends the whole read budget of every window, as fast as it
    can, until ``until()`` holds (then it leaves the account to the export)."""
    import requests

    stop = threading.Event()

    def drain() -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {emulator.token}"
        while not stop.is_set() and not until():
            session.get(f"{emulator.base_url}/balance", timeout=10)
        session.close()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def check_exact(figures, exported: list[int], expected: list[int]) -> None:
    duplicates = len(exported) - len(set(exported))
    lost = len(set(expected) - set(exported))
    extra = len(set(exported) - set(expected))
    figures.add("duplicates_found", duplicates)
    figures.add("messages_lost", lost)
    figures.add("export_rows_outside_window", extra)
    figures.add("export_rows_through_faults", len(exported))
    figures.add("exports_through_faults")
    assert (duplicates, lost, extra) == (0, 0, 0)


@pytest.mark.slow
def test_a_parquet_export_of_20000_messages_through_page_faults_and_live_traffic_is_exact(
    smsnexus_emulator, smsnexus_conn, tmp_path, figures
):
    import pyarrow.dataset as ds

    admin = smsnexus_emulator.admin
    first = seed(admin)
    admin.set_faults(fail_before_share=0.1, live_traffic_per_list=5, latency_jitter_ms=3, random_seed=21)
    # The window starts inside the first day: widened to whole days, it covers every seeded message.
    operator = SMSNexusToParquetOperator(
        task_id="export", path=str(tmp_path / "messages"), window_start=first + timedelta(hours=5)
    )
    result = operator.execute({})
    assert no_token(figures, result)

    exported = ds.dataset(str(tmp_path / "messages"), format="parquet", partitioning="hive")
    exported_ids = exported.to_table(columns=["id"]).column("id").to_pylist()
    expected = seeded_ids(admin)
    assert len(expected) == MESSAGES
    check_exact(figures, exported_ids, expected)
    assert len(admin.messages(origin="live")) > 5 * 100  # live traffic arrived throughout
    assert admin.stats()["faults"]["fail_before"] > 10
    figures.add("faults_injected_export", admin.stats()["faults"]["fail_before"])


READ_LIMIT = 20  # reads per 1-second window


@pytest.mark.slow
def test_a_postgres_export_of_20000_messages_through_500s_429s_and_live_traffic_is_exact(
    smsnexus_emulator, postgres_conn_id, monkeypatch, figures
):
    import sqlalchemy as sa
    from airflow.sdk import BaseHook

    admin = smsnexus_emulator.admin
    seed(admin)
    # The server allows 20 reads per 1-second window, so the export's 200 pages span at least ten windows; another
    # client of the account races it for each window's budget until the export has been refused three times.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            retry_backoff=0.01,
            retry_backoff_max=0.05,
            read_rate_limit=1000,
            rate_limit_period=1,
            max_retries=8,
        ),
    )
    admin.set_limits(read_limit=READ_LIMIT, window_seconds=1)
    admin.set_faults(fail_before_share=0.1, live_traffic_per_list=5, random_seed=22)
    table = f"hostile_export_{uuid.uuid4().hex[:8]}"
    engine = BaseHook.get_connection(postgres_conn_id).get_hook().get_sqlalchemy_engine()
    try:
        operator = SMSNexusToSqlOperator(task_id="export", sql_conn_id=postgres_conn_id, table=table)
        with noisy_neighbour(smsnexus_emulator, until=lambda: operator.hook.stats["rate_limited"] >= 3):
            result = operator.execute({})  # the whole history up to the task's start
        assert no_token(figures, result)
        with engine.connect() as conn:
            exported_ids = [row[0] for row in conn.execute(sa.text(f'SELECT id FROM "{table}"'))]
        check_exact(figures, exported_ids, seeded_ids(admin))
        stats = admin.stats()
        refused = operator.hook.stats["rate_limited"]
        assert refused >= 3, f"the scenario did not happen: the export was refused {refused} times, not 3"
        assert stats["max_in_window"]["other"] <= READ_LIMIT
        figures.add("rate_limited_429s_export", operator.hook.stats["rate_limited"])
        figures.add("faults_injected_export", stats["faults"]["fail_before"])
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()
