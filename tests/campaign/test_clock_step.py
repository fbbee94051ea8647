"""The server's clock set while a send is inside it (issue 22: the combination the scenario runner found).

An NTP step of a few seconds back, taken while a slow send is still inside the server, dates the message before
the pending mark as the client estimated it on the old clock: a lookup drawn on the old clock alone missed it and
texted again. Every test asserts on the emulator's own record of what was sent."""

from __future__ import annotations

import threading
from collections import Counter

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_SENT, STATE_UNKNOWN
from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError
from tests.campaign.test_exactly_once_emulator import bulk, context, numbers, table


def report(path) -> dict[str, str]:
    rows = pd.read_parquet(path)
    return dict(zip(rows["recipient"], rows["outcome"]))


class StepDuringSend:
    """Makes the first send slow inside the server (``latency_ms``, decided when a request arrives, from the
    first pending mark on) and sets the server's clock once the client gave up on it: the send is then still
    inside the server, which acts on its clock as set."""

    def __init__(self, ledger: SendLedger, admin, step_seconds: float, *, crash: bool = False) -> None:
        self.stepped = threading.Event()
        mark, note_unknown = ledger.mark_pending, ledger.note_unknown

        def mark_then_slow(*args, **kwargs):
            done = mark(*args, **kwargs)
            if not self.stepped.is_set():
                admin.configure(latency_ms=3000)
            return done

        def step_once_given_up(*args, **kwargs):
            if not self.stepped.is_set():
                admin.configure(clock_offset_seconds=step_seconds, latency_ms=0)
                self.stepped.set()
            if crash:  # the worker dies before it can note the lost answer: the row stays pending
                raise OSError("disk I/O error (the worker dies here)")
            return note_unknown(*args, **kwargs)

        ledger.mark_pending, ledger.note_unknown = mark_then_slow, step_once_given_up


@pytest.mark.parametrize(
    ("step", "outcomes"),
    [
        # Inside the span the pre-send listing covered: the message is found and is the row's.
        pytest.param(-4.0, {"sent"}, id="set-back-4s-found"),
        # Further back than that span: the message could be someone else's from before the send; it is
        # neither adopted nor resent, and the row says why.
        pytest.param(-30.0, {"unknown"}, id="set-back-30s-unknown"),
        # Forward: the message is dated after the old window's end.
        pytest.param(+90.0, {"sent"}, id="set-forward-90s-found"),
    ],
)
def test_a_server_clock_set_while_a_send_is_inside_the_server_never_texts_twice(
    smsnexus_emulator, monkeypatch, tmp_path, ledger_home, step, outcomes
):
    # The client gives up after 1 s; the server acts after 3 s, on its clock as set meanwhile.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(timeout=1, retry_backoff=0.01, listing_delay=3),
    )
    admin = smsnexus_emulator.admin
    ledger = SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db")
    stepper = StepDuringSend(ledger, admin, step)
    operator = bulk(table(1), campaign_id="stepped", report_path=str(tmp_path / "r.parquet"))
    operator.open_ledger = lambda: ledger
    if outcomes == {"sent"}:
        summary = operator.execute(context())
    else:  # the task fails with the reason; the report and the ledger keep the row's
        with pytest.raises(SMSNexusSendOutcomeUnknownError, match="1 of 1 messages have an unknown outcome"):
            operator.execute(context())
    assert stepper.stepped.is_set()
    # The emulator's record: one text, to the listed number.
    assert Counter(m["to"] for m in admin.sent_messages()) == {numbers(1)[0]: 1}
    assert set(report(tmp_path / "r.parquet").values()) == outcomes
    (message,) = admin.sent_messages()
    with SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db") as check:
        (entry,) = check.entries(admin.ledger_campaign("stepped"))
    if outcomes == {"sent"}:
        assert summary["sent"] == 1
        assert (entry.state, entry.message_id) == (STATE_SENT, str(message["id"]))
    else:
        assert entry.state == STATE_UNKNOWN
        assert "clock was set" in (entry.reason or "")
        assert str(message["id"]) in (entry.reason or "")


def test_a_rerun_after_a_crash_finds_the_send_the_server_dated_on_its_clock_as_set_since(
    smsnexus_emulator, monkeypatch, tmp_path, ledger_home
):
    # The first attempt dies (its ledger write fails) once the client gave up on its slow send, leaving the
    # row pending; the server's clock is set back 4 s while the send is still inside it. The rerun, with a
    # hook (and a measured clock) of its own, takes the row over and looks it up: found, not sent again.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(timeout=1, retry_backoff=0.01, listing_delay=3),
    )
    admin = smsnexus_emulator.admin
    path = ledger_home / "smsnexus" / "send_ledger.db"
    crashing = SendLedger.sqlite(path)
    stepper = StepDuringSend(crashing, admin, -4.0, crash=True)
    first = bulk(table(1), campaign_id="crash", lease_seconds=2, report_path=str(tmp_path / "a.parquet"))
    first.open_ledger = lambda: crashing
    with pytest.raises(OSError, match="disk I/O error"):
        first.execute(context(try_number=1))
    assert stepper.stepped.is_set()
    with SendLedger.sqlite(path) as check:
        (entry,) = check.entries(admin.ledger_campaign("crash"))
    assert entry.state == "pending"
    rerun = bulk(table(1), campaign_id="crash", lease_seconds=2, report_path=str(tmp_path / "b.parquet"))
    summary = rerun.execute(context(try_number=2))
    assert Counter(m["to"] for m in admin.sent_messages()) == {numbers(1)[0]: 1}
    (message,) = admin.sent_messages()
    assert (summary["already_sent"], summary["sent"]) == (1, 0)
    assert report(tmp_path / "b.parquet") == {numbers(1)[0]: "already_sent"}
    with SendLedger.sqlite(path) as check:
        (entry,) = check.entries(admin.ledger_campaign("crash"))
    assert (entry.state, entry.message_id) == (STATE_SENT, str(message["id"]))
