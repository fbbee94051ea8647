"""Tests of campaign planning: duplicates, suppression, STOP keywords and partitions."""

from __future__ import annotations

import hashlib

from airflow_provider_smsnexus.campaign.model import DUPLICATE, SUPPRESSED, CampaignRow
from airflow_provider_smsnexus.campaign.plan import (
    mark_duplicates,
    opted_out_numbers,
    partition_of,
    suppress,
)


def test_mark_duplicates_keeps_the_first_sendable_row_of_each_number() -> None:
    rows = [
        CampaignRow(row_number=1, recipient="+12125550101", outcome="invalid"),
        CampaignRow(row_number=2, recipient="+12125550101"),
        CampaignRow(row_number=3, recipient="+12125550101"),
        CampaignRow(row_number=4, recipient="+12125550102"),
    ]
    mark_duplicates(rows)
    assert [(r.outcome, r.reason) for r in rows] == [
        ("invalid", None),
        (None, None),
        (DUPLICATE, "same number as row 2"),
        (None, None),
    ]


def test_suppress_marks_only_undecided_rows_with_a_reason() -> None:
    rows = [
        CampaignRow(row_number=1, recipient="+12125550101"),
        CampaignRow(row_number=2, recipient="+12125550102", outcome=DUPLICATE),
        CampaignRow(row_number=3, recipient="+12125550103"),
    ]
    suppress(rows, {"+12125550101": "on list", "+12125550102": "on list"})
    assert [r.outcome for r in rows] == [SUPPRESSED, DUPLICATE, None]
    assert rows[0].reason == "on list"


def test_opted_out_numbers_honours_the_latest_keyword_of_each_number() -> None:
    inbound = [
        {"id": 1, "from": "+12125550101", "body": " stop ", "created_at": "2026-03-08T12:00:00Z"},
        {"id": 2, "from": "+12125550102", "body": "STOP", "created_at": "2026-03-08T12:00:00Z"},
        {"id": 3, "from": "+12125550102", "body": "start", "created_at": "2026-03-08T13:00:00Z"},
        {"id": 4, "from": "+12125550103", "body": "please stop", "created_at": "2026-03-08T12:00:00Z"},
    ]
    assert opted_out_numbers(inbound) == {"+12125550101": "opted out: STOP at 2026-03-08T12:00:00Z"}


def test_partition_of_is_sha256_of_the_number_modulo_the_partitions() -> None:
    digest = hashlib.sha256(b"+12125550101").digest()
    assert partition_of("+12125550101", 7) == int.from_bytes(digest[:8], "big") % 7
    assert {partition_of(f"+121255501{i:02d}", 3) for i in range(30)} == {0, 1, 2}


def test_stop_with_punctuation_opts_out_as_carriers_read_it_but_a_sentence_does_not() -> None:
    when = "2026-03-08T12:00:00Z"
    inbound = [
        {"id": 1, "from": "+12125550101", "body": "Stop.", "created_at": when},
        {"id": 2, "from": "+12125550102", "body": "STOP!", "created_at": when},
        {"id": 3, "from": "+12125550103", "body": " unsubscribe ? ", "created_at": when},
        {"id": 4, "from": "+12125550104", "body": "stop sending me ads", "created_at": when},
        {"id": 5, "from": "+12125550105", "body": "STOP.", "created_at": when},
        {"id": 6, "from": "+12125550105", "body": "Start!", "created_at": "2026-03-08T13:00:00Z"},
    ]
    assert opted_out_numbers(inbound) == {
        "+12125550101": f"opted out: STOP at {when}",
        "+12125550102": f"opted out: STOP at {when}",
        "+12125550103": f"opted out: UNSUBSCRIBE at {when}",
    }


def test_a_duplicate_names_the_place_of_the_first_row() -> None:
    rows = [
        CampaignRow(row_number=1, recipient="+12125550101"),
        CampaignRow(row_number=2, recipient="+12125550101"),
    ]
    mark_duplicates(rows, lambda number: f"line {number + 1} of r.csv")
    assert rows[1].reason == "same number as line 2 of r.csv"
