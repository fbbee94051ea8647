"""The webhook operators against the emulator: ensuring twice registers one webhook; deleting."""

from __future__ import annotations

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusNotFoundError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.operators.webhooks import (
    SMSNexusDeleteWebhookOperator,
    SMSNexusEnsureWebhookOperator,
)

URL = "https://hooks.example.com/sms"
EVENTS = ["message.received", "message.delivered"]


def registered() -> list[dict]:
    """The emulator's own list of webhooks."""
    return SMSNexusHook().list_webhooks()


def test_ensure_run_twice_registers_one_webhook_and_returns_it_both_times(smsnexus_emulator, smsnexus_conn):
    first = SMSNexusEnsureWebhookOperator(task_id="ensure", url=URL, events=EVENTS).execute({})
    second = SMSNexusEnsureWebhookOperator(task_id="ensure", url=URL, events=list(reversed(EVENTS))).execute(
        {}
    )

    hooks = registered()
    assert len(hooks) == 1
    assert first["id"] == second["id"] == hooks[0]["id"]
    assert sorted(hooks[0]["events"]) == sorted(EVENTS)


def test_ensure_with_other_events_registers_another_webhook(smsnexus_emulator, smsnexus_conn):
    SMSNexusEnsureWebhookOperator(task_id="ensure", url=URL, events=EVENTS).execute({})
    SMSNexusEnsureWebhookOperator(task_id="ensure", url=URL, events="message.failed").execute({})

    assert sorted(sorted(hook["events"]) for hook in registered()) == [
        ["message.delivered", "message.received"],
        ["message.failed"],
    ]


def test_unknown_events_are_refused_naming_them():
    with pytest.raises(SMSNexusError, match=r"message\.read"):
        SMSNexusEnsureWebhookOperator(task_id="ensure", url=URL, events=["message.read"])


def test_delete_by_id_and_by_url(smsnexus_emulator, smsnexus_conn):
    keep = SMSNexusEnsureWebhookOperator(task_id="a", url="https://other.example.com/h").execute({})
    one = SMSNexusEnsureWebhookOperator(task_id="b", url=URL, events=EVENTS).execute({})
    two = SMSNexusEnsureWebhookOperator(task_id="c", url=URL, events="message.failed").execute({})

    assert SMSNexusDeleteWebhookOperator(task_id="d", webhook_id=one["id"]).execute({}) == [one["id"]]
    assert SMSNexusDeleteWebhookOperator(task_id="e", url=URL).execute({}) == [two["id"]]
    assert [hook["id"] for hook in registered()] == [keep["id"]]


def test_deleting_a_missing_webhook_is_idempotent_unless_asked_otherwise(smsnexus_emulator, smsnexus_conn):
    assert SMSNexusDeleteWebhookOperator(task_id="d", webhook_id=999).execute({}) == []
    with pytest.raises(SMSNexusNotFoundError):
        SMSNexusDeleteWebhookOperator(task_id="d", webhook_id=999, missing_ok=False).execute({})
