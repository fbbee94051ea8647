"""Resuming a campaign from the send ledger: whose record a ledger row is.

A restarted emulator (the quick start run twice) starts a campaign afresh; a row recorded as sent from another
account is neither trusted nor repeated. Expected values come from each emulator's own record."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

import pandas as pd
import pytest

from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin
from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from tests.campaign.test_exactly_once_emulator import SENDER, context, numbers
from tests.emulator.test_cli import read_line

OTHER_TOKEN = "SMSNEXUS-TEST-TOKEN-other-account"


def campaign(**kwargs) -> SMSNexusBulkSendOperator:
    return SMSNexusBulkSendOperator(
        task_id="send",
        recipients=pd.DataFrame({"to": numbers(2), "name": ["Ada", "Alan"]}),
        message_template="Hi {{ row.name }}",
        from_number=SENDER,
        campaign_id="quick-start",
        honor_opt_outs=False,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CliEmulator:
    """``smsnexus-emulator`` as a user starts it in a second terminal, on a fixed port."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = read_line(self.process)
        self.connection = re.search(r"AIRFLOW_CONN_SMSNEXUS_DEFAULT='(.*)'", line).group(1)
        self.admin = EmulatorAdmin(json.loads(self.connection)["host"].removesuffix("/api"))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=20)


def test_a_restarted_emulator_starts_the_campaign_afresh_and_each_run_texts_each_recipient_once(monkeypatch):
    port = free_port()
    first = CliEmulator(port)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", first.connection)
        assert campaign().execute(context())["sent"] == 2
        assert campaign().execute(context())["already_sent"] == 2  # the same run: nothing twice
        assert sorted(m["to"] for m in first.admin.sent_messages()) == numbers(2)
    finally:
        first.stop()
    second = CliEmulator(port)  # the same URL and token, a new run holding no messages
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", second.connection)
        summary = campaign().execute(context())
        assert (summary["sent"], summary["already_sent"]) == (2, 0)
        assert sorted(m["to"] for m in second.admin.sent_messages()) == numbers(2)
    finally:
        second.stop()


def test_a_row_sent_from_another_account_is_unknown_and_not_sent_again(
    smsnexus_emulator, monkeypatch, tmp_path
):
    admin = smsnexus_emulator.admin
    other = admin.add_account(OTHER_TOKEN, numbers=[SENDER])
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json())
    assert campaign().execute(context())["sent"] == 2
    other_connection = json.loads(smsnexus_emulator.connection_json())
    other_connection["password"] = OTHER_TOKEN
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", json.dumps(other_connection))
    report = tmp_path / "other.parquet"
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="2 of 2 messages have an unknown outcome"):
        campaign(report_path=str(report)).execute(context())  # said at run time: the task fails
    assert admin.sent_messages(account=other) == []  # not repeated from the other account
    rows = pd.read_parquet(report)
    assert set(rows["outcome"]) == {"unknown"}
    assert rows["reason"].str.contains("sent from another account").all()
