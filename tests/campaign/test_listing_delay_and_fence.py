"""Where two conditions combine: a lost answer whose message is listed late, and a worker paused after its
pending mark while another attempt takes the row over (issue 22, holes 3 and 4).

Every test asserts on the emulator's own record of what was sent (its inspection API)."""

from __future__ import annotations

import threading
from collections import Counter

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_SENT
from tests.campaign.test_exactly_once_emulator import SENDER, Attempt, bulk, context, numbers, table


def report(path) -> dict[str, str]:
    rows = pd.read_parquet(path)
    return dict(zip(rows["recipient"], rows["outcome"]))


@pytest.mark.parametrize(
    ("late_ms", "listing_delay"),
    [
        pytest.param(3000, None, id="listed-3s-late-default-bound"),
        pytest.param(6500, 8.0, id="listed-6.5s-late-bound-raised-to-8s"),
    ],
)
def test_a_send_answered_500_whose_message_is_listed_late_is_not_sent_again(
    smsnexus_emulator, monkeypatch, tmp_path, late_ms, listing_delay
):
    # The server sends the message, answers 500, and lists it only a few seconds later: inside the listing
    # delay, so the lookup must find it (the old 2 s wait after a 5xx found nothing and texted twice).
    extra = {} if listing_delay is None else {"listing_delay": listing_delay}  # the connection's extra
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(timeout=2, retry_backoff=0.01, **extra),
    )
    admin = smsnexus_emulator.admin
    admin.configure(fail_after_share=1.0, late_visibility_ms=late_ms)
    operator = bulk(table(1), campaign_id="late", report_path=str(tmp_path / "r.parquet"))
    summary = operator.execute(context())
    (message,) = admin.sent_messages()  # the emulator's record: one text, not two
    assert message["to"] == numbers(1)[0]
    assert summary["sent"] == 1
    assert report(tmp_path / "r.parquet") == {numbers(1)[0]: "sent"}
    with SendLedger.sqlite(operator_ledger_path()) as ledger:
        (entry,) = ledger.entries(admin.ledger_campaign("late"))
    assert (entry.state, entry.message_id) == (STATE_SENT, str(message["id"]))


def operator_ledger_path():
    from airflow_provider_smsnexus.campaign import ledger as ledger_module

    return ledger_module.default_ledger_path()


class FrozenAfterMark:
    """A worker frozen right after its pending mark committed (a VM freeze, a long GC pause): its heartbeat
    renews nothing meanwhile, as a stopped process's would not."""

    def __init__(self, ledger: SendLedger) -> None:
        self.ledger = ledger
        self.marked, self.thawed = threading.Event(), threading.Event()
        mark, renew = ledger.mark_pending, ledger.renew

        def mark_then_freeze(*args, **kwargs):
            done = mark(*args, **kwargs)
            self.marked.set()
            assert self.thawed.wait(120), "the test never thawed the worker"
            return done

        def renew_unless_frozen(*args, **kwargs):
            return renew(*args, **kwargs) if self.thawed.is_set() or not self.marked.is_set() else 0

        ledger.mark_pending, ledger.renew = mark_then_freeze, renew_unless_frozen


def test_a_worker_paused_after_its_pending_mark_never_sends_once_another_took_the_row_over(
    smsnexus_emulator, monkeypatch, tmp_path, ledger_home
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(timeout=1, retry_backoff=0.01)
    )
    admin = smsnexus_emulator.admin
    path = ledger_home / "smsnexus" / "send_ledger.db"
    paused = bulk(table(1), campaign_id="paused", lease_seconds=2, report_path=str(tmp_path / "a.parquet"))
    frozen = FrozenAfterMark(SendLedger.sqlite(path))
    paused.open_ledger = lambda: frozen.ledger
    heir = bulk(table(1), campaign_id="paused", lease_seconds=2, report_path=str(tmp_path / "b.parquet"))
    attempt = Attempt(paused, context(try_number=1))
    attempt.start()
    assert frozen.marked.wait(60), "the first worker never marked its row pending"
    # While it is frozen, its lease runs out; the heir takes the row over, waits out the fence, the request's
    # longest time and the listing delay, finds nothing and sends.
    heir_summary = heir.execute(context(try_number=2))
    assert Counter(m["to"] for m in admin.sent_messages()) == {numbers(1)[0]: 1}
    frozen.thawed.set()
    attempt.join(120)
    assert not attempt.is_alive()
    # The thawed worker saw that its fence had passed and sent nothing: still one text.
    (message,) = admin.sent_messages()
    assert message["to"] == numbers(1)[0]
    assert heir_summary["sent"] == 1
    assert report(tmp_path / "b.parquet") == {numbers(1)[0]: "sent"}
    assert report(tmp_path / "a.parquet") != {numbers(1)[0]: "sent"}  # it claims no send it did not make


def test_a_pending_mark_that_outlives_the_fence_is_looked_up_and_sent_once(
    smsnexus_emulator, monkeypatch, tmp_path, ledger_home
):
    # The mark's commit waited (a group commit, a busy SQLite) past the fence with nobody taking over: the
    # row is not sent on the spot; it is looked up once no request can be unlisted, found absent, sent once.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(timeout=1, retry_backoff=0.01)
    )
    admin = smsnexus_emulator.admin
    path = ledger_home / "smsnexus" / "send_ledger.db"
    operator = bulk(table(2), campaign_id="slow", lease_seconds=3, report_path=str(tmp_path / "r.parquet"))
    ledger = SendLedger.sqlite(path)
    mark = ledger.mark_pending
    slow = []

    def slow_first_mark(*args, **kwargs):
        done = mark(*args, **kwargs)
        if not slow:
            slow.append(args[1])
            threading.Event().wait(2.5)  # the commit's wait, past two thirds of the 3 s lease
        return done

    ledger.mark_pending = slow_first_mark
    operator.open_ledger = lambda: ledger
    summary = operator.execute(context())
    assert Counter(m["to"] for m in admin.sent_messages()) == dict.fromkeys(numbers(2), 1)
    assert summary["sent"] == 2
    assert report(tmp_path / "r.parquet") == dict.fromkeys(numbers(2), "sent")
    assert SENDER not in {m["to"] for m in admin.sent_messages()}
