"""Exactly once against the emulator over real HTTP: the three holes of issue 11, overlapping attempts, a
zombie, rows left pending (looked up only by their lease holder), workers sharing one account, a skewed
server clock, and a list served oldest first.

Every test asserts on the emulator's own record of what was sent (its inspection API)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.lease import account_fingerprint
from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_PENDING, STATE_SENT
from airflow_provider_smsnexus.campaign.model import CampaignRow
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.campaign.sender import CampaignSender
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator

SENDER = "+12125550100"


def numbers(count: int, start: int = 110) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(start, start + count)]


def table(count: int) -> pd.DataFrame:
    return pd.DataFrame({"to": numbers(count), "name": [f"N{i}" for i in range(count)]})


def context(run_id: str = "manual__e2e", try_number: int = 1) -> dict:
    ti = SimpleNamespace(dag_id="e2e", task_id="send", run_id=run_id, map_index=-1, try_number=try_number)
    return {"ti": ti, "run_id": run_id, "ds": "2026-03-08", "params": {}}


def bulk(recipients, **kwargs) -> SMSNexusBulkSendOperator:
    kwargs.setdefault("honor_opt_outs", False)
    kwargs.setdefault("max_failure_rate", 0)
    return SMSNexusBulkSendOperator(
        task_id="send",
        recipients=recipients,
        message_template="Hi {{ row.name }}",
        from_number=SENDER,
        **kwargs,
    )


class Attempt(threading.Thread):
    """One attempt of a task in a thread (a second worker process would do the same through the ledger)."""

    def __init__(self, operator, ctx) -> None:
        super().__init__()
        self.operator, self.ctx = operator, ctx
        self.summary = self.error = None

    def run(self) -> None:
        try:
            self.summary = self.operator.execute(self.ctx)
        except Exception as exc:
            self.error = exc


def reported(path) -> pd.DataFrame:
    return pd.read_parquet(path)


def assert_each_texted_once(admin, expected) -> list[dict]:
    sent = admin.sent_messages()
    assert Counter(m["to"] for m in sent) == dict.fromkeys(expected, 1)
    return sent


def assert_reports_claim_only_own_sends(admin, *reports) -> None:
    """No task reports ``sent`` for a row it did not send: the sent ids of the reports are disjoint, and
    together they are exactly the emulator's messages."""
    ids = [set(r.loc[r["outcome"] == "sent", "message_id"]) for r in reports]
    assert sum(len(i) for i in ids) == len(set().union(*ids))
    assert set().union(*ids) == {str(m["id"]) for m in admin.sent_messages()}


def test_hole1_two_attempts_started_a_second_apart_never_text_anyone_twice(
    smsnexus_emulator, monkeypatch, tmp_path
):
    # The second row of the first attempt waits 8 s in its limiter after its claim: far longer than the
    # old grace (pending_at + timeout + 2 s) the second attempt gave it before sending it too.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            timeout=1, send_rate_limit=1, rate_limit_period=8, retry_backoff=0.01
        ),
    )
    admin = smsnexus_emulator.admin
    first = Attempt(bulk(table(3), campaign_id="hole1", report_path=str(tmp_path / "a.parquet")), context())
    second = Attempt(bulk(table(3), campaign_id="hole1", report_path=str(tmp_path / "b.parquet")), context())
    first.start()
    assert wait_for(lambda: len(admin.sent_messages()) >= 1)  # the first attempt is under way
    second.start()
    first.join(120)
    second.join(120)
    assert (first.error, second.error) == (None, None)
    assert_each_texted_once(admin, numbers(3))
    assert_reports_claim_only_own_sends(
        admin, reported(tmp_path / "a.parquet"), reported(tmp_path / "b.parquet")
    )
    assert first.summary["sent"] + second.summary["sent"] == 3


def test_hole3_a_same_text_from_the_notifier_just_before_is_never_taken_for_this_send(
    smsnexus_conn, smsnexus_emulator
):
    from airflow_provider_smsnexus.notifications.smsnexus import SMSNexusNotifier

    admin = smsnexus_emulator.admin
    text = "Your order is ready"
    SMSNexusNotifier(from_number=SENDER, to="+12125550110", message=text).notify({})
    (notified,) = admin.sent_messages()
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=SENDER, to="+12125550110", message=text)
    send = operator.hook.send_sms_attempts
    calls = []

    def send_through_a_failing_gateway(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the gateway recovered
            return (yield from send(*args, **kwargs))
        admin.configure(fail_before_share=1.0, fail_before_status=502)  # a 502 before reaching the API
        try:
            return (yield from send(*args, **kwargs))
        finally:
            admin.configure(fail_before_share=0.0)

    operator.hook.send_sms_attempts = send_through_a_failing_gateway
    result = operator.execute(context())  # the notifier's message existed before: never taken for ours
    sent = admin.sent_messages()
    assert result["id"] != notified["id"]
    assert [m["id"] for m in sent] == [notified["id"], result["id"]]  # resent: the server did not hold it
    assert [m["body"] for m in sent] == [text, text]


def test_a_zombie_whose_lease_was_taken_over_sends_nothing(smsnexus_conn, smsnexus_emulator, ledger_home):
    admin = smsnexus_emulator.admin
    path = ledger_home / "smsnexus" / "send_ledger.db"
    zombie = bulk(table(2), campaign_id="zombie", lease_seconds=2, max_failure_rate=1)
    heir = bulk(table(2), campaign_id="zombie", lease_seconds=2)
    frozen, waiting = threading.Event(), threading.Event()
    limiter = zombie.hook.limiters["send"]
    acquire = limiter.try_acquire

    def freeze_in_the_limiter(*args, **kwargs):
        waiting.set()
        frozen.wait(60)
        return acquire(*args, **kwargs)

    limiter.try_acquire = freeze_in_the_limiter
    # The zombie's clock runs 10 minutes behind: every lease it writes or renews is long expired for the others.
    zombie.open_ledger = lambda: SendLedger.sqlite(path, clock=lambda: _now() - timedelta(minutes=10))
    attempt = Attempt(zombie, context(try_number=1))
    attempt.start()
    assert waiting.wait(60)
    assert heir.execute(context(try_number=2))["sent"] == 2
    frozen.set()
    attempt.join(60)
    assert_each_texted_once(admin, numbers(2))
    assert type(attempt.error).__name__ == "SMSNexusSendOutcomeUnknownError"  # it says it lost its rows


def _now():
    from airflow_provider_smsnexus.utils.times import utcnow

    return utcnow()


def pending_campaign() -> str:
    """The ledger's campaign "pending" as an attempt against this test's emulator run scopes it."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    return EmulatorAdmin(SMSNexusHook().config.base_url.removesuffix("/api")).ledger_campaign("pending")


def left_pending(ledger: SendLedger, hook: SMSNexusHook, owner: str, lease_seconds: float) -> CampaignRow:
    """An attempt ``owner`` claimed a row and marked it pending, its request reached the server (the
    emulator holds the message), and it has not recorded the answer: the row as a new attempt plans it."""
    body = "Your parcel is on its way"
    row = CampaignRow(1, recipient="+12125550110", from_number=SENDER, body=body)
    row.message_hash = message_hash(SENDER, body)
    account = account_fingerprint(hook.config.base_url, hook.config.token)
    claim = {"from_number": SENDER, "account": account, "lease_seconds": lease_seconds}
    campaign = pending_campaign()
    assert ledger.claim(campaign, *row.key, owner=owner, **claim) is not None
    assert ledger.mark_pending(campaign, *row.key, owner=owner, server_at=_now(), uncertainty=5) is not None
    hook.send_sms(SENDER, row.recipient, body)
    return row


def settling_sender(hook: SMSNexusHook, ledger: SendLedger, owner: str) -> CampaignSender:
    return CampaignSender(
        hook, ledger, "pending", log=logging.getLogger("test"), owner=owner, listing_delay=0,
        lease_wait_seconds=0,
    )  # fmt: skip


def test_a_row_a_dead_attempt_left_pending_is_claimed_then_looked_up_and_recorded_sent(
    smsnexus_conn, smsnexus_emulator, tmp_path
):
    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    path = tmp_path / "ledger.db"
    # The dead attempt's clock ran 10 minutes behind: its lease is long expired for everyone else.
    with SendLedger.sqlite(path, clock=lambda: _now() - timedelta(minutes=10)) as dead:
        row = left_pending(dead, hook, "dead", lease_seconds=30)
    (held,) = admin.sent_messages()
    with SendLedger.sqlite(path) as ledger:
        heir = settling_sender(hook, ledger, "heir")
        heir.load_ledger([row])
        heir.send_all([row])
        entry = ledger.get(pending_campaign(), *row.key)
    assert admin.sent_messages() == [held]  # found by the lookup, not sent again
    # The heir took the lease before its lookup, so its record of the lookup's finding was written.
    assert (entry.state, entry.message_id) == (STATE_SENT, str(held["id"]))


def test_a_row_left_pending_under_another_live_attempts_lease_is_not_looked_up(
    smsnexus_conn, smsnexus_emulator, tmp_path
):
    admin = smsnexus_emulator.admin
    hook = SMSNexusHook()
    with SendLedger.sqlite(tmp_path / "ledger.db") as ledger:
        row = left_pending(ledger, hook, "live", lease_seconds=300)  # its answer is on the way, say
        before = ledger.get(pending_campaign(), *row.key)
        other = settling_sender(hook, ledger, "other")
        reads = admin.stats()["requests"]["other"]
        other.reconciler.existing([row.key])  # the listing every attempt makes before its sends
        listing = admin.stats()["requests"]["other"] - reads
        reads = admin.stats()["requests"]["other"]
        other.load_ledger([row])
        other.send_all([row])
        read_by_other = admin.stats()["requests"]["other"] - reads
        after = ledger.get(pending_campaign(), *row.key)
    # The server saw the listing and nothing more: no lookup of the row another attempt holds.
    assert listing >= 1
    assert read_by_other == listing
    assert len(admin.sent_messages()) == 1
    assert after == before  # the live attempt's row, untouched: still its lease, still pending
    assert (after.state, after.lease_owner) == (STATE_PENDING, "live")


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_attempts_overlapping_throughout_a_campaign_text_each_recipient_once(
    smsnexus_emulator, monkeypatch, tmp_path, request, database
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(send_rate_limit=2, rate_limit_period=1, retry_backoff=0.01),
    )
    extra = {}
    if database == "postgres":
        extra = {
            "ledger_conn_id": request.getfixturevalue("postgres_conn_id"),
            "ledger_table": f"l_{uuid.uuid4().hex[:8]}",
        }
    admin = smsnexus_emulator.admin
    try:
        attempts = [
            Attempt(
                bulk(table(60), campaign_id="overlap", report_path=str(tmp_path / f"{n}.parquet"), **extra),
                context(),
            )
            for n in range(2)
        ]
        attempts[0].start()
        assert wait_for(lambda: len(admin.sent_messages()) >= 1)
        attempts[1].start()
        for attempt in attempts:
            attempt.join(300)
        assert [a.error for a in attempts] == [None, None]
        assert_each_texted_once(admin, numbers(60))
        assert_reports_claim_only_own_sends(admin, *(reported(tmp_path / f"{n}.parquet") for n in range(2)))
        assert min(a.summary["sent"] for a in attempts) >= 10  # they did overlap, sharing the work
    finally:
        if extra:
            ledger = SendLedger.for_connection(extra["ledger_conn_id"], table_name=extra["ledger_table"])
            ledger.table.drop(ledger.engine, checkfirst=True)
            ledger.close()


@pytest.mark.slow
def test_four_partitions_each_told_the_whole_account_limit_all_finish(smsnexus_emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(send_rate_limit=8, rate_limit_period=1, retry_backoff=0.01),
    )
    admin = smsnexus_emulator.admin
    admin.set_limits(send_limit=8, window_seconds=1)
    attempts = [
        Attempt(bulk(table(80), campaign_id="shared-account", num_partitions=4, partition=p), context())
        for p in range(4)
    ]
    for attempt in attempts:
        attempt.start()
    for attempt in attempts:
        attempt.join(300)
    assert [a.error for a in attempts] == [None] * 4
    assert_each_texted_once(admin, numbers(80))
    assert admin.stats()["max_in_window"]["send"] <= 8


@pytest.mark.parametrize("offset", [-300, 300], ids=["server-5-min-behind", "server-5-min-ahead"])
def test_a_skewed_server_clock_with_lost_answers_texts_each_recipient_once(
    smsnexus_conn, smsnexus_emulator, offset
):
    admin = smsnexus_emulator.admin
    admin.configure(clock_offset_seconds=offset)
    admin.set_faults(drop_after_share=0.25, fail_after_share=0.25, random_seed=11)
    summary = bulk(table(20)).execute(context())
    assert (summary["sent"], summary["unknown"], summary["failed"]) == (20, 0, 0)
    assert_each_texted_once(admin, numbers(20))
    faults = admin.stats()["faults"]
    assert faults["drop_after"] + faults["fail_after"] > 0


def test_a_server_that_lists_oldest_first_during_the_lookup_changes_nothing(smsnexus_conn, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.configure(list_order="oldest_first")
    for number in numbers(30, start=150):  # older traffic the lookup pages through first
        admin.add_inbound(number, SENDER, "hello")
    admin.set_faults(fail_after_share=0.3, drop_after_share=0.2, random_seed=5)
    summary = bulk(table(20)).execute(context())
    assert (summary["sent"], summary["unknown"], summary["failed"]) == (20, 0, 0)
    assert_each_texted_once(admin, numbers(20))
    assert admin.stats()["faults"]["fail_after"] > 0


def wait_for(condition, timeout: float = 60) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        done.wait(0.02)
    return condition()
