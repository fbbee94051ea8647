"""Hole 2 of issue 11: a TLS error after the server acted is never "provably not sent".

A TLS proxy in front of the emulator forwards each send to the emulator, then writes a corrupt TLS record
instead of the answer: the client's TLS layer fails after the handshake, once the request was written. The
expected outcome comes from the servers' own records: the emulator's list of what it sent, and the proxy's
copy of the emulator's answer to each corrupted send.
"""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_PENDING
from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator
from tests.campaign.tls_proxy import CorruptingTLSProxy, is_send
from tests.hooks.tls_servers import self_signed_certificate

SENDER = "+12125550100"
RECIPIENTS = ["+12125550111", "+12125550112", "+12125550113", "+12125550114"]
CORRUPTED = {"+12125550112", "+12125550114"}


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(tmp_path)


@pytest.fixture
def proxy(smsnexus_emulator, certificate, monkeypatch):
    """The TLS proxy in front of the emulator, and the default connection pointing at it."""
    with CorruptingTLSProxy(certificate, smsnexus_emulator.base_url) as front:
        connection = {
            "conn_type": "smsnexus",
            "host": front.url,
            "password": smsnexus_emulator.token,
            "extra": {"verify": str(certificate.cert_path), "timeout": 3, "retry_backoff": 0.01},
        }
        monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", json.dumps(connection))
        yield front


def context(try_number: int = 1) -> dict:
    ti = SimpleNamespace(
        dag_id="tls", task_id="send", run_id="manual__tls", map_index=-1, try_number=try_number
    )
    return {"ti": ti, "run_id": "manual__tls", "ds": "2026-03-08", "params": {}}


def sent_to(request: bytes) -> str:
    return json.loads(request.partition(b"\r\n\r\n")[2])["to"]


def test_a_tls_error_after_the_emulator_stored_the_send_is_looked_up_and_never_resent(
    proxy, smsnexus_emulator, tmp_path
):
    proxy.corrupt = lambda request: is_send(request) and sent_to(request) in CORRUPTED
    report = tmp_path / "report.parquet"
    summary = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=pd.DataFrame({"to": RECIPIENTS}),
        message_template="Your code is 4711",
        from_number=SENDER,
        honor_opt_outs=False,
        max_failure_rate=0,
        campaign_id="tls-after-send",
        report_path=str(report),
    ).execute(context())

    # The proxy corrupted the answers to exactly these sends, after the emulator had stored each of them.
    stored = {sent_to(request): answer["data"] for request, answer in proxy.corrupted}
    assert set(stored) == CORRUPTED
    sent = smsnexus_emulator.admin.sent_messages()
    assert Counter(m["to"] for m in sent) == dict.fromkeys(RECIPIENTS, 1)  # everyone once, nobody twice
    rows = pd.read_parquet(report).set_index("recipient")
    assert set(rows["outcome"]) == {"sent"}  # neither failed (and resent by a rerun) nor left unknown
    for recipient, answer in stored.items():  # the lookup found the very message the emulator stored
        assert rows.loc[recipient, "message_id"] == str(answer["id"])
    assert (summary["sent"], summary["failed"], summary["unknown"]) == (4, 0, 0)


def test_a_tls_error_after_the_send_with_the_lookup_down_stays_unknown_and_a_retry_finds_it(
    proxy, smsnexus_emulator, ledger_home
):
    # After the corrupted send, every lookup fails the same way: the first attempt cannot settle the row.
    proxy.corrupt = lambda request: (
        is_send(request) or (bool(proxy.corrupted) and request.startswith(b"GET /api/messages"))
    )

    def operator() -> SMSNexusSendSmsOperator:
        return SMSNexusSendSmsOperator(
            task_id="send",
            from_number=SENDER,
            to=RECIPIENTS[0],
            message="Your code is 4711",
            campaign_id="tls",
            lease_seconds=3,  # the retry waits out the pending mark's fence and the request's longest time
        )

    with pytest.raises(SMSNexusSendOutcomeUnknownError):
        operator().execute(context(try_number=1))
    (stored,) = [answer["data"] for request, answer in proxy.corrupted if is_send(request)]
    assert len(proxy.corrupted) > 1  # the lookups were corrupted too
    assert [m["id"] for m in smsnexus_emulator.admin.sent_messages()] == [stored["id"]]
    with SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db") as ledger:
        (entry,) = ledger.entries(smsnexus_emulator.admin.ledger_campaign("tls"))
    assert entry.state == STATE_PENDING  # not "failed": a retry looks it up before any send

    proxy.corrupt = lambda request: False  # the server answers again
    result = operator().execute(context(try_number=2))
    assert result["id"] == stored["id"]  # the retry found the stored message ...
    assert [m["id"] for m in smsnexus_emulator.admin.sent_messages()] == [
        stored["id"]
    ]  # ... and sent nothing
