"""Tests of the inbound-message reading the reply triggers share: ids, filters, windows, full walks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers.inbox import (
    Edge,
    InboxWindow,
    ReplyFilter,
    message_id,
    read_inbound,
)

LOG = logging.getLogger(__name__)


def test_message_id_accepts_integer_ids_and_refuses_others() -> None:
    assert message_id({"id": 7}) == 7
    assert message_id({"id": "8"}) == 8
    with pytest.raises(SMSNexusResponseError, match="not an integer"):
        message_id({"id": "msg_1"})


def test_reply_filter_checks_direction_sender_recipient_and_pattern() -> None:
    reply_filter = ReplyFilter(from_numbers=["+1 212 555 0150"], to_number="+12125550100", pattern="^yes$")
    good = {"direction": "inbound", "from": "+12125550150", "to": "+12125550100", "body": " YES "}
    assert reply_filter.matches(good)
    assert not reply_filter.matches({**good, "direction": "outbound"})
    assert not reply_filter.matches({**good, "from": "+12125550151"})
    assert not reply_filter.matches({**good, "body": "yes please"})
    assert reply_filter.from_awaited({**good, "body": "yes please"})  # from the contact, any text


def test_an_invalid_pattern_is_an_error_naming_the_field() -> None:
    with pytest.raises(SMSNexusError, match=r"pattern='\(' is not a valid regular expression"):
        ReplyFilter(pattern="(")


def test_an_edge_moves_back_with_a_step_back_of_the_servers_clock() -> None:
    noon = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)
    read_at = noon.timestamp()  # the local moment the read that made the edge started
    same_clock = lambda local: local  # noqa: E731 - the server's clock as measured then
    set_back = lambda local: local - timedelta(hours=2)  # noqa: E731 - measured now, two hours behind
    assert Edge(noon, read_at).start(same_clock) == noon
    assert Edge(noon, read_at).start(set_back) == noon - timedelta(hours=2)
    assert Edge(noon).start(set_back) == noon  # a moment known on the server's clock only
    assert Edge.from_json(Edge(noon, read_at).as_json()) == Edge(noon, read_at)


def test_read_inbound_returns_every_later_inbound_message_by_id_and_moves_on(
    smsnexus_emulator, smsnexus_conn
) -> None:
    admin = smsnexus_emulator.admin
    first = admin.add_inbound("+12125550150", "+12125550100", "one")
    admin.add_inbound("+12125550151", "+12125550100", "two")
    admin.add_inbound("+12125550152", "+12125550101", "three")
    hook = SMSNexusHook(smsnexus_conn_id=smsnexus_conn)
    expected = [m["body"] for m in admin.messages(direction="inbound") if m["id"] > first["id"]]
    window = InboxWindow(first["id"], None)

    rows = read_inbound(hook, window, LOG)

    assert [row["body"] for row in rows] == expected == ["two", "three"]
    assert window.edge is not None  # the next look starts at this one's listed horizon
