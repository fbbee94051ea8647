"""Tests of the single-message path: the message as a campaign row, and the result of its outcome."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, FAILED, SENT, UNKNOWN, CampaignRow
from airflow_provider_smsnexus.campaign.render import message_hash
from airflow_provider_smsnexus.campaign.single import as_message, message_result, message_row
from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusValidationError,
)

LOG = logging.getLogger(__name__)


def test_message_row_normalises_both_numbers_and_hashes_the_trimmed_text() -> None:
    row = message_row(
        to="(212) 555-0150",
        from_number="+1 212 555 0100",
        message=" Hi ",
        media_url=None,
        default_region="US",
    )
    assert (row.recipient, row.from_number, row.body) == ("+12125550150", "+12125550100", "Hi")
    assert row.message_hash == message_hash("+12125550100", "Hi")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"to": "nope"}, r"to='nope' is not a usable phone number"),
        ({"from_number": "12"}, r"from_number='12' is not a usable phone number"),
        ({"message": "  "}, "The message cannot be sent: empty message"),
        ({"media_url": "ftp://x/y"}, "invalid media_url"),
    ],
)
def test_message_row_names_the_bad_argument(kwargs: dict, match: str) -> None:
    arguments = {"to": "+12125550150", "from_number": "+12125550100", "message": "Hi", "media_url": None}
    with pytest.raises(SMSNexusCampaignError, match=match):
        message_row(**{**arguments, **kwargs}, default_region=None)


def _row(outcome: str, **fields) -> CampaignRow:
    row = CampaignRow(1, recipient="+12125550150", from_number="+12125550100", body="Hi", **fields)
    row.settle(outcome, fields.get("reason"))
    return row


def test_an_already_sent_row_returns_what_the_ledger_knows() -> None:
    row = _row(ALREADY_SENT, message_id="42", credits=1)
    assert message_result(row, LOG) == as_message(row) == {
        "id": 42, "from": "+12125550100", "to": "+12125550150", "body": "Hi", "credits_used": 1,
    }  # fmt: skip
    assert message_result(_row(SENT, message={"id": 7}), LOG) == {"id": 7}


def test_an_unknown_outcome_raises_the_unknown_error_naming_the_recipient() -> None:
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match=r"\+12125550150 may or may not have been sent"):
        message_result(_row(UNKNOWN, reason="read timed out"), LOG)


def test_a_server_refusal_is_raised_with_its_own_class() -> None:
    refusal = SMSNexusValidationError("invalid to", errors={"to": ["bad"]})
    with pytest.raises(SMSNexusValidationError):
        message_result(_row(FAILED, error=refusal, reason="rejected"), LOG)
    with pytest.raises(SMSNexusError, match="was not sent: boom"):
        message_result(_row(FAILED, error=ValueError("x"), reason="boom"), LOG)
