"""The sender and its leases on their own: a fake transport (a stand-in for the hook) and an SQLite ledger.

The fake transport records every request that "left"; each test asserts on that record."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_SENT, STATE_UNKNOWN
from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, FAILED, SENT, UNKNOWN, CampaignRow
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.campaign.sender import CampaignSender
from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError, SMSNexusServerError
from airflow_provider_smsnexus.hooks._clock import ServerClock

SENDER = "+12125550100"
LOG = logging.getLogger("test-sender")


class FakeTransport:
    """The hook's surface the sender uses. ``server`` holds the messages the fake server created."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(
            base_url="https://fake.invalid/api",
            token="SMSNEXUS-MOCK-SECRET-t",
            timeout=0.1,
            request_seconds=0.2,
            listing_delay=0,
        )
        self.session = object()
        self.server_clock = ServerClock()  # never fed: the sender falls back on clock_skew
        self.server: list[dict[str, Any]] = []
        self.left: list[str] = []  # recipients whose request left the machine, in order
        self.plan: dict[str, list[str]] = {}  # recipient -> what the next sends do: ok, lost, refused
        self.gate: dict[str, threading.Event] = {}  # recipient -> wait for this before the request leaves
        self.waiting: dict[str, threading.Event] = {}
        self._ids = iter(range(1000, 10_000))
        self._lock = threading.Lock()

    def sends_per_second(self) -> float:
        return 0.0  # no limiter: the sender claims max_concurrency rows at once

    def get_balance(self) -> dict[str, Any]:
        """The one read that tells which server run answers (this fake names none)."""
        self.server_clock.answers += 1
        return {"credits": 10_000}

    def create(self, to: str, body: str, created: datetime | None = None) -> dict[str, Any]:
        with self._lock:
            message = {
                "id": next(self._ids),
                "from": SENDER,
                "to": to,
                "body": body,
                "credits_used": 1,
                "created_at": (created or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self.server.append(message)
        return message

    def send_sms_attempts(self, from_number, to, message, media_url=None):
        if to in self.gate:
            self.waiting.setdefault(to, threading.Event()).set()
            self.gate[to].wait(10)
        step = (self.plan.get(to) or ["ok"]).pop(0)
        if step == "refused":  # provably never left: connection refused
            raise SMSNexusServerError("POST /api/sms/send: no answer (ConnectionError)")
        yield  # the request is about to leave: the sender marks it pending
        self.left.append(to)
        created = self.create(to, message)
        if step == "lost":
            raise SMSNexusSendOutcomeUnknownError("no answer after the request was sent")
        return created

    def iter_messages(self, direction=None, start_date=None, end_date=None, **_):
        return [dict(m) for m in self.server]


def rows(*numbers: str, body: str = "Hi") -> list[CampaignRow]:
    return [
        CampaignRow(
            n, recipient=number, from_number=SENDER, body=body, message_hash=message_hash(SENDER, body)
        )
        for n, number in enumerate(numbers, start=1)
    ]


@pytest.fixture
def ledger(tmp_path):
    with SendLedger.sqlite(tmp_path / "ledger.db") as ledger:
        yield ledger


def sender(transport, ledger, owner, **kwargs) -> CampaignSender:
    kwargs.setdefault("listing_delay", 0)
    return CampaignSender(transport, ledger, "c", log=LOG, owner=owner, **kwargs)


def test_each_row_is_marked_pending_only_when_its_request_leaves(ledger):
    transport = FakeTransport()
    seen = []

    def before_send_spy(from_number, to, message, media_url=None):
        entry = ledger.get("c", to, message_hash(SENDER, message))
        seen.append(entry.state)  # claimed, not pending, while it waits
        return FakeTransport.send_sms_attempts(transport, from_number, to, message, media_url)

    transport.send_sms_attempts = before_send_spy
    batch = rows("+12125550110", "+12125550111")
    sender(transport, ledger, "A").send_all(batch)
    assert seen == ["claimed", "claimed"]
    assert transport.left == ["+12125550110", "+12125550111"]
    assert [e.state for e in ledger.entries("c")] == [STATE_SENT, STATE_SENT]
    assert [row.outcome for row in batch] == [SENT, SENT]


def test_a_lost_answer_is_found_by_lookup_and_not_sent_again(ledger):
    transport = FakeTransport()
    transport.plan["+12125550110"] = ["lost"]
    batch = rows("+12125550110")
    sender(transport, ledger, "A").send_all(batch)
    assert transport.left == ["+12125550110"]
    assert (batch[0].outcome, batch[0].message_id) == (SENT, str(transport.server[0]["id"]))


def test_a_request_that_never_left_is_failed_not_looked_up(ledger):
    transport = FakeTransport()
    transport.plan["+12125550110"] = ["refused"]
    batch = rows("+12125550110")
    run = sender(transport, ledger, "A")
    run.send_all(batch)
    assert transport.left == []
    assert batch[0].outcome == FAILED
    assert ledger.get("c", *batch[0].key).state == "failed"


def test_a_message_with_the_same_text_sent_before_the_mark_is_never_adopted(ledger):
    transport = FakeTransport()
    earlier = transport.create("+12125550110", "Hi")  # e.g. the notifier, a moment before
    transport.plan["+12125550110"] = ["lost"]
    batch = rows("+12125550110")
    sender(transport, ledger, "A").send_all(batch)
    ours = [m for m in transport.server if m["id"] != earlier["id"]]
    assert len(ours) == 1
    assert batch[0].message_id == str(ours[0]["id"])


def test_two_candidates_leave_the_row_unknown_and_it_is_never_resent(ledger):
    transport = FakeTransport()
    transport.plan["+12125550110"] = ["lost"]
    original = transport.send_sms_attempts

    def send_and_someone_else_too(*args, **kwargs):
        try:
            return (yield from original(*args, **kwargs))
        finally:
            transport.create("+12125550110", "Hi")  # the same text from elsewhere, while ours was in flight

    transport.send_sms_attempts = send_and_someone_else_too
    batch = rows("+12125550110")
    sender(transport, ledger, "A").send_all(batch)
    assert batch[0].outcome == UNKNOWN
    assert "cannot tell which" in batch[0].reason
    assert ledger.get("c", *batch[0].key).state == STATE_UNKNOWN
    # A rerun does not resend it either.
    transport.send_sms_attempts = original
    again = rows("+12125550110")
    rerun = sender(transport, ledger, "B")
    rerun.load_ledger(again)
    rerun.send_all(again)
    assert again[0].outcome == UNKNOWN
    assert transport.left == ["+12125550110"]


def test_a_row_waiting_longer_than_its_lease_stays_its_owners(ledger):
    transport = FakeTransport()
    transport.gate["+12125550110"] = threading.Event()
    first = rows("+12125550110")
    owner = sender(transport, ledger, "A", lease_seconds=0.6)
    thread = threading.Thread(target=owner.send_all, args=(first,))
    thread.start()
    transport.waiting.setdefault("+12125550110", threading.Event()).wait(10)  # A holds it, in its "limiter"
    second = rows("+12125550110")
    other = sender(transport, ledger, "B", lease_seconds=0.6, lease_wait_seconds=30)
    waiter = threading.Thread(target=other.send_all, args=(second,))
    waiter.start()
    # B found the row leased; it must wait for several of A's lease periods without touching it.
    assert wait_until(lambda: owner_beats(ledger) >= 3)
    assert transport.left == []
    transport.gate["+12125550110"].set()
    thread.join(10)
    waiter.join(30)
    assert transport.left == ["+12125550110"]
    assert first[0].outcome == SENT
    assert (second[0].outcome, second[0].reason) == (ALREADY_SENT, "sent by another attempt of this campaign")


def owner_beats(ledger) -> int:
    """How many times A's lease moved forward (its heartbeat), read from the ledger's own record."""
    (entry,) = ledger.entries("c")
    seen = _beats.setdefault(id(ledger), set())
    seen.add(entry.lease_expires_at)
    return len(seen) - 1


_beats: dict[int, set] = {}


def wait_until(condition, timeout: float = 20) -> bool:
    done = threading.Event()
    deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
    while datetime.now(timezone.utc) < deadline:
        if condition():
            return True
        done.wait(0.05)
    return condition()


def test_a_zombie_whose_lease_was_taken_over_can_neither_send_nor_mark(tmp_path):
    clock = [datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)]
    ledger = SendLedger.sqlite(tmp_path / "z.db", clock=lambda: clock[0])
    transport = FakeTransport()
    transport.gate["+12125550110"] = threading.Event()
    zombie_rows = rows("+12125550110")
    # A long lease in real time: its heartbeat does not beat during the test (a frozen process)...
    zombie = sender(transport, ledger, "zombie", lease_seconds=300)
    thread = threading.Thread(target=zombie.send_all, args=(zombie_rows,))
    thread.start()
    transport.waiting.setdefault("+12125550110", threading.Event()).wait(10)
    clock[0] += timedelta(seconds=301)  # ... while the ledger's time passes its expiry
    frozen = transport.gate.pop("+12125550110")
    heir_rows = rows("+12125550110")
    sender(transport, ledger, "heir", lease_seconds=300).send_all(heir_rows)
    assert heir_rows[0].outcome == SENT
    frozen.set()  # the zombie wakes up
    thread.join(10)
    assert transport.left == ["+12125550110"]  # only the heir's request left
    assert zombie_rows[0].outcome == UNKNOWN
    assert "lease on the row was taken over" in zombie_rows[0].reason
    entry = ledger.get("c", *heir_rows[0].key)
    assert (entry.state, entry.message_id) == (STATE_SENT, heir_rows[0].message_id)
    ledger.close()
