"""Tests of the reconciler: the created_at resolution, and lookups of sends in the emulator's list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_smsnexus.campaign.reconcile import (
    ABSENT,
    AMBIGUOUS,
    FOUND,
    Reconciler,
    Window,
    truncate,
)
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

KEY = ("+12125550150", message_hash("+12125550100", "Your code is 1"))


class KnownIds:
    """The ledger's known message ids (the only part of the ledger a lookup reads)."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    def known_message_ids(self, ids, *, account: str) -> set[str]:
        return self.ids & set(ids)


def _window(key=KEY, **kwargs) -> Window:
    now = datetime.now(timezone.utc)
    return Window(key, truncate(now - timedelta(minutes=5)), now + timedelta(minutes=5), **kwargs)


def _send(hook: SMSNexusHook) -> str:
    return str(hook.send_sms("+12125550100", "+12125550150", "Your code is 1")["id"])


def test_truncate_rounds_down_to_the_whole_second() -> None:
    moment = datetime(2026, 3, 8, 12, 0, 5, 900000, tzinfo=timezone.utc)
    assert truncate(moment) == datetime(2026, 3, 8, 12, 0, 5, tzinfo=timezone.utc)


def test_lookup_finds_one_send_and_says_absent_for_another_text(smsnexus_emulator, smsnexus_conn) -> None:
    hook = SMSNexusHook(smsnexus_conn_id=smsnexus_conn)
    sent_id = _send(hook)
    other = ("+12125550150", message_hash("+12125550100", "another text"))
    verdicts = Reconciler(hook, KnownIds(set()), "acct").lookup([_window(), _window(other)])
    assert [v.kind for v in verdicts] == [FOUND, ABSENT]
    assert str(verdicts[0].message["id"]) == sent_id
    assert [str(m["id"]) for m in smsnexus_emulator.admin.sent_messages()] == [sent_id]


def test_two_candidate_messages_are_ambiguous_unless_one_is_known_or_foreign(
    smsnexus_emulator, smsnexus_conn
) -> None:
    hook = SMSNexusHook(smsnexus_conn_id=smsnexus_conn)
    first, second = _send(hook), _send(hook)
    [ambiguous] = Reconciler(hook, KnownIds(set()), "acct").lookup([_window()])
    assert ambiguous.kind == AMBIGUOUS
    assert first in ambiguous.reason
    assert second in ambiguous.reason
    [found] = Reconciler(hook, KnownIds({first}), "acct").lookup([_window()])
    assert (found.kind, str(found.message["id"])) == (FOUND, second)
    [also_found] = Reconciler(hook, KnownIds(set()), "acct").lookup([_window(foreign_ids={second})])
    assert (also_found.kind, str(also_found.message["id"])) == (FOUND, first)
