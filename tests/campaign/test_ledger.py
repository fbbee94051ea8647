"""The send ledger: states, leased claims, fenced writes, schema upgrades, SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import (
    STATE_CLAIMED,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SENT,
    STATE_UNKNOWN,
    UPGRADE_COLUMNS,
    campaign_key,
    default_ledger_path,
)

CAMPAIGN = "dag.task.run"
TO = "+12125550100"
FROM = "+12125550101"
LEASE = 30.0
ACCOUNT = "acct-a"


class Clock:
    """A clock the test moves by hand, so that leases expire on an event, never after a sleep."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqlite_ledger(tmp_path, clock):
    with SendLedger.sqlite(tmp_path / "ledger.db", clock=clock) as ledger:
        yield ledger


@pytest.fixture
def postgres_ledger(postgres_conn_id, clock):
    table = f"ledger_test_{uuid.uuid4().hex[:8]}"
    ledger = SendLedger.for_connection(postgres_conn_id, table_name=table, clock=clock)
    yield ledger
    ledger.table.drop(ledger.engine, checkfirst=True)
    ledger.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request):
    return request.getfixturevalue(f"{request.param}_ledger")


def claim(ledger, owner="A", recipient=TO, digest="h1", campaign=CAMPAIGN, account=ACCOUNT):
    return ledger.claim(
        campaign, recipient, digest, owner=owner, from_number=FROM, account=account, lease_seconds=LEASE
    )


def test_a_row_goes_claimed_pending_sent_under_one_owner(ledger, clock):
    entry = claim(ledger)
    assert (entry.state, entry.attempts, entry.lease_owner) == (STATE_CLAIMED, 0, "A")
    assert entry.lease_expires_at == clock.now + timedelta(seconds=LEASE)
    server = clock.now - timedelta(minutes=5)
    mark = ledger.mark_pending(
        CAMPAIGN, TO, "h1", owner="A", server_at=server, uncertainty=0.25, foreign_ids={"9"}
    )
    assert mark == clock.now
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.attempts, entry.pending_server_at, entry.pending_uncertainty) == (
        STATE_PENDING,
        1,
        server,
        0.25,
    )
    assert entry.foreign_ids == {"9"}
    assert ledger.mark_sent(CAMPAIGN, TO, "h1", owner="A", message_id=42, credits=2)
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.message_id, entry.credits, entry.lease_expires_at) == (
        STATE_SENT,
        "42",
        2,
        None,
    )


def test_a_live_lease_keeps_every_other_owner_out(ledger, clock):
    claim(ledger, "A")
    assert claim(ledger, "B") is None
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", owner="B") is None
    assert not ledger.mark_sent(CAMPAIGN, TO, "h1", owner="B", message_id=1, credits=1)
    assert not ledger.mark_failed(CAMPAIGN, TO, "h1", owner="B", reason="x")
    assert not ledger.note_unknown(CAMPAIGN, TO, "h1", owner="B", reason="x")
    assert ledger.get(CAMPAIGN, TO, "h1").state == STATE_CLAIMED
    assert claim(ledger, "A") is not None  # the owner's own claim is renewed


def test_an_expired_lease_is_taken_over_and_the_zombie_can_no_longer_write(ledger, clock):
    claim(ledger, "A")
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", owner="A") is not None
    clock.advance(LEASE + 1)
    taken = claim(ledger, "B")
    assert (taken.state, taken.lease_owner, taken.attempts) == (
        STATE_PENDING,
        "B",
        1,
    )  # B must settle it first
    # A wakes up: it can neither mark the row pending (so it sends nothing) nor record an outcome.
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", owner="A") is None
    assert not ledger.mark_sent(CAMPAIGN, TO, "h1", owner="A", message_id=1, credits=1)
    assert ledger.renew("A", LEASE) == 0
    assert ledger.get(CAMPAIGN, TO, "h1").lease_owner == "B"


def test_renew_extends_live_leases_in_one_update_and_never_revives_an_expired_one(ledger, clock):
    for number in ("+12125550110", "+12125550111"):
        claim(ledger, "A", recipient=number)
    clock.advance(LEASE - 1)
    assert ledger.renew("A", LEASE) == 2
    clock.advance(LEASE - 1)
    assert claim(ledger, "B", recipient="+12125550110") is None  # renewed: still A's
    clock.advance(2)
    assert ledger.renew("A", LEASE) == 0  # expired: gone for good
    assert claim(ledger, "B", recipient="+12125550110").lease_owner == "B"


def test_release_frees_the_rows_at_once(ledger):
    claim(ledger, "A")
    assert ledger.release("A") == 1
    assert claim(ledger, "B").lease_owner == "B"


def test_failed_rows_keep_their_reason_and_can_be_claimed_again(ledger):
    claim(ledger, "A")
    ledger.mark_pending(CAMPAIGN, TO, "h1", owner="A")
    assert ledger.mark_failed(CAMPAIGN, TO, "h1", owner="A", reason="422: to: invalid" + "x" * 5000)
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert entry.state == STATE_FAILED
    assert entry.reason.startswith("422: to: invalid")
    assert len(entry.reason) == 1000
    assert claim(ledger, "B").state == STATE_FAILED  # the lease ended with the failure
    assert ledger.mark_pending(CAMPAIGN, TO, "h1", owner="B") is not None
    entry = ledger.get(CAMPAIGN, TO, "h1")
    assert (entry.state, entry.attempts, entry.reason) == (STATE_PENDING, 2, None)


def test_sent_and_unknown_rows_are_never_claimed_again(ledger):
    claim(ledger, "A")
    ledger.mark_sent(CAMPAIGN, TO, "h1", owner="A", message_id="7", credits=1)
    assert claim(ledger, "A") is None
    assert not ledger.mark_failed(CAMPAIGN, TO, "h1", owner="A", reason="late failure")
    assert (ledger.get(CAMPAIGN, TO, "h1").state, ledger.get(CAMPAIGN, TO, "h1").message_id) == (
        STATE_SENT,
        "7",
    )
    claim(ledger, "A", digest="h2")
    assert ledger.note_unknown(CAMPAIGN, TO, "h2", owner="A", reason="two candidates", ambiguous=True)
    assert ledger.release("A") == 1
    assert claim(ledger, "B", digest="h2") is None
    assert ledger.get(CAMPAIGN, TO, "h2").state == STATE_UNKNOWN


def test_known_message_ids_are_scoped_by_account(ledger):
    claim(ledger, "A", campaign="a", account="acct-a")
    ledger.mark_sent("a", TO, "h1", owner="A", message_id=1, credits=1)
    claim(ledger, "A", campaign="b", account="acct-b")
    ledger.mark_sent("b", TO, "h1", owner="A", message_id=2, credits=1)
    assert ledger.known_message_ids(["1", 2, "3"], account="acct-a") == {"1"}
    assert ledger.known_message_ids(["1", 2, "3"], account="acct-b") == {"2"}
    assert ledger.known_message_ids([], account="acct-a") == set()


def test_entries_are_per_campaign_and_filter_by_recipient(ledger):
    for campaign in (CAMPAIGN, "other"):
        for number in ("+12125550100", "+12125550101", "+12125550102"):
            claim(ledger, "A", recipient=number, campaign=campaign)
    assert len(ledger.entries(CAMPAIGN)) == 3
    found = ledger.entries(CAMPAIGN, ["+12125550101", "+12125550199"])
    assert [(e.campaign_id, e.recipient) for e in found] == [(CAMPAIGN, "+12125550101")]


def test_an_old_schema_table_is_upgraded_in_place_and_keeps_its_rows(ledger):
    import sqlalchemy as sa

    table = ledger.table
    old = sa.Table(
        table.name,
        sa.MetaData(schema=table.schema),
        *[
            sa.Column(c.name, c.type, primary_key=c.primary_key)
            for c in table.columns
            if c.name not in UPGRADE_COLUMNS
        ],
    )
    old.create(ledger.engine)
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    with ledger.engine.begin() as conn:
        conn.execute(
            old.insert().values(
                campaign_id=CAMPAIGN, recipient=TO, message_hash="old", state="sent", message_id="5",
                attempts=1, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    (entry,) = ledger.entries(CAMPAIGN)  # reading an older table upgrades it first
    assert (entry.state, entry.message_id, entry.lease_owner, entry.account) == (STATE_SENT, "5", None, None)
    columns = {c["name"] for c in sa.inspect(ledger.engine).get_columns(table.name, table.schema)}
    assert set(UPGRADE_COLUMNS) <= columns
    assert claim(ledger, "A", digest="new").state == STATE_CLAIMED


def test_reading_an_absent_table_creates_nothing(tmp_path):
    import sqlalchemy as sa

    ledger = SendLedger.sqlite(tmp_path / "ledger.db")
    assert ledger.entries(CAMPAIGN) == []
    assert ledger.get(CAMPAIGN, TO, "h") is None
    assert not sa.inspect(ledger.engine).has_table(ledger.table.name)


def test_repr_shows_no_connection_url(tmp_path):
    assert repr(SendLedger.sqlite(tmp_path / "x.db")) == "SendLedger(sqlite, table='smsnexus_send_ledger')"


def test_default_path_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / "smsnexus" / "send_ledger.db"


def test_for_connection_needs_a_sql_connection(monkeypatch):
    from airflow_provider_smsnexus.exceptions import SMSNexusError

    monkeypatch.setenv(
        "AIRFLOW_CONN_NOT_SQL", '{"conn_type": "smsnexus", "password": "SMSNEXUS-MOCK-SECRET-x"}'
    )
    with pytest.raises(SMSNexusError, match="gives no SQLAlchemy engine"):
        SendLedger.for_connection("not_sql")


def test_threads_share_one_ledger(ledger):
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                number = f"+1212555{worker:02d}{i:02d}"
                assert claim(ledger, f"w{worker}", recipient=number) is not None
                assert ledger.mark_pending(CAMPAIGN, number, "h1", owner=f"w{worker}") is not None
                assert ledger.mark_sent(
                    CAMPAIGN, number, "h1", owner=f"w{worker}", message_id=f"{worker}-{i}", credits=1
                )
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


def _claim_all(url: str, table: str, owner: str, numbers: list[str], results) -> None:
    """In a child process: try to claim every number once (as a racing worker would)."""
    import sqlalchemy as sa

    ledger = SendLedger(sa.create_engine(url), table_name=table, owns_engine=True)
    won = [
        n
        for n in numbers
        if ledger.claim(CAMPAIGN, n, "h", owner=owner, from_number=FROM, account=ACCOUNT, lease_seconds=LEASE)
    ]
    results.put(won)
    ledger.close()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_processes_never_both_claim_a_row(tmp_path, request, database):
    import sqlalchemy as sa

    numbers = [f"+121255501{i:02d}" for i in range(40)]
    table = f"race_{uuid.uuid4().hex[:8]}"
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
    setup = SendLedger(sa.create_engine(url), table_name=table, owns_engine=True)
    setup.create_table()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(url, table, f"p{n}", numbers, results)) for n in range(3)
    ]
    try:
        for worker in workers:
            worker.start()
        won = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        claimed = [number for batch in won for number in batch]
        assert sorted(claimed) == sorted(numbers)  # each row claimed exactly once across processes
        owners = {e.recipient: e.lease_owner for e in setup.entries(CAMPAIGN)}
        assert len(owners) == 40
    finally:
        setup.table.drop(setup.engine, checkfirst=True)
        setup.close()


def test_long_campaign_ids_are_stored_by_a_stable_key(ledger):
    long_id = "dag" * 100 + ".task." + "run" * 100
    other = long_id[:-1] + "X"
    claim(ledger, "A", campaign=long_id)
    ledger.mark_sent(long_id, TO, "h1", owner="A", message_id=1, credits=1)
    (entry,) = ledger.entries(long_id)
    assert len(entry.campaign_id) == 250
    assert entry.campaign_id == campaign_key(long_id)
    assert ledger.get(long_id, TO, "h1").state == STATE_SENT
    assert ledger.entries(other) == []
    assert campaign_key("short") == "short"
