"""Tests of SMSNexusReplyTrigger: serialisation and runs against the emulator on a real event loop."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusInvalidNumberError
from airflow_provider_smsnexus.triggers.inbox import ReplyFilter
from airflow_provider_smsnexus.triggers.reply import SMSNexusReplyTrigger, first_reply


def _first_event(trigger: SMSNexusReplyTrigger) -> dict:
    async def run() -> dict:
        return (await asyncio.wait_for(anext(trigger.run()), 30)).payload

    return asyncio.run(run())


def test_serialize_round_trip_keeps_the_filter_and_starting_point() -> None:
    trigger = SMSNexusReplyTrigger(
        from_number="+1 212 555 0150", pattern="yes", after_id=4, after="2026-03-08T12:00:00+00:00"
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_smsnexus.triggers.reply.SMSNexusReplyTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["from_number"] == "+12125550150"
    assert (kwargs["pattern"], kwargs["after_id"], kwargs["after"]) == ("yes", 4, "2026-03-08T12:00:00Z")
    assert SMSNexusReplyTrigger(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize("number", ["2015550142", "12125550150"])
def test_a_number_without_a_country_is_refused_naming_from_number(number) -> None:
    # "2015550142" read as "+2015550142" would wait on a number in Egypt.
    with pytest.raises(
        SMSNexusInvalidNumberError, match=rf"^from_number='{number}' is not a usable"
    ) as caught:
        SMSNexusReplyTrigger(from_number=number, after_id=1)
    assert caught.value.parameter == "from_number"


def test_first_reply_is_the_lowest_matching_id() -> None:
    rows = [
        {"id": 1, "from": "+12125550151"},
        {"id": 2, "from": "+12125550150"},
        {"id": 3, "from": "+12125550150"},
    ]
    assert first_reply(rows, ReplyFilter(from_numbers=["+12125550150"])) == rows[1]
    assert first_reply(rows, ReplyFilter(from_numbers=["+12125550159"])) is None


def test_trigger_fires_with_the_first_matching_reply_after_the_question(
    smsnexus_emulator, smsnexus_conn
) -> None:
    admin = smsnexus_emulator.admin
    question = admin.add_inbound("+12125550150", "+12125550100", "yes (before the question)")
    admin.add_inbound("+12125550150", "+12125550100", "maybe")
    answer = admin.add_inbound("+12125550150", "+12125550100", "YES")
    trigger = SMSNexusReplyTrigger(
        from_number="+12125550150", pattern="^yes$", after_id=question["id"], poke_interval=0.01
    )
    payload = _first_event(trigger)
    assert payload["status"] == "success"
    assert (payload["reply"]["id"], payload["reply"]["body"]) == (answer["id"], "YES")


def test_trigger_without_a_reply_times_out_at_its_deadline(smsnexus_emulator, smsnexus_conn) -> None:
    trigger = SMSNexusReplyTrigger(from_number="+12125550150", poke_interval=0.01, deadline=time.time() - 1)
    assert _first_event(trigger) == {
        "status": "timeout",
        "message": "No a reply from +12125550150 before the deadline",
    }


def test_a_check_reads_a_bounded_number_of_pages_of_a_long_inbound_history(
    smsnexus_emulator, smsnexus_conn
) -> None:
    admin = smsnexus_emulator.admin
    admin.seed_messages(41_000, random_seed=11)  # 90 days of history, a quarter of it inbound
    assert len(admin.messages(direction="inbound")) >= 10_000
    question = admin.add_inbound("+12125550150", "+12125550100", "the question (its id only is given)")
    answer = admin.add_inbound("+12125550150", "+12125550100", "YES")
    trigger = SMSNexusReplyTrigger(from_number="+12125550150", pattern="^yes$", after_id=question["id"])
    before = admin.stats()["requests"]["other"]

    payload = _first_event(trigger)  # one check: the reply is there

    assert payload["reply"]["id"] == answer["id"]
    # A balance read measures the server's clock, then one page of the last hour holds ids up to the question.
    assert admin.stats()["requests"]["other"] - before <= 3
