"""How the ledger runs its transactions: rows written on the DB-API connection read back as SQLAlchemy writes
them, a dropped connection is replaced, and the group commit of concurrent single writes."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_PENDING, STATE_SENT
from airflow_provider_smsnexus.campaign.ledger_transactions import GroupCommit

CAMPAIGN = "transactions"
FROM = "+12125550101"
NUMBERS = [f"+1212555{n:04d}" for n in range(110, 120)]
LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 8, 12, 0, 0, 123456, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class ThroughSQLAlchemy(SendLedger):
    """The ledger as it runs on a dialect whose driver it does not use directly: every statement through
    SQLAlchemy (the reference for how a row is stored)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, direct=False, **kwargs)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("psycopg", marks=pytest.mark.postgres),
    ]
)
def engines(request, tmp_path):
    """Two ledgers on one database, their own tables: one direct, one through SQLAlchemy only (PostgreSQL
    through an Airflow connection, whose engine uses psycopg2, and through psycopg 3)."""
    if request.param == "sqlite":
        direct = SendLedger.sqlite(tmp_path / "direct.db", clock=Clock())
        reference = ThroughSQLAlchemy.sqlite(tmp_path / "reference.db", clock=Clock())
        yield direct, reference
        direct.close()
        reference.close()
        return
    tag = uuid.uuid4().hex[:8]
    if request.param == "postgres":
        conn_id = request.getfixturevalue("postgres_conn_id")
        direct = SendLedger.for_connection(conn_id, table_name=f"direct_{tag}", clock=Clock())
        reference = ThroughSQLAlchemy.for_connection(conn_id, table_name=f"reference_{tag}", clock=Clock())
    else:
        import sqlalchemy as sa

        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://", 1)
        direct = SendLedger(sa.create_engine(url), table_name=f"direct_{tag}", clock=Clock())
        reference = ThroughSQLAlchemy(sa.create_engine(url), table_name=f"reference_{tag}", clock=Clock())
    yield direct, reference
    for ledger in (direct, reference):
        ledger.close()
        ledger.table.drop(ledger.engine, checkfirst=True)
        ledger.engine.dispose()


def stored(ledger: SendLedger) -> list[tuple]:
    """The table's rows as the database holds them (a plain query; SQLite's datetimes are text)."""
    import sqlalchemy as sa

    table = ledger.engine.dialect.identifier_preparer.format_table(ledger.table)
    with ledger.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}")))


def write_the_same_story(ledger: SendLedger) -> None:
    """Claims in a batch, pending marks with every column they set, a sent mark, a failed and an unknown row."""
    items = [(number, "h", FROM) for number in NUMBERS[:4]]
    assert all(ledger.claim_many(CAMPAIGN, items, owner="A", account="acct", lease_seconds=LEASE))
    at = datetime(2026, 3, 8, 11, 59, 58, 654321, tzinfo=timezone.utc)
    for number in NUMBERS[:4]:
        mark = ledger.mark_pending(
            CAMPAIGN, number, "h", owner="A", server_at=at, uncertainty=0.25, foreign_ids=["9", "10"]
        )
        assert mark is not None
    assert ledger.mark_sent_many(CAMPAIGN, [(NUMBERS[0], "h", 4242, 2)], owner="A") == [True]
    assert ledger.mark_failed(CAMPAIGN, NUMBERS[1], "h", owner="A", reason="refused: 422")
    assert ledger.note_unknown(CAMPAIGN, NUMBERS[2], "h", owner="A", reason="two candidates", ambiguous=True)
    # A second batch over rows that exist: the failed one is taken again, the sent and unknown ones are not.
    again = ledger.claim_many(CAMPAIGN, items, owner="A", account="acct", lease_seconds=LEASE)
    assert [entry is not None for entry in again] == [False, True, False, True]


def test_rows_written_on_the_dbapi_connection_are_stored_exactly_as_through_sqlalchemy(engines):
    direct, reference = engines
    for ledger in engines:
        write_the_same_story(ledger)
    assert stored(direct) == stored(reference)
    assert len(stored(direct)) == 4
    # And they read back through SQLAlchemy as written: aware datetimes, the float, the ids.
    entry = direct.get(CAMPAIGN, NUMBERS[3], "h")
    assert entry.state == STATE_PENDING
    assert entry.pending_server_at == datetime(2026, 3, 8, 11, 59, 58, 654321, tzinfo=timezone.utc)
    assert entry.pending_uncertainty == 0.25
    assert entry.foreign_ids == {"9", "10"}
    assert entry.lease_expires_at == direct.clock() + timedelta(seconds=LEASE)
    sent = direct.get(CAMPAIGN, NUMBERS[0], "h")
    assert (sent.state, sent.message_id, sent.credits, sent.lease_expires_at) == (STATE_SENT, "4242", 2, None)


def test_a_batch_claim_returns_each_existing_row_as_the_table_holds_it(engines):
    direct, _ = engines
    write_the_same_story(direct)
    items = [(number, "h", FROM) for number in NUMBERS[:4]]
    returned = direct.claim_many(CAMPAIGN, items, owner="A", account="acct", lease_seconds=LEASE)
    assert returned[0] is None  # sent
    assert returned[2] is None  # unknown
    assert [returned[1], returned[3]] == [direct.get(CAMPAIGN, NUMBERS[n], "h") for n in (1, 3)]


@pytest.mark.postgres
def test_a_connection_the_database_dropped_is_replaced_and_the_write_is_made_once(postgres_conn_id):
    import sqlalchemy as sa

    ledger = SendLedger.for_connection(postgres_conn_id, table_name=f"dropped_{uuid.uuid4().hex[:8]}")
    try:
        ledger.claim_many(CAMPAIGN, [(NUMBERS[0], "h", FROM)], owner="A", account="a", lease_seconds=LEASE)
        # The connection the ledger keeps for its writes.
        held = ledger.transactions.direct._pooled.driver_connection
        pid = held.info.backend_pid if hasattr(held, "info") else held.get_backend_pid()
        with ledger.engine.connect() as conn:  # the server ends it (a restart, an idle timeout)
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        assert ledger.mark_pending(CAMPAIGN, NUMBERS[0], "h", owner="A") is not None
        entry = ledger.get(CAMPAIGN, NUMBERS[0], "h")
        assert (entry.state, entry.attempts) == (STATE_PENDING, 1)
        assert ledger.transactions.direct._pooled.driver_connection is not held
    finally:
        ledger.close()
        ledger.table.drop(ledger.engine, checkfirst=True)
        ledger.engine.dispose()


def test_pending_marks_committed_in_a_group_are_each_durable_when_their_call_returns(tmp_path):
    import sqlite3

    path = tmp_path / "ledger.db"
    ledger = SendLedger.sqlite(path)
    items = [(number, "h", FROM) for number in NUMBERS[:4]]
    assert all(ledger.claim_many(CAMPAIGN, items, owner="A", account="a", lease_seconds=LEASE))
    seen: dict[str, str] = {}

    def mark(number: str) -> None:
        assert ledger.mark_pending(CAMPAIGN, number, "h", owner="A") is not None
        # Right after the call returns (when the request would leave), another connection reads it.
        with sqlite3.connect(path) as other:
            query = "SELECT state FROM smsnexus_send_ledger WHERE recipient = ?"
            seen[number] = other.execute(query, (number,)).fetchone()[0]

    group = ledger.transactions.group_commit
    threads = [threading.Thread(target=mark, args=(number,)) for number in NUMBERS[:4]]
    # The database is busy: the first mark waits inside, the others queue up.
    with ledger.transactions.write_lock:
        threads[0].start()
        assert wait_until(lambda: group._busy and not group._queue)
        for thread in threads[1:]:
            thread.start()
        assert wait_until(lambda: len(group._queue) == 3)
    for thread in threads:
        thread.join(10)
    ledger.close()
    assert seen == dict.fromkeys(NUMBERS[:4], STATE_PENDING)


# -- the group commit on its own -------------------------------------------------------------------------


class RecordingDatabase:
    """Stands for the database: records each transaction it commits; the first one waits for ``gate``."""

    def __init__(self, fail_with: str | None = None) -> None:
        self.transactions: list[list[str]] = []
        self.committed: set[str] = set()
        self.gate = threading.Event()
        self.inside = threading.Event()
        self.fail_with = fail_with

    def run(self, writes):
        names = [write[0] for write in writes]
        if not self.transactions and not self.inside.is_set():
            self.inside.set()
            self.gate.wait(10)
        if self.fail_with in names and len(names) > 1:
            raise RuntimeError(f"{self.fail_with} broke the transaction")
        if names == [self.fail_with]:
            raise RuntimeError(f"{self.fail_with} is refused")
        self.transactions.append(names)
        self.committed.update(names)
        return [1] * len(names)


def submit_in_threads(
    commit: GroupCommit, database: RecordingDatabase, names: list[str]
) -> dict[str, object]:
    """The first name's write enters the database and waits; the others are submitted meanwhile."""
    outcomes: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            counts = commit.submit([(name, {}, (name,))])
            # When submit returns, this caller's write is committed (as the database records it).
            outcomes[name] = ("committed" if name in database.committed else "returned early", counts)
        except Exception as exc:
            outcomes[name] = exc

    first = threading.Thread(target=submit, args=(names[0],))
    first.start()
    assert database.inside.wait(10)
    others = [threading.Thread(target=submit, args=(name,)) for name in names[1:]]
    for thread in others:
        thread.start()
    assert wait_until(lambda: len(commit._queue) == len(others))  # all queued behind the first commit
    database.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcomes


def wait_until(condition, timeout: float = 10) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


def test_writes_submitted_during_a_commit_share_the_next_one_and_each_caller_returns_after_its_own():
    database = RecordingDatabase()
    outcomes = submit_in_threads(GroupCommit(database.run), database, ["a", "d", "b", "c"])
    # The first alone (it did not wait for company), then the three that queued meanwhile, in key order.
    assert database.transactions == [["a"], ["b", "c", "d"]]
    assert outcomes == {name: ("committed", [1]) for name in "abcd"}


def test_a_write_that_breaks_its_group_fails_alone_and_the_others_are_committed():
    database = RecordingDatabase(fail_with="c")
    outcomes = submit_in_threads(GroupCommit(database.run), database, ["a", "b", "c", "d"])
    assert database.committed == {"a", "b", "d"}
    assert isinstance(outcomes.pop("c"), RuntimeError)
    assert outcomes == {name: ("committed", [1]) for name in "abd"}
