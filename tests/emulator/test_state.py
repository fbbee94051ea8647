"""Tests of the emulator's whole state: reset, run-time configuration and message inspection."""

from __future__ import annotations

import pytest

from airflow_provider_smsnexus.emulator.settings import DEFAULT_TOKEN, EmulatorSettings
from airflow_provider_smsnexus.emulator.state import Emulator
from airflow_provider_smsnexus.emulator.validation import ValidationFailed


def test_configure_changes_settings_and_returns_them_without_tokens() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    public = emulator.configure({"list_order": "oldest_first", "failure_share": 0.25})
    assert emulator.settings.list_order == "oldest_first"
    assert public["failure_share"] == 0.25
    assert "tokens" not in public
    assert DEFAULT_TOKEN not in repr(public)


def test_configure_with_one_bad_value_changes_nothing() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    before = emulator.settings
    with pytest.raises(ValidationFailed) as excinfo:
        emulator.configure({"list_order": "oldest_first", "no_such_switch": 1, "send_limit": -5})
    assert excinfo.value.errors == {
        "no_such_switch": ["The no_such_switch setting does not exist."],
        "send_limit": ["The send_limit setting must be a positive number."],
    }
    assert emulator.settings == before


def test_reset_restores_start_up_settings_and_empties_the_accounts() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    emulator.configure({"list_order": "oldest_first"})
    emulator.add_live_traffic(emulator.account(1), 5)
    old_ids = {m["id"] for m in emulator.inspect_messages(emulator.account(1))}
    emulator.reset()
    assert emulator.settings.list_order == EmulatorSettings.for_tests().list_order
    assert emulator.inspect_messages(emulator.account(1)) == []
    emulator.add_live_traffic(emulator.account(1), 1)
    assert {m["id"] for m in emulator.inspect_messages(emulator.account(1))}.isdisjoint(old_ids)


def test_inspect_messages_filters_by_direction_and_adds_the_origin() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    emulator.add_live_traffic(emulator.account(1), 30)
    everything = emulator.inspect_messages(emulator.account(1))
    inbound = emulator.inspect_messages(emulator.account(1), direction="inbound")
    assert [m for m in everything if m["direction"] == "inbound"] == inbound
    assert {m["origin"] for m in everything} == {"live"}
    assert all("media_url" in m for m in everything)
