"""dags/inbound_replies.py under ``dag.test()`` against the emulator: the DAG's own watcher trigger polls
the inbound messages, Airflow's ``AssetManager`` records one asset event per reply (as the triggerer's
``Trigger.submit_event`` does), and a run without a logical date consuming those events answers each
sender once.

``dag.test()`` has no scheduler to link asset events to the run it creates; the test links them right
after Airflow creates the run, before any task starts (the scheduler's part, nothing else). The asset
state store exists only inside a triggerer: the trigger's position lives in memory here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsnexus.triggers import inbound
from airflow_provider_smsnexus.triggers.inbound import MemoryPositionStore, SMSNexusInboundMessageTrigger

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "inbound_replies.py"
OUR_NUMBER = "+12125550100"
CUSTOMERS = ["+12125550131", "+12125550132", "+12125550133"]
# The emulator's default account: +12125550101 is another active number, +12125550102 an inactive one.
OTHER_NUMBER, INACTIVE_NUMBER = "+12125550101", "+12125550102"
SINCE = "2026-01-01T00:00:00Z"


@pytest.fixture
def dags_folder(dags_folder_of, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGs folder holding only this DAG, answering from its default number the texts since SINCE; the
    trigger's position kept in memory."""
    shared = MemoryPositionStore()
    monkeypatch.setattr(inbound, "open_position_store", lambda asset_name: shared)
    monkeypatch.setenv("SMSNEXUS_INBOUND_SINCE", SINCE)
    monkeypatch.delenv("SMSNEXUS_FROM_NUMBER", raising=False)
    return dags_folder_of(DAG_FILE)


@pytest.fixture
def load_dag(dags_folder, parse_dag):
    """The DAG, parsed from its folder (the settings are read then); its tasks are not retried."""
    return lambda: parse_dag(dags_folder, "smsnexus_inbound_replies", retries=0)


def watcher_trigger(dag) -> SMSNexusInboundMessageTrigger:
    """The trigger of the DAG's own asset watcher, rebuilt from its kwargs with a short poll interval."""
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    _, kwargs = watcher.trigger.serialize()
    return SMSNexusInboundMessageTrigger(**{**kwargs, "poll_interval": 0.05})


def poll_events(trigger: SMSNexusInboundMessageTrigger, last_id: int) -> list[dict[str, Any]]:
    """Event payloads from the trigger up to and including the message ``last_id``."""

    async def take() -> list[dict[str, Any]]:
        agen = trigger.run()
        payloads = []
        try:
            while not payloads or payloads[-1]["message"]["id"] != last_id:
                payloads.append((await asyncio.wait_for(anext(agen), 30)).payload)
        finally:
            await agen.aclose()
        return payloads

    return asyncio.run(take())


def run_for_events(dag, asset_name: str, payloads: list[dict[str, Any]]):
    """``dag.test(logical_date=None)`` with the trigger's events recorded and linked to the run."""
    from unittest import mock

    from airflow.assets.manager import AssetManager
    from airflow.models import dagrun
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey

    real = dagrun.get_or_create_dagrun

    def with_asset_events(*args: Any, session, **kwargs: Any):
        run = real(*args, session=session, **kwargs)
        for payload in payloads:  # as Trigger.submit_event records them
            event = AssetManager.register_asset_change(
                asset=SerializedAssetUniqueKey(name=asset_name, uri=asset_name),
                extra={"from_trigger": True, "payload": payload},
                session=session,
            )
            run.consumed_asset_events.append(event)
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", with_asset_events):
        return dag.test(logical_date=None)


def test_each_reply_gets_one_answer_on_a_run_without_a_logical_date(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    replies = [admin.add_inbound(number, OUR_NUMBER, f"hello from {number}") for number in CUSTOMERS]
    dag = load_dag()
    payloads = poll_events(watcher_trigger(dag), replies[-1]["id"])

    dag_run = run_for_events(dag, "smsnexus_inbound_replies", payloads)

    assert dag_run.logical_date is None
    assert dag_run.state == "success"
    assert [p["message"]["id"] for p in payloads] == [r["id"] for r in replies]
    answers = admin.sent_messages()
    assert sorted((m["to"], m["body"]) for m in answers) == sorted(
        (r["from"], f"Thanks, we got your message #{r['id']}.") for r in replies
    )
    assert all(m["from"] == OUR_NUMBER for m in answers)


def test_an_event_handed_on_again_is_not_answered_twice(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    reply = admin.add_inbound(CUSTOMERS[0], OUR_NUMBER, "STATUS?")
    dag = load_dag()
    payloads = poll_events(watcher_trigger(dag), reply["id"])
    first = run_for_events(dag, "smsnexus_inbound_replies", payloads)
    # After a triggerer restart the same reply comes again, flagged (see the trigger's guarantee).
    repeated = [{**payloads[0], "possibly_repeated": True}]

    second = run_for_events(load_dag(), "smsnexus_inbound_replies", repeated)

    assert first.state == second.state == "success"
    assert [(m["to"], m["body"]) for m in admin.sent_messages()] == [
        (CUSTOMERS[0], f"Thanks, we got your message #{reply['id']}.")
    ]


def test_a_run_triggered_by_hand_answers_nobody(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    smsnexus_emulator.admin.add_inbound(CUSTOMERS[0], OUR_NUMBER, "hello")

    dag_run = load_dag().test(logical_date=None)

    assert dag_run.state == "success"
    assert smsnexus_emulator.admin.sent_messages() == []


def test_without_a_start_it_answers_from_the_first_run_on_and_nothing_from_before(
    dags_folder, parse_dag, airflow_db, smsnexus_emulator, smsnexus_conn, monkeypatch
):
    monkeypatch.delenv("SMSNEXUS_INBOUND_SINCE")
    store = MemoryPositionStore()
    monkeypatch.setattr(inbound, "open_position_store", lambda asset_name: store)
    admin = smsnexus_emulator.admin
    history = [admin.add_inbound(number, OUR_NUMBER, "an old text") for number in CUSTOMERS]
    # The server's clock a minute on: the history is older than the clock's uncertainty (listing_delay 0).
    admin.configure(clock_offset_seconds=60)
    dag = parse_dag(dags_folder, "smsnexus_inbound_replies", retries=0)
    trigger = watcher_trigger(dag)

    async def start_stored() -> None:
        while not any(v.get("start") for v in store.values.values()):
            await asyncio.sleep(0.01)

    async def first_run() -> list[dict[str, Any]]:
        agen = trigger.run()  # the first unpause
        first = asyncio.ensure_future(anext(agen))
        try:
            await asyncio.wait_for(start_stored(), 30)  # the start is placed before the first walk
            new = admin.add_inbound(CUSTOMERS[0], OUR_NUMBER, "a new text")
            return [(await asyncio.wait_for(first, 30)).payload, new]
        finally:
            first.cancel()
            await agen.aclose()

    payload, new = asyncio.run(first_run())
    dag_run = run_for_events(dag, "smsnexus_inbound_replies", [payload])

    assert trigger.serialize()[1]["since"] == "first-run"
    assert dag.is_paused_upon_creation is True
    assert payload["message"]["id"] == new["id"]
    assert new["id"] not in [m["id"] for m in history]
    assert dag_run.state == "success"
    assert [(m["to"], m["body"]) for m in admin.sent_messages()] == [
        (CUSTOMERS[0], f"Thanks, we got your message #{new['id']}.")
    ]


def test_texts_from_before_the_start_are_not_handed_on(
    dags_folder, parse_dag, airflow_db, smsnexus_emulator, smsnexus_conn, monkeypatch
):
    admin = smsnexus_emulator.admin
    history = [admin.add_inbound(number, OUR_NUMBER, "an old text") for number in CUSTOMERS]
    # The start, then the server's clock a minute on (created_at has whole seconds): no wait needed.
    start = datetime.fromisoformat(history[-1]["created_at"].replace("Z", "+00:00")) + timedelta(seconds=1)
    monkeypatch.setenv("SMSNEXUS_INBOUND_SINCE", start.isoformat())
    admin.configure(clock_offset_seconds=60)
    new = admin.add_inbound(CUSTOMERS[0], OUR_NUMBER, "a new text")
    dag = parse_dag(dags_folder, "smsnexus_inbound_replies", retries=0)

    payloads = poll_events(watcher_trigger(dag), new["id"])
    dag_run = run_for_events(dag, "smsnexus_inbound_replies", payloads)

    assert [p["message"]["id"] for p in payloads] == [new["id"]]
    assert dag_run.state == "success"
    assert [(m["to"], m["body"]) for m in admin.sent_messages()] == [
        (CUSTOMERS[0], f"Thanks, we got your message #{new['id']}.")
    ]


def test_only_texts_to_the_sending_number_are_answered_and_an_opt_out_is_not(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    to_other = admin.add_inbound(CUSTOMERS[0], OTHER_NUMBER, "hello other number")
    opt_out = admin.add_inbound(CUSTOMERS[1], OUR_NUMBER, "Stop.")
    question = admin.add_inbound(CUSTOMERS[2], OUR_NUMBER, "is my order ready?")
    dag = load_dag()

    payloads = poll_events(watcher_trigger(dag), question["id"])
    dag_run = run_for_events(dag, "smsnexus_inbound_replies", payloads)

    assert [p["message"]["id"] for p in payloads] == [opt_out["id"], question["id"]]
    assert to_other["id"] not in [p["message"]["id"] for p in payloads]
    assert dag_run.state == "success"
    assert [(m["from"], m["to"], m["body"]) for m in admin.sent_messages()] == [
        (OUR_NUMBER, CUSTOMERS[2], f"Thanks, we got your message #{question['id']}.")
    ]


def test_an_inactive_sending_number_fails_the_pre_flight_and_nobody_is_texted(
    dags_folder, parse_dag, airflow_db, smsnexus_emulator, smsnexus_conn, monkeypatch
):
    monkeypatch.setenv("SMSNEXUS_FROM_NUMBER", INACTIVE_NUMBER)
    admin = smsnexus_emulator.admin
    replies = [admin.add_inbound(number, INACTIVE_NUMBER, "hello") for number in CUSTOMERS]
    dag = parse_dag(dags_folder, "smsnexus_inbound_replies", retries=0)

    payloads = poll_events(watcher_trigger(dag), replies[-1]["id"])
    dag_run = run_for_events(dag, "smsnexus_inbound_replies", payloads)

    assert len(payloads) == len(CUSTOMERS)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["check_sender"] == "failed"
    assert admin.sent_messages() == []


def test_one_texts_error_fails_its_own_answer_and_the_others_are_answered(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    # +1 000 ... is no number in use (area code 000): the API lists the text, but no answer can go to it.
    senders = [CUSTOMERS[0], "+10005550100", CUSTOMERS[1]]
    replies = [admin.add_inbound(number, OUR_NUMBER, "hello") for number in senders]
    dag = load_dag()

    payloads = poll_events(watcher_trigger(dag), replies[-1]["id"])
    dag_run = run_for_events(dag, "smsnexus_inbound_replies", payloads)

    assert dag_run.state == "failed"
    assert sorted(ti.state for ti in dag_run.get_task_instances() if ti.task_id == "answer") == [
        "failed",
        "success",
        "success",
    ]
    assert sorted((m["to"], m["body"]) for m in admin.sent_messages()) == sorted(
        (r["from"], f"Thanks, we got your message #{r['id']}.") for r in (replies[0], replies[2])
    )
