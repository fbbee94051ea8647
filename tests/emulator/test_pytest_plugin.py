"""Tests of the emulator's pytest fixtures: each test gets a reset emulator and a connection to it.

Every test here first checks the reset state and then dirties it, so whichever runs second (in any
order) proves the reset between tests.
"""

from __future__ import annotations

import json
import os

from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_MANUAL, LIFTED_LIMIT
from airflow_provider_smsnexus.emulator.testing import TEST_CONNECTION_EXTRAS
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook


def _assert_reset(handle) -> None:
    assert handle.admin.account()["credits"] == 10_000
    assert handle.admin.messages() == []
    config = handle.admin.config()
    assert config["lifecycle"] == LIFECYCLE_MANUAL
    assert config["send_limit"] == LIFTED_LIMIT


def test_the_emulator_fixture_starts_reset_and_this_test_dirties_it(smsnexus_emulator) -> None:
    _assert_reset(smsnexus_emulator)
    smsnexus_emulator.admin.set_balance(3)
    smsnexus_emulator.admin.add_inbound("+12125550150", "+12125550100", "hello")
    smsnexus_emulator.admin.configure(lifecycle="auto")


def test_the_conn_fixture_points_the_default_connection_at_the_emulator(
    smsnexus_emulator, smsnexus_conn
) -> None:
    _assert_reset(smsnexus_emulator)
    assert smsnexus_conn == "smsnexus_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_SMSNEXUS_DEFAULT"])
    assert conn["extra"]["retry_backoff"] == TEST_CONNECTION_EXTRAS["retry_backoff"]
    sent = SMSNexusHook(smsnexus_conn_id=smsnexus_conn).send_sms("+12125550100", "+12125550150", "hi")
    assert [m["id"] for m in smsnexus_emulator.admin.sent_messages()] == [sent["id"]]
