"""Tests of the pre-flight check against the emulator's numbers and balance (over HTTP)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_smsnexus.campaign.model import CampaignRow
from airflow_provider_smsnexus.campaign.preflight import preflight
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.phone import listed_number as e164

LOG = logging.getLogger(__name__)


def _row(number: int, sender: str, media_url: str | None = None) -> CampaignRow:
    return CampaignRow(row_number=number, recipient="+12125550150", from_number=sender, media_url=media_url)


def test_e164_keeps_e164_numbers_and_normalises_others() -> None:
    assert e164("+12125550100") == "+12125550100"
    assert e164("+1 (212) 555-0100") == "+12125550100"
    assert e164(None) is None


def test_preflight_passes_for_active_senders_with_the_capabilities_and_credits(smsnexus_conn: str) -> None:
    rows = [_row(1, "+12125550100", "https://example.com/a.png"), _row(2, "+12125550101")]
    preflight(SMSNexusHook(smsnexus_conn_id=smsnexus_conn), rows, 2, LOG)


def test_preflight_names_an_unknown_an_inactive_and_an_incapable_sender(smsnexus_conn: str) -> None:
    rows = [
        _row(1, "+12125550199"),
        _row(2, "+12125550102"),
        _row(3, "+12125550101", "https://example.com/a.png"),
    ]
    with pytest.raises(SMSNexusCampaignError) as excinfo:
        preflight(SMSNexusHook(smsnexus_conn_id=smsnexus_conn), rows, 3, LOG)
    message = str(excinfo.value)
    assert "nothing was sent" in message
    assert "+12125550199 is not a number of this SMS Nexus account" in message
    assert "+12125550102 is 'inactive', not active" in message
    assert "+12125550101 cannot send MMS (capabilities: sms) but 1 row(s) need it" in message


def test_preflight_refuses_a_campaign_the_balance_cannot_pay(smsnexus_emulator, smsnexus_conn: str) -> None:
    smsnexus_emulator.admin.set_balance(5)
    rows = [_row(1, "+12125550100")]
    with pytest.raises(SMSNexusCampaignError, match="need about 6 credits but the balance is 5"):
        preflight(SMSNexusHook(smsnexus_conn_id=smsnexus_conn), rows, 6, LOG)
    assert smsnexus_emulator.admin.sent_messages() == []
