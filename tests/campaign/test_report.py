"""Tests of the campaign report: the Parquet file, the XCom summary, and the task's final verdict."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from airflow_provider_smsnexus.campaign.model import CampaignRow
from airflow_provider_smsnexus.campaign.report import (
    REPORT_COLUMNS,
    raise_for_outcome,
    summarise,
    write_report,
)
from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusSendOutcomeUnknownError


def test_write_report_writes_one_typed_row_per_input_row(tmp_path) -> None:
    rows = [
        {"row_number": 1, "recipient": "+12125550101", "outcome": "sent", "message_id": "9", "credits": 1},
        {"row_number": 2, "recipient": "bad \udcff", "outcome": "invalid", "reason": "not a number"},
    ]
    destination = tmp_path / "sub" / "report.parquet"
    assert write_report(rows, destination) == str(destination)
    table = pq.read_table(destination)
    assert table.schema.names == [name for name, _ in REPORT_COLUMNS]
    assert table.to_pylist() == [
        {"row_number": 1, "recipient": "+12125550101", "outcome": "sent", "message_id": "9", "credits": 1,
         "reason": None},
        {"row_number": 2, "recipient": "bad \\udcff", "outcome": "invalid", "message_id": None,
         "credits": None, "reason": "not a number"},
    ]  # fmt: skip
    assert [p.name for p in destination.parent.iterdir()] == ["report.parquet"]


def _rows(*outcomes: str) -> list[CampaignRow]:
    return [CampaignRow(row_number=i, outcome=o, credits=2) for i, o in enumerate(outcomes, 1)]


def test_summarise_counts_outcomes_and_credits_of_sent_rows_only() -> None:
    summary = summarise("c", _rows("sent", "sent", "failed", "duplicate", "unknown"), 9, dry_run=False)
    assert summary == {
        "campaign_id": "c", "total": 5, "invalid": 0, "duplicates": 1, "suppressed": 0, "already_sent": 0,
        "sent": 2, "failed": 1, "unknown": 1, "credits_estimated": 9, "credits_used": 4, "dry_run": False,
    }  # fmt: skip


def test_raise_for_outcome_fails_on_unknown_rows_and_on_too_many_failures() -> None:
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="1 of 2 messages have an unknown outcome"):
        raise_for_outcome(None, summarise("c", _rows("sent", "unknown"), 0, dry_run=False), 1.0)
    with pytest.raises(SMSNexusError, match="1 of 2 sends failed"):
        raise_for_outcome(None, summarise("c", _rows("sent", "failed"), 0, dry_run=False), 0.4)
    raise_for_outcome(None, summarise("c", _rows("sent", "failed"), 0, dry_run=False), 0.5)
