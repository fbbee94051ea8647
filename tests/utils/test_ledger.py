"""The send ledger: states, optimistic claims, durability across processes, SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.utils.ledger import (
    STATE_FAILED,
    STATE_PENDING,
    STATE_SENT,
    SendLedger,
    campaign_key,
    default_ledger_path,
)

CAMPAIGN = "dag.task.run"
TO = "+12125550100"
FROM = "+12125550101"


@pytest.fixture
def sqlite_ledger(tmp_path):
    with SendLedger.sqlite(tmp_path / "ledger.db") as ledger:
        yield ledger


@pytest.fixture
def postgres_ledger(postgres_conn_id):
    table = f"ledger_test_{uuid.uuid4().hex[:8]}"
    ledger = SendLedger.for_connection(postgres_conn_id, table_name=table)
    yield ledger
    ledger.table.drop(ledger.engine, checkfirst=True)
    ledger.close()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request):
    return request.getfixturevalue(f"{request.param}_ledger")


def test_a_new_row_goes_pending_then_sent(ledger):
    pending_at = ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None)
    assert pending_at is not None
    assert pending_at.tzinfo is not None
    (entry,) = ledger.entries(CAMPAIGN)
    assert (entry.state, entry.attempts, entry.from_number) == (STATE_PENDING, 1, FROM)
    assert abs((entry.pending_at - pending_at).total_seconds()) < 1

    ledger.mark_sent(CAMPAIGN, TO, "h1", message_id=42, credits=2)
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.message_id, entry.credits, entry.reason) == (STATE_SENT, "42", 2, None)
    assert entry.updated_at >= entry.created_at


def test_failed_rows_keep_their_reason_and_can_be_claimed_again(ledger):
    ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None)
    ledger.mark_failed(CAMPAIGN, TO, "h1", reason="422: to: invalid" + "x" * 5000)
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert entry.state == STATE_FAILED
    assert entry.reason.startswith("422: to: invalid")
    assert len(entry.reason) == 1000
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=entry.attempts) is not None
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.attempts, entry.reason) == (STATE_PENDING, 2, None)


def test_a_claim_fails_when_the_row_changed_since_it_was_read(ledger):
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None) is not None
    # A second process that also saw no row loses the race...
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None) is None
    # ... and one that read an older attempt count too.
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=0) is None
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=1) is not None


def test_a_sent_row_is_never_claimed_or_failed_again(ledger):
    ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None)
    ledger.mark_sent(CAMPAIGN, TO, "h1", message_id="7", credits=1)
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=1) is None
    ledger.mark_failed(CAMPAIGN, TO, "h1", reason="late failure")
    ledger.note_pending(CAMPAIGN, TO, "h1", reason="late note")
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.message_id, entry.reason) == (STATE_SENT, "7", None)


def test_note_pending_records_why_a_row_stays_pending(ledger):
    ledger.mark_pending(CAMPAIGN, TO, "h1", FROM, seen_attempts=None)
    ledger.note_pending(CAMPAIGN, TO, "h1", reason="outcome unknown: 500")
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.reason) == (STATE_PENDING, "outcome unknown: 500")


def test_mark_sent_creates_a_row_it_never_saw(ledger):
    ledger.mark_sent(CAMPAIGN, TO, "h1", message_id=9, credits=1, from_number=FROM)
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.message_id, entry.attempts) == (STATE_SENT, "9", 0)


def test_entries_are_per_campaign_and_filter_by_recipient(ledger):
    for campaign in (CAMPAIGN, "other"):
        for number in ("+12125550100", "+12125550101", "+12125550102"):
            ledger.mark_pending(campaign, number, "h", FROM, seen_attempts=None)
    assert len(ledger.entries(CAMPAIGN)) == 3
    found = ledger.entries(CAMPAIGN, ["+12125550101", "+12125550199"])
    assert [(e.campaign_id, e.recipient) for e in found] == [(CAMPAIGN, "+12125550101")]


def test_known_message_ids_spans_campaigns(ledger):
    ledger.mark_sent("a", TO, "h", message_id=1, credits=1)
    ledger.mark_sent("b", TO, "h", message_id=2, credits=1)
    assert ledger.known_message_ids(["1", 2, "3"]) == {"1", "2"}
    assert ledger.known_message_ids([]) == set()


def test_reading_an_absent_table_creates_nothing(tmp_path):
    with SendLedger.sqlite(tmp_path / "fresh.db") as ledger:
        assert ledger.entries(CAMPAIGN) == []
        assert ledger.get(CAMPAIGN, TO, "h") is None
        assert not ledger._table_exists()


def test_create_table_is_idempotent(ledger):
    ledger.create_table()
    ledger._table_ready = False
    ledger.create_table()
    assert ledger._table_exists()


def test_repr_shows_no_connection_url(tmp_path):
    with SendLedger.sqlite(tmp_path / "l.db") as ledger:
        assert repr(ledger) == "SendLedger(sqlite, table='smsnexus_send_ledger')"


def test_default_path_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / "smsnexus" / "send_ledger.db"
    ledger = SendLedger.for_connection(None)
    try:
        ledger.mark_pending(CAMPAIGN, TO, "h", FROM, seen_attempts=None)
    finally:
        ledger.close()
    assert (tmp_path / "smsnexus" / "send_ledger.db").exists()


def test_for_connection_needs_a_sql_connection(monkeypatch):
    from airflow_provider_smsnexus.exceptions import SMSNexusError

    monkeypatch.setenv(
        "AIRFLOW_CONN_NOT_SQL", '{"conn_type": "smsnexus", "host": "http://127.0.0.1:1/api", "password": "x"}'
    )
    with pytest.raises(SMSNexusError, match="no SQLAlchemy engine"):
        SendLedger.for_connection("not_sql")


def test_postgres_connection_uses_the_hooks_engine(postgres_ledger):
    assert postgres_ledger.engine.dialect.name == "postgresql"
    assert "postgresql" in repr(postgres_ledger)


def test_threads_share_one_ledger(ledger):
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                number = f"+1212555{worker:02d}{i:02d}"
                assert ledger.mark_pending(CAMPAIGN, number, "h", FROM, seen_attempts=None) is not None
                ledger.mark_sent(CAMPAIGN, number, "h", message_id=f"{worker}-{i}", credits=1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = ledger.entries(CAMPAIGN)
    assert len(entries) == 120
    assert {e.state for e in entries} == {STATE_SENT}


def _claim_all(path: str, numbers: list[str], results) -> None:
    """In a child process: try to claim every number once (as a racing worker would)."""
    ledger = SendLedger.sqlite(path)
    won = [n for n in numbers if ledger.mark_pending(CAMPAIGN, n, "h", FROM, seen_attempts=None)]
    results.put(won)
    ledger.close()


def test_racing_processes_never_both_claim_a_row(tmp_path):
    numbers = [f"+121255501{i:02d}" for i in range(40)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    path = str(tmp_path / "shared.db")
    SendLedger.sqlite(path).create_table()
    workers = [context.Process(target=_claim_all, args=(path, numbers, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    claimed = [number for batch in won for number in batch]
    assert sorted(claimed) == sorted(numbers)  # each row claimed exactly once across processes


def test_times_read_back_as_utc(sqlite_ledger):
    sqlite_ledger.mark_pending(CAMPAIGN, TO, "h", FROM, seen_attempts=None)
    entry = sqlite_ledger.get(CAMPAIGN, TO, "h")
    assert entry.pending_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - entry.pending_at).total_seconds()) < 60


def test_long_campaign_ids_are_stored_by_a_stable_key(ledger):
    long_id = "dag" * 100 + ".task." + "run" * 100
    other = long_id[:-1] + "X"
    ledger.mark_pending(long_id, TO, "h", FROM, seen_attempts=None)
    ledger.mark_sent(long_id, TO, "h", message_id=1, credits=1)
    (entry,) = ledger.entries(long_id)
    assert len(entry.campaign_id) == 250
    assert entry.campaign_id == campaign_key(long_id)
    assert ledger.get(long_id, TO, "h").state == STATE_SENT
    assert ledger.entries(other) == []
    assert campaign_key("short") == "short"
