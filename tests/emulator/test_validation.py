"""Tests of the emulator's request validation helpers: Laravel-style field errors and moments."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.emulator.validation import optional_url, parse_moment, required_string

NOON = datetime(2026, 3, 8, 12, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("data", "value", "errors"),
    [
        ({"from_number": "+12125550100"}, "+12125550100", {}),
        ({}, None, {"from_number": ["The from number field is required."]}),
        ({"from_number": "  "}, None, {"from_number": ["The from number field is required."]}),
        ({"from_number": 5}, None, {"from_number": ["The from number field must be a string."]}),
    ],
)
def test_required_string_records_laravels_messages(data: dict, value: str | None, errors: dict) -> None:
    found: dict[str, list[str]] = {}
    assert required_string(data, "from_number", found) == value
    assert found == errors


def test_optional_url_accepts_absent_and_http_urls_only() -> None:
    errors: dict[str, list[str]] = {}
    assert optional_url({}, "media_url", errors) is None
    assert optional_url({"media_url": "https://e.com/a.png"}, "media_url", errors) == "https://e.com/a.png"
    assert errors == {}
    assert optional_url({"media_url": "ftp://e.com/a"}, "media_url", errors) is None
    assert errors == {"media_url": ["The media url field must be a valid URL."]}


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-08T12:00:00Z",
        "2026-03-08T12:00:00",
        "2026-03-08T13:00:00+01:00",
        "2026-03-08T13:00:00 01:00",
        "2026-03-08T12:00:00.0Z",
        datetime(2026, 3, 8, 12, tzinfo=timezone.utc),
        NOON,
    ],
)
def test_parse_moment_reads_every_form_of_the_same_noon(value: object) -> None:
    assert parse_moment(value) == NOON


def test_parse_moment_reads_a_bare_date_as_midnight_and_junk_as_none() -> None:
    assert parse_moment("2026-03-08") == NOON - 12 * 3600
    assert parse_moment("yesterday") is None
    assert parse_moment(True) is None
