"""SMSNexusNotifier: rendering with the context and sending through the emulator."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusInvalidNumberError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.notifications.smsnexus import (
    SMSNexusNotifier,
    fit_message,
    recipient_list,
    send_smsnexus_notification,
)
from airflow_provider_smsnexus.utils.segments import MAX_MESSAGE_LENGTH

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
    unreachable = "+12125550199"
    notifier = SMSNexusNotifier(
        from_number=SENDER, to=[ON_CALL[0], unreachable, ON_CALL[1]], message="disk full"
    )
    send = notifier.hook.send_sms

    def send_sms(from_number, to, message, *args, **kwargs):
        # The emulator answers 422 only for a number that is not E.164, which the notifier no longer sends;
        # a carrier's refusal of one valid number is made here (a server cannot be told to, per number).
        if to == unreachable:
            raise SMSNexusValidationError(
                "POST /api/sms/send answered 422", errors={"to": ["The to number is not reachable."]}
            )
        return send(from_number, to, message, *args, **kwargs)

    notifier.hook.send_sms = send_sms
    with pytest.raises(
        SMSNexusError, match=r"reached 2 of 3 recipient\(s\); failed: \+12125550199: "
    ) as raised:
        notifier(failure_context())

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "disk full"), (ON_CALL[1], "disk full")]
    assert "422" in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter", "value"),
    [
        ({"to": [ON_CALL[0], "2015550142"]}, "to", "2015550142"),  # +20 155 501 42 is Egypt: never guessed
        ({"to": "212-555-0199"}, "to", "212-555-0199"),
        ({"from_number": "2125550100"}, "from_number", "2125550100"),
    ],
)
def test_a_number_without_a_country_fails_before_any_text(
    smsnexus_emulator, smsnexus_conn, kwargs, parameter, value
):
    notifier = SMSNexusNotifier(**{"from_number": SENDER, "to": ON_CALL[1], "message": "disk full", **kwargs})

    with pytest.raises(
        SMSNexusInvalidNumberError, match=rf"^{parameter}='{value}' is not a usable phone number"
    ):
        notifier(failure_context())

    assert smsnexus_emulator.admin.sent_messages() == []


def test_two_spellings_of_one_number_get_one_text(smsnexus_emulator, smsnexus_conn):
    SMSNexusNotifier(from_number=SENDER, to="+1 212 555 0150, +12125550150", message="once")(
        failure_context()
    )

    assert sent(smsnexus_emulator.admin) == [("+12125550150", "once")]


def test_long_text_is_cut_to_1600_characters(smsnexus_emulator, smsnexus_conn):
    notifier = SMSNexusNotifier(from_number=SENDER, to=ON_CALL[0], message="x" * 2000)

    notifier(failure_context())

    (body,) = [body for _, body in sent(smsnexus_emulator.admin)]
    assert len(body) == MAX_MESSAGE_LENGTH
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


def test_a_deadline_alert_is_sent_by_airflows_own_callback_trigger(smsnexus_emulator, smsnexus_conn):
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
    from airflow.triggers.callback import CallbackTrigger

    kwargs = {"from_number": SENDER, "to": ON_CALL[0], "message": "{{ dag_run.dag_id }} missed its deadline"}
    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=1),
        callback=AsyncCallback(SMSNexusNotifier, kwargs=kwargs),
    )
    callback = alert.callback.serialize()
    # The context the scheduler adds when the deadline is missed (airflow.models.deadline.handle_miss):
    # the run as its REST representation and the deadline, nothing else.
    context = {
        "dag_run": {"dag_id": "nightly_billing", "dag_run_id": "scheduled__2026-03-02T00:00:00+00:00"},
        "deadline": {"id": "d-1", "deadline_time": "2026-03-02T01:00:00+00:00"},
    }
    trigger = CallbackTrigger(callback["path"], {**callback["kwargs"], "context": context})

    async def run_trigger() -> list:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run_trigger())

    assert [event["state"] for event in events] == ["running", "success"], events
    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "nightly_billing missed its deadline")]


def test_an_answer_lost_after_the_send_is_reported_unknown_and_never_resent(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_faults(fail_after_share=1.0)
    notifier = SMSNexusNotifier(from_number=SENDER, to=ON_CALL[:2], message="disk full")

    with pytest.raises(SMSNexusError) as raised:
        notifier(failure_context())

    # The server sent both (its own record), each once; the error says so instead of "failed".
    assert sorted(sent(smsnexus_emulator.admin)) == [(n, "disk full") for n in ON_CALL[:2]]
    assert smsnexus_emulator.admin.stats()["faults"]["fail_after"] == 2
    assert "reached 0 of 2" in str(raised.value)
    assert "outcome unknown, not resent" in str(raised.value)
    assert "failed:" not in str(raised.value)


def test_a_dropped_connection_after_the_send_is_not_resent(smsnexus_emulator, smsnexus_conn):
    smsnexus_emulator.admin.set_faults(drop_after_share=1.0)
    notifier = SMSNexusNotifier(from_number=SENDER, to=ON_CALL[0], message="disk full")

    with pytest.raises(SMSNexusError, match="outcome unknown, not resent"):
        notifier(failure_context())

    assert sent(smsnexus_emulator.admin) == [(ON_CALL[0], "disk full")]
    assert smsnexus_emulator.admin.stats()["faults"]["drop_after"] == 1


def _storm_scenario(emulator, monkeypatch) -> tuple[list[tuple[str, str]], int, BaseException | None]:
    """A campaign worker spends the account's whole send budget while the alert goes out.

    :return: the alerts in the emulator's record, how many 429s the alert's own requests met, and what the
        campaign worker raised (None when nothing).
    """
    import threading

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    admin = emulator.admin
    admin.reset()
    admin.set_limits(send_limit=2, window_seconds=1)
    # The campaign is told the whole account limit; the alert may not retry by count (max_retries=0):
    # each of its 429s must be waited out by time.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_CAMPAIGN",
        emulator.connection_json(timeout=10, send_rate_limit=2, rate_limit_period=1, max_rate_limit_wait=60),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        emulator.connection_json(timeout=10, max_retries=0, max_rate_limit_wait=60, send_rate_limit=1000),
    )
    campaign = SMSNexusHook(smsnexus_conn_id="smsnexus_campaign")
    done, running = threading.Event(), threading.Event()
    campaign_error: list[BaseException] = []

    def send_campaign() -> None:
        try:
            for number in range(200):  # bounded: 100 s at the account's 2 sends a second
                if done.is_set():
                    return
                campaign.send_sms(SENDER, f"+1212555{1000 + number:04d}", "spring sale")
                if number == 3:
                    running.set()  # the campaign sends at the account's full pace now
        except BaseException as exc:
            campaign_error.append(exc)
            running.set()

    thread = threading.Thread(target=send_campaign, daemon=True)
    thread.start()
    try:
        assert running.wait(30), "the campaign never got going"
        SMSNexusNotifier(from_number=SENDER, to=ON_CALL, message="disk full")(failure_context())
    finally:
        done.set()
        thread.join(60)
    alerts = [(to, body) for to, body in sent(admin) if body == "disk full"]
    alert_refused = admin.stats()["rate_limited"]["send"] - int(campaign.stats["rate_limited"])
    return alerts, alert_refused, campaign_error[0] if campaign_error else None


def test_an_alert_is_not_failed_by_a_campaign_spending_the_budget(smsnexus_emulator, monkeypatch):
    """Issue: the alert needed "429; retry 5 of 5" while a campaign ran. 429s are waited out, not counted."""
    for _ in range(5):
        alerts, alert_refused, campaign_error = _storm_scenario(smsnexus_emulator, monkeypatch)
        assert sorted(alerts) == [(n, "disk full") for n in ON_CALL]  # each on-call texted once
        assert campaign_error is None, f"the campaign worker failed: {campaign_error!r}"
        if alert_refused >= 1:  # the scenario happened: the campaign's load did refuse the alert
            return
    pytest.fail("in 5 tries the campaign never made the server refuse one of the alert's sends")


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
    assert fit_message("y" * MAX_MESSAGE_LENGTH) == "y" * MAX_MESSAGE_LENGTH
    assert fit_message("y" * (MAX_MESSAGE_LENGTH + 1)) == "y" * (MAX_MESSAGE_LENGTH - 3) + "..."
