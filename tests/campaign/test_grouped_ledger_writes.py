"""Grouped ledger writes: claims in batches, ``sent`` marks in groups; none of them weakens exactly once."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_CLAIMED, STATE_PENDING, STATE_SENT
from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, SENT, CampaignRow
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.campaign.sender import CampaignSender
from airflow_provider_smsnexus.hooks._clock import ServerClock

CAMPAIGN = "dag.task.grouped"
FROM = "+12125550100"
NUMBERS = [f"+121255501{i:02d}" for i in range(10, 16)]
LEASE = 30.0


class Clock:
    """A clock the test moves by hand, so that leases expire on an event, never after a sleep."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request, tmp_path, clock):
    if request.param == "sqlite":
        with SendLedger.sqlite(tmp_path / "ledger.db", clock=clock) as ledger:
            yield ledger
        return
    conn_id = request.getfixturevalue("postgres_conn_id")
    ledger = SendLedger.for_connection(conn_id, table_name=f"grouped_{uuid.uuid4().hex[:8]}", clock=clock)
    yield ledger
    ledger.table.drop(ledger.engine, checkfirst=True)
    ledger.close()


def table_rows(ledger: SendLedger) -> dict[str, Any]:
    """The table as the database holds it (read with plain SQL, not through the ledger's own reads)."""
    import sqlalchemy as sa

    with ledger.engine.connect() as conn:
        found = conn.execute(sa.select(ledger.table.c.recipient, ledger.table.c.state, ledger.table.c.lease_owner,
                                       ledger.table.c.message_id))  # fmt: skip
        return {r.recipient: r for r in found}


def items(*numbers: str) -> list[tuple[str, str, str]]:
    return [(number, "h", FROM) for number in numbers]


def test_a_batch_claim_leases_free_rows_and_skips_held_and_sent_ones(ledger, clock):
    a, b, c, d, e = NUMBERS[:5]
    assert ledger.claim_many(CAMPAIGN, items(b), owner="B", account="x", lease_seconds=LEASE)[0] is not None
    ledger.claim_many(CAMPAIGN, items(c, e), owner="A", account="x", lease_seconds=LEASE)
    assert ledger.mark_pending(CAMPAIGN, c, "h", owner="A") is not None
    assert ledger.mark_sent_many(CAMPAIGN, [(c, "h", 7, 1)], owner="A") == [True]
    assert ledger.mark_pending(CAMPAIGN, e, "h", owner="A") is not None  # then A dies: e stays pending
    clock.now += timedelta(seconds=LEASE + 1)
    assert ledger.claim_many(CAMPAIGN, items(b), owner="B2", account="x", lease_seconds=LEASE)[0] is not None

    got = ledger.claim_many(CAMPAIGN, items(a, b, c, d, e), owner="C", account="x", lease_seconds=LEASE)

    assert [entry is not None for entry in got] == [True, False, False, True, True]
    assert got[4].state == STATE_PENDING  # a dead owner's pending row: the claimer must settle it by lookup
    held = table_rows(ledger)
    assert {n: (held[n].state, held[n].lease_owner) for n in (a, b, d, e)} == {
        a: (STATE_CLAIMED, "C"),
        b: (STATE_CLAIMED, "B2"),
        d: (STATE_CLAIMED, "C"),
        e: (STATE_PENDING, "C"),
    }
    assert (held[c].state, held[c].message_id) == (STATE_SENT, "7")


def test_a_grouped_sent_commit_writes_only_rows_whose_lease_is_still_held(ledger, clock):
    a, b = NUMBERS[:2]
    ledger.claim_many(CAMPAIGN, items(a, b), owner="A", account="x", lease_seconds=LEASE)
    for number in (a, b):
        assert ledger.mark_pending(CAMPAIGN, number, "h", owner="A") is not None
    clock.now += timedelta(seconds=LEASE + 1)
    assert ledger.claim_many(CAMPAIGN, items(b), owner="B", account="x", lease_seconds=LEASE)[0] is not None
    ledger.renew("A", LEASE)  # an expired lease is never revived: A keeps nothing

    assert ledger.mark_sent_many(CAMPAIGN, [(a, "h", 1, 1), (b, "h", 2, 1)], owner="A") == [False, False]

    held = table_rows(ledger)
    assert {n: (held[n].state, held[n].message_id) for n in (a, b)} == {
        a: (STATE_PENDING, None),
        b: (STATE_PENDING, None),
    }
    assert held[b].lease_owner == "B"


def _batch_claim_all(url: str, table: str, owner: str, numbers: list[str], results) -> None:
    """In a child process: claim every number in batches of 7 (as a racing worker would)."""
    import sqlalchemy as sa

    ledger = SendLedger(sa.create_engine(url), table_name=table, owns_engine=True)
    won = []
    for start in range(0, len(numbers), 7):
        chunk = numbers[start : start + 7]
        got = ledger.claim_many(CAMPAIGN, items(*chunk), owner=owner, account="x", lease_seconds=LEASE)
        won += [number for number, entry in zip(chunk, got) if entry is not None]
    results.put(won)
    ledger.close()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_processes_claiming_in_batches_never_both_lease_a_row(tmp_path, request, database):
    import sqlalchemy as sa

    numbers = [f"+121255501{i:02d}" for i in range(40)]
    table = f"batchrace_{uuid.uuid4().hex[:8]}"
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
    setup = SendLedger(sa.create_engine(url), table_name=table, owns_engine=True)
    setup.create_table()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_batch_claim_all, args=(url, table, owner, order, results))
        for owner, order in (("P1", numbers), ("P2", list(reversed(numbers))))
    ]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    try:
        assert not set(won[0]) & set(won[1])
        assert set(won[0]) | set(won[1]) == set(numbers)  # complete: every row leased by one of them
        assert {r.lease_owner for r in table_rows(setup).values()} <= {"P1", "P2"}
    finally:
        setup.table.drop(setup.engine, checkfirst=True)
        setup.close()


class FakeServer:
    """The hook's surface the sender uses; ``created`` is the fake server's own record of what it stored."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(
            base_url="https://fake.invalid/api",
            token="SMSNEXUS-MOCK-SECRET-g",
            timeout=0.1,
            request_seconds=0.2,
            listing_delay=0,
        )
        self.session = object()
        self.server_clock = ServerClock()
        self.created: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def sends_per_second(self) -> float:
        return 0.0  # no limiter: the sender claims max_concurrency rows at once

    def get_balance(self) -> dict[str, Any]:
        """The one read that tells which server run answers (this fake names none)."""
        self.server_clock.answers += 1
        return {"credits": 10_000}

    def send_sms_attempts(self, from_number, to, message, media_url=None):
        yield  # the request is about to leave: the sender marks it pending
        with self._lock:
            created = {
                "id": 5000 + len(self.created), "from": from_number, "to": to, "body": message,
                "credits_used": 1, "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }  # fmt: skip
            self.created.append(created)
        return created

    def iter_messages(self, direction=None, start_date=None, end_date=None, **_):
        return [dict(m) for m in self.created]


class CrashBeforeGroupCommit(SendLedger):
    """A ledger whose grouped ``sent`` commit never happens (the process dies right before it)."""

    def mark_sent_many(self, *args: Any, **kwargs: Any) -> list[bool]:
        raise RuntimeError("the process died before the grouped commit")


def campaign_rows() -> list[CampaignRow]:
    body = "Your order ships today"
    return [
        CampaignRow(n, recipient=number, from_number=FROM, body=body, message_hash=message_hash(FROM, body))
        for n, number in enumerate(NUMBERS, start=1)
    ]


def test_rows_whose_grouped_sent_commit_was_lost_stay_pending_and_a_rerun_sends_none_again(tmp_path):
    server = FakeServer()
    log = logging.getLogger("test-grouped")
    # A short lease: the rerun waits out the dead attempt's fences before it looks their rows up.
    kwargs = {"log": log, "listing_delay": 0, "lease_seconds": 2}
    with CrashBeforeGroupCommit.sqlite(tmp_path / "ledger.db") as crashing:
        first = campaign_rows()
        CampaignSender(server, crashing, "c", owner="first", **kwargs).send_all(first)
        assert {row.outcome for row in first} == {SENT}  # the answers were held
        assert {r.state for r in table_rows(crashing).values()} == {STATE_PENDING}  # never marked sent

    with SendLedger.sqlite(tmp_path / "ledger.db") as ledger:
        rerun = campaign_rows()
        # The rerun finds each row pending when it claims it: it looks it up under its own lease.
        CampaignSender(server, ledger, "c", owner="rerun", **kwargs).send_all(rerun)
        held = table_rows(ledger)

    assert sorted(m["to"] for m in server.created) == sorted(NUMBERS)  # each texted exactly once
    assert {row.outcome for row in rerun} <= {SENT, ALREADY_SENT}
    by_recipient = {m["to"]: str(m["id"]) for m in server.created}
    assert {n: (held[n].state, held[n].message_id) for n in NUMBERS} == {
        n: (STATE_SENT, by_recipient[n]) for n in NUMBERS
    }


class DeadlockingBatch(SendLedger):
    """A ledger whose batch transaction meets a deadlock (the database rolls the whole batch back)."""

    def _claim_batch(self, *args: Any, **kwargs: Any) -> list[Any]:
        import sqlalchemy as sa

        raise sa.exc.OperationalError("UPDATE ...", {}, Exception("deadlock detected"))


def test_a_batch_claim_that_meets_a_deadlock_claims_one_row_at_a_time(tmp_path, clock):
    a, b = NUMBERS[:2]
    with DeadlockingBatch.sqlite(tmp_path / "ledger.db", clock=clock) as ledger:
        ledger.claim(CAMPAIGN, b, "h", owner="B", from_number=FROM, account="x", lease_seconds=LEASE)
        got = ledger.claim_many(CAMPAIGN, items(a, b), owner="A", account="x", lease_seconds=LEASE)
        held = table_rows(ledger)
    assert [entry is not None for entry in got] == [True, False]
    assert {n: held[n].lease_owner for n in (a, b)} == {a: "A", b: "B"}
