"""Tests of the campaign row model: answer fields as integers, reasons, campaign ids, report rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_smsnexus.campaign.model import (
    NOT_ATTEMPTED,
    SENT,
    CampaignRow,
    as_int,
    default_campaign_id,
    reason_of,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusValidationError


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), ("12", 12), (None, None), (True, None), ("x", None), ([], None)]
)
def test_as_int_accepts_numbers_and_rejects_booleans_and_junk(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


def test_reason_of_lists_the_servers_field_errors_for_a_422() -> None:
    exc = SMSNexusValidationError("invalid", errors={"to": ["is invalid."]})
    assert reason_of(exc) == "rejected by SMS Nexus (422): to: is invalid."


def test_reason_of_names_the_type_of_a_foreign_error_and_says_when_there_is_none() -> None:
    assert reason_of(ValueError("bad")) == "ValueError: bad"
    assert reason_of(None) == "no reason recorded"


def test_default_campaign_id_is_dag_task_run_and_map_index_unless_partitioned() -> None:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="manual__1", map_index=2)
    assert default_campaign_id({"ti": ti}, task=None) == "d.t.manual__1.2"
    assert default_campaign_id({"ti": ti}, task=None, partitioned=True) == "d.t.manual__1"


def test_default_campaign_id_without_a_run_id_is_an_error() -> None:
    task = SimpleNamespace(dag_id="d", task_id="t")
    with pytest.raises(SMSNexusCampaignError, match="run_id"):
        default_campaign_id({}, task)


def test_report_row_of_an_undecided_invalid_row_shows_the_raw_number_as_not_attempted() -> None:
    row = CampaignRow(row_number=4, raw_to="not a number")
    assert row.report_row() == {
        "row_number": 4,
        "recipient": "not a number",
        "outcome": NOT_ATTEMPTED,
        "message_id": None,
        "credits": None,
        "reason": None,
        "zones": None,
        "local_time": None,
    }


def test_found_records_the_message_id_as_text_and_credits_as_an_integer() -> None:
    row = CampaignRow(row_number=1, recipient="+12125550101", message_hash="h")
    row.settle("unknown", "timed out")
    row.found(SENT, {"id": 7}, message_id=7, credits="2")
    assert (row.outcome, row.reason, row.message_id, row.credits) == (SENT, None, "7", 2)
    assert row.key == ("+12125550101", "h")


def test_report_row_of_a_row_sent_in_its_window_gives_its_zones_and_local_time() -> None:
    row = CampaignRow(row_number=2, recipient="+12125550101", message_hash="h")
    row.zones = ("America/New_York",)
    row.found(SENT, {"id": 7, "created_at": "2026-03-02T14:00:05Z"}, message_id=7, credits=1)
    # by hand: 14:00:05Z is 09:00:05 in New York (UTC-5 before 2026-03-08)
    assert row.report_row()["zones"] == "America/New_York"
    assert row.report_row()["local_time"] == "2026-03-02T09:00:05-05:00 America/New_York"
