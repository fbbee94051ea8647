"""Tests of message rendering: canonical text, the ledger hash, text and media checks, the template."""

from __future__ import annotations

import hashlib

import pytest

from airflow_provider_smsnexus.campaign.render import (
    MessageTemplate,
    TemplateRow,
    media_url_problem,
    message_hash,
    message_problem,
    normalise_body,
    raw_text,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError


def test_normalise_body_uses_nfc_line_feeds_and_trims() -> None:
    assert normalise_body("  cafe\u0301\r\nok \n") == "caf\u00e9\nok"


def test_message_hash_is_sha256_of_sender_unit_separator_and_canonical_text() -> None:
    expected = hashlib.sha256(b"+12125550100\x1fHi there").hexdigest()
    assert message_hash("+12125550100", " Hi there\r\n") == expected
    assert message_hash("+12125550100", "Hi there") != message_hash("+12125550199", "Hi there")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "empty message"),
        ("bell\x07", "message contains control characters"),
        ("lone \ud800", "message is not valid Unicode text (lone surrogate)"),
        ("tab\tand\nnewline", None),
    ],
)
def test_message_problem_names_what_cannot_be_sent(body: str, problem: str | None) -> None:
    assert message_problem(body) == problem


def test_media_url_problem_accepts_http_urls_only() -> None:
    assert media_url_problem("https://example.com/a.png") is None
    assert media_url_problem("ftp://example.com/a.png") == "invalid media_url: not an http(s) URL"
    assert media_url_problem("https://example.com/a b.png") == "invalid media_url: not an http(s) URL"


def test_template_renders_row_columns_and_context_and_prints_missing_as_empty() -> None:
    template = MessageTemplate('Hi {{ row.name or "there" }}, {{ row["due date"] }}{{ row.note }} ({{ ds }})')
    row = TemplateRow({"name": float("nan"), "due date": "May 1", "note": None})
    assert template.render({"ds": "2026-03-08"}, row) == "Hi there, May 1 (2026-03-08)"


def test_template_reports_the_columns_it_names_that_the_table_lacks() -> None:
    template = MessageTemplate("{{ row.first }} {{ row['last name'] }} {{ row.items }}")
    assert template.missing_columns(["first"]) == ["items", "last name"]


def test_template_with_bad_syntax_or_an_undefined_name_is_a_campaign_error() -> None:
    with pytest.raises(SMSNexusCampaignError, match="not valid Jinja"):
        MessageTemplate("{{ row.name ")
    with pytest.raises(SMSNexusCampaignError, match="undefined"):
        MessageTemplate("{{ nothing_here }}").render({}, TemplateRow({}))


def test_raw_text_shortens_long_cells_and_keeps_missing_as_none() -> None:
    assert raw_text(None) is None
    assert raw_text(12) == "12"
    assert raw_text("x" * 150) == "x" * 100 + "..."
