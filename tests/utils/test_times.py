"""``utils.times``: ISO 8601 read as aware UTC and written back as the API writes it (hand-checked values)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.utils.times import as_utc, created_at_of, iso_utc, utcnow

UTC = timezone.utc
PARIS_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-08T12:00:00Z", datetime(2026, 3, 8, 12, tzinfo=UTC)),
        (" 2026-03-08T13:30:00+01:00 ", datetime(2026, 3, 8, 12, 30, tzinfo=UTC)),
        ("2026-03-08", datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 8, 12), datetime(2026, 3, 8, 12, tzinfo=UTC)),  # naive is taken as UTC
        (datetime(2026, 3, 8, 13, tzinfo=PARIS_WINTER), datetime(2026, 3, 8, 12, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_as_utc_reads_strings_and_datetimes_as_aware_utc(value, expected):
    result = as_utc(value, "start_date")
    assert result == expected
    if result is not None:
        assert result.utcoffset() == timedelta(0)


def test_as_utc_names_the_argument_of_a_bad_string_or_type():
    with pytest.raises(SMSNexusError, match=r"end_date='yesterday' is not an ISO 8601"):
        as_utc("yesterday", "end_date")
    with pytest.raises(SMSNexusError, match="start_date must be a datetime or an ISO 8601 string, not int"):
        as_utc(20260308, "start_date")  # type: ignore[arg-type]


def test_iso_utc_writes_z_and_keeps_microseconds():
    assert iso_utc(datetime(2026, 3, 8, 13, tzinfo=PARIS_WINTER)) == "2026-03-08T12:00:00Z"
    assert iso_utc(datetime(2026, 3, 8, 12, 0, 0, 250, tzinfo=UTC)) == "2026-03-08T12:00:00.000250Z"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"created_at": "2026-03-08T12:00:00Z"}, datetime(2026, 3, 8, 12, tzinfo=UTC)),
        ({"created_at": "2026-03-08T12:00:00"}, datetime(2026, 3, 8, 12, tzinfo=UTC)),
        ({"created_at": "not a date"}, None),
        ({"created_at": 1772971200}, None),
        ({}, None),
    ],
)
def test_created_at_of_is_none_when_missing_or_not_iso(row, expected):
    assert created_at_of(row) == expected


def test_utcnow_is_aware_utc():
    assert utcnow().utcoffset() == timedelta(0)
