"""Tests of the inbound-message reading the reply triggers share: ids, filters, windows, full walks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers._inbox import (
    ReplyFilter,
    message_id,
    read_inbound_after,
    window_start,
)


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


def test_an_invalid_pattern_is_an_error_naming_the_field() -> None:
    with pytest.raises(SMSNexusError, match=r"pattern='\(' is not a valid regular expression"):
        ReplyFilter(pattern="(")


def test_window_start_looks_back_from_the_newest_message_but_never_before_since() -> None:
    since = datetime(2026, 3, 8, 11, 30, tzinfo=timezone.utc)
    assert window_start(None, since, 3600) == since
    assert window_start("2026-03-08T12:00:00Z", None, 3600) == datetime(2026, 3, 8, 11, tzinfo=timezone.utc)
    assert window_start("2026-03-08T12:00:00Z", since, 3600) == since


def test_read_inbound_after_returns_every_later_inbound_message_by_id(
    smsnexus_emulator, smsnexus_conn
) -> None:
    admin = smsnexus_emulator.admin
    first = admin.add_inbound("+12125550150", "+12125550100", "one")
    admin.add_inbound("+12125550151", "+12125550100", "two")
    admin.add_inbound("+12125550152", "+12125550101", "three")
    hook = SMSNexusHook(smsnexus_conn_id=smsnexus_conn)
    expected = [m["body"] for m in admin.messages(direction="inbound") if m["id"] > first["id"]]
    rows = read_inbound_after(hook, first["id"], since=None, start=None)
    assert [row["body"] for row in rows] == expected == ["two", "three"]
