"""SMSNexusNotifier: rendering with the context and sending through the emulator."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG

from airflow_provider_smsnexus.exceptions import SMSNexusAuthError, SMSNexusError
from airflow_provider_smsnexus.notifications.smsnexus import (
    MAX_MESSAGE_CHARS,
    SMSNexusNotifier,
    fit_message,
    recipient_list,
    send_smsnexus_notification,
)

SENDER = "+12125550100"
ON_CALL = ["+12125550150", "+12125550151", "+12125550152"]


def failure_context() -> dict:
    """What a task's on_failure_callback receives, as far as the templates below use it."""
    return {"dag": DAG("nightly_billing"), "ti": SimpleNamespace(task_id="load_invoices"), "run_id": "r1"}


def sent(admin) -> list[tuple[str, str]]:
    return [(message["to"], message["body"]) for message in admin.sent_messages()]


def test_message_is_rendered_with_the_context_and_sent(smsnexus_emulator, smsnexus_conn):
    notifier = SMSNexusNotifier(
        from_number=SENDER, to=ON_CALL[0], message="{{ dag.dag_id }} failed: {{ ti.task_id }}"
    )

    notifier(failure_context())

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "nightly_billing failed: load_invoices")]
    assert smsnexus_emulator.admin.sent_messages()[0]["from"] == SENDER


def test_every_number_of_a_list_gets_the_message(smsnexus_emulator, smsnexus_conn):
    SMSNexusNotifier(from_number=SENDER, to=ON_CALL, message="{{ dag.dag_id }} is late")(failure_context())

    assert sent(smsnexus_emulator.admin) == [(number, "nightly_billing is late") for number in ON_CALL]


def test_recipients_are_templated(smsnexus_emulator, smsnexus_conn):
    context = {**failure_context(), "params": {"pager": ON_CALL[1]}}

    SMSNexusNotifier(from_number=SENDER, to="{{ params.pager }}", message="hello")(context)

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[1], "hello")]


def test_one_unreachable_recipient_does_not_stop_the_others(smsnexus_emulator, smsnexus_conn):
    bad = "212-555-0199"  # not E.164: the API answers 422
    notifier = SMSNexusNotifier(from_number=SENDER, to=[ON_CALL[0], bad, ON_CALL[1]], message="disk full")

    with pytest.raises(
        SMSNexusError, match=r"reached 2 of 3 recipient\(s\); failed: 212-555-0199: "
    ) as raised:
        notifier(failure_context())

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "disk full"), (ON_CALL[1], "disk full")]
    assert "422" in str(raised.value)


def test_long_text_is_cut_to_1600_characters(smsnexus_emulator, smsnexus_conn):
    notifier = SMSNexusNotifier(from_number=SENDER, to=ON_CALL[0], message="x" * 2000)

    notifier(failure_context())

    (body,) = [body for _, body in sent(smsnexus_emulator.admin)]
    assert len(body) == MAX_MESSAGE_CHARS
    assert body.endswith("...")


def test_wrong_token_stops_at_the_first_recipient(smsnexus_emulator, monkeypatch: pytest.MonkeyPatch):
    connection = json.loads(smsnexus_emulator.connection_json())
    connection["password"] = "SMSNEXUS-TEST-TOKEN-revoked-2222"
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_REVOKED", json.dumps(connection))
    notifier = SMSNexusNotifier(
        from_number=SENDER, to=ON_CALL, message="hi", smsnexus_conn_id="smsnexus_revoked"
    )

    with pytest.raises(SMSNexusAuthError) as raised:
        notifier(failure_context())

    assert notifier.hook.stats["requests"] == 1
    assert "revoked-2222" not in str(raised.value)
    assert smsnexus_emulator.admin.sent_messages() == []


def test_async_notify_renders_and_sends(smsnexus_emulator, smsnexus_conn):
    notifier = SMSNexusNotifier(
        from_number=SENDER,
        to=ON_CALL[:2],
        message="deadline missed: {{ dag.dag_id }}",
        context=failure_context(),
    )

    async def alert() -> None:
        await notifier

    asyncio.run(alert())

    assert sent(smsnexus_emulator.admin) == [(n, "deadline missed: nightly_billing") for n in ON_CALL[:2]]


def test_works_as_a_deadline_alert_callback_run_by_the_triggerer(smsnexus_emulator, smsnexus_conn):
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    kwargs = {"from_number": SENDER, "to": ON_CALL[0], "message": "{{ dag.dag_id }} missed its deadline"}
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=1),
        callback=AsyncCallback(SMSNexusNotifier, kwargs=kwargs),
    )

    async def run_like_the_triggerer() -> None:
        # What airflow.triggers.callback.CallbackTrigger does with an AsyncCallback.
        await SMSNexusNotifier(**kwargs, context=failure_context())

    asyncio.run(run_like_the_triggerer())

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "nightly_billing missed its deadline")]


def test_alias_is_the_notifier():
    assert send_smsnexus_notification is SMSNexusNotifier


def test_no_recipient_is_an_error():
    with pytest.raises(ValueError, match="no recipient"):
        SMSNexusNotifier(from_number=SENDER, to=[], message="hi").notify({})


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("+12125550150", ["+12125550150"]),
        ("+12125550150, +12125550151", ["+12125550150", "+12125550151"]),
        (["+12125550150", " +12125550151 ", "", "+12125550150"], ["+12125550150", "+12125550151"]),
        (("+12125550152",), ["+12125550152"]),
    ],
)
def test_recipient_list_accepts_a_number_a_comma_list_or_a_sequence(to, expected):
    assert recipient_list(to) == expected


def test_fit_message_keeps_short_texts_and_cuts_long_ones():
    assert fit_message("short") == "short"
    assert fit_message("y" * MAX_MESSAGE_CHARS) == "y" * MAX_MESSAGE_CHARS
    assert fit_message("y" * (MAX_MESSAGE_CHARS + 1)) == "y" * (MAX_MESSAGE_CHARS - 3) + "..."
