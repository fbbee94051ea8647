"""``MessageQueueTrigger(scheme="smsnexus")`` of Airflow's common.messaging provider: Airflow finds the SMS
Nexus queue provider, the trigger an asset watcher stores is the project's own inbound trigger (so the
triggerer runs that one, with its guarantee), and it yields the same events against the emulator under the
switches of the list's order and date parameters.

Outside a triggerer the asset state store does not exist: ``open_position_store`` hands each trigger a
memory store of its own here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_smsnexus.triggers import inbound
from airflow_provider_smsnexus.triggers.inbound import MemoryPositionStore, SMSNexusInboundMessageTrigger

pytest.importorskip("airflow.providers.common.messaging", reason="the messaging extra is not installed")

OUR_NUMBER = "+12125550100"
OTHER_NUMBER = "+12125550101"
PROVIDER_CLASS = "airflow_provider_smsnexus.queues.smsnexus.SMSNexusMessageQueueProvider"
WAIT = 30.0


def kwargs_of_a_watcher(**changes: Any) -> dict[str, Any]:
    """The keyword arguments a DAG author gives: a filter, a start, the watched asset."""
    return {
        "asset_name": "sms_replies",
        "to_number": OUR_NUMBER,
        "pattern": r"\border\b",
        "after_id": 0,
        "poll_interval": 0.05,
        **changes,
    }


def message_queue_trigger(**kwargs: Any):
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    return MessageQueueTrigger(scheme="smsnexus", **kwargs)


def test_airflow_lists_the_smsnexus_queue_provider(tmp_path):
    # A fresh interpreter: the providers manager reads "queues" from the installed provider's info.
    script = (
        "import json\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "print(json.dumps(ProvidersManager().queue_class_names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    assert PROVIDER_CLASS in json.loads(result.stdout.strip().splitlines()[-1])


def test_an_asset_watcher_stores_the_projects_own_inbound_trigger():
    from airflow._shared.module_loading import import_string  # as the triggerer imports a trigger
    from airflow.sdk import Asset, AssetWatcher
    from airflow.serialization.encoders import encode_asset_like

    queue_trigger = message_queue_trigger(**kwargs_of_a_watcher())
    asset = Asset("sms_replies", watchers=[AssetWatcher(name="sms_replies", trigger=queue_trigger)])

    (stored,) = encode_asset_like(asset)["watchers"]
    classpath, kwargs = stored["trigger"]["classpath"], stored["trigger"]["kwargs"]
    # What the triggerer builds from the stored watcher: the project's trigger, the same identity.
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    own = SMSNexusInboundMessageTrigger(**kwargs_of_a_watcher())
    assert classpath == "airflow_provider_smsnexus.triggers.inbound.SMSNexusInboundMessageTrigger"
    assert isinstance(queue_trigger.trigger, SMSNexusInboundMessageTrigger)
    assert rebuilt.serialize() == own.serialize() == queue_trigger.serialize()
    assert rebuilt.state_key == own.state_key


def test_a_scheme_that_no_provider_registers_is_refused_naming_it():
    trigger = message_queue_trigger(**kwargs_of_a_watcher())
    trigger.scheme = "smsnexus-typo"

    with pytest.raises(ValueError, match="smsnexus-typo"):
        trigger.serialize()


async def _take(trigger: Any, wanted: set[int]) -> list[dict[str, Any]]:
    """Event payloads from ``trigger.run()`` until every id of ``wanted`` was handed on."""
    events = trigger.run()
    payloads: list[dict[str, Any]] = []
    try:
        while not wanted <= {p["message"]["id"] for p in payloads}:
            payloads.append((await asyncio.wait_for(anext(events), WAIT)).payload)
    finally:
        await events.aclose()
    return payloads


SWITCHES = {
    "newest_first": {},
    "oldest_first": {"list_order": "oldest_first"},
    "date_params_ignored": {"ignore_date_params": True},
}


@pytest.mark.parametrize("switches", SWITCHES.values(), ids=SWITCHES.keys())
def test_the_message_queue_trigger_yields_the_same_events_as_the_inbound_trigger(
    smsnexus_conn, smsnexus_emulator, monkeypatch, switches
):
    monkeypatch.setattr(inbound, "open_position_store", lambda asset_name: MemoryPositionStore())
    admin = smsnexus_emulator.admin
    admin.configure(**switches)
    texts = [
        ("+12125551001", OUR_NUMBER, "where is my order?"),
        ("+12125551002", OUR_NUMBER, "thanks, bye"),  # not matching the pattern
        ("+12125551003", OTHER_NUMBER, "order 12 please"),  # to another number of the account
        ("+12125551004", OUR_NUMBER, "Order #7 arrived broken"),
        ("+12125551005", OUR_NUMBER, "cancel my ORDER"),
    ]
    for sender, to, body in texts:
        admin.add_inbound(sender, to, body)
    # The emulator's own record, filtered by hand as the watcher's kwargs say.
    expected = sorted(
        m["id"]
        for m in admin.messages(direction="inbound")
        if m["to"] == OUR_NUMBER and "order" in m["body"].lower()
    )
    assert len(expected) == 3

    via_queue = asyncio.run(_take(message_queue_trigger(**kwargs_of_a_watcher()), set(expected)))
    via_own = asyncio.run(_take(SMSNexusInboundMessageTrigger(**kwargs_of_a_watcher()), set(expected)))

    assert sorted(p["message"]["id"] for p in via_queue) == expected  # each once, none other
    assert sorted(via_queue, key=lambda p: p["message"]["id"]) == sorted(
        via_own, key=lambda p: p["message"]["id"]
    )
    assert {p["possibly_repeated"] for p in via_queue} == {False}
