"""The balance condition and the burn-rate estimate (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError
from airflow_provider_smsnexus.utils.balance import (
    balance_condition_met,
    balance_report,
    burn_rate_per_hour,
    coerce_threshold,
    validate_condition,
)

NOON_UTC = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("credits", "threshold", "when", "expected"),
    [
        (499, 500, "below", True),
        (500, 500, "below", False),
        (501, 500, "below", False),
        (499, 500, "at_least", False),
        (500, 500, "at_least", True),
        (501, 500, "at_least", True),
        (0, 0, "below", False),
        (0, 0, "at_least", True),
    ],
)
def test_condition_below_is_strict_and_at_least_includes_the_threshold(credits, threshold, when, expected):
    assert balance_condition_met(credits, threshold, when) is expected


def test_unknown_condition_is_rejected():
    with pytest.raises(ValueError, match="'below', 'at_least'"):
        validate_condition("above")


@pytest.mark.parametrize(("raw", "expected"), [(500, 500), ("500", 500), (" 42 ", 42), (7.0, 7), ("0", 0)])
def test_threshold_accepts_ints_and_rendered_strings(raw, expected):
    assert coerce_threshold(raw) == expected


@pytest.mark.parametrize("raw", ["", "1e3", "abc", -1, "-5", 2.5, None, True])
def test_threshold_rejects_what_is_not_a_whole_number_of_credits(raw):
    with pytest.raises(ValueError, match="threshold"):
        coerce_threshold(raw)


def test_burn_rate_is_credits_used_per_hour_since_utc_midnight():
    assert burn_rate_per_hour(120, NOON_UTC) == pytest.approx(10.0)
    # The same instant in another time zone gives the same rate.
    new_york = NOON_UTC.astimezone(timezone(timedelta(hours=-5)))
    assert burn_rate_per_hour(120, new_york) == pytest.approx(10.0)


def test_burn_rate_right_after_midnight_divides_by_at_least_a_quarter_hour():
    just_after_midnight = datetime(2026, 3, 8, 0, 1, tzinfo=timezone.utc)
    assert burn_rate_per_hour(10, just_after_midnight) == pytest.approx(40.0)


@pytest.mark.parametrize("used", [0, None])
def test_burn_rate_is_none_when_nothing_was_used(used):
    assert burn_rate_per_hour(used, NOON_UTC) is None


def test_report_adds_rate_hours_left_and_check_time_and_is_json_safe():
    balance = {"credits": 5000, "currency": "credits", "plan": "Professional", "credits_used_today": 127}
    report = balance_report(balance, NOON_UTC)
    assert report == {
        **balance,
        "credits_per_hour": 10.58,
        "hours_left": 472.44,
        "checked_at": "2026-03-08T12:00:00+00:00",
    }
    assert json.loads(json.dumps(report)) == report


def test_report_has_no_estimate_when_nothing_was_used_today():
    report = balance_report({"credits": 900, "credits_used_today": 0}, NOON_UTC)
    assert report["credits_per_hour"] is None
    assert report["hours_left"] is None


def test_report_says_zero_hours_left_when_credits_are_gone():
    report = balance_report({"credits": 0, "credits_used_today": 50}, NOON_UTC)
    assert report["hours_left"] == 0.0


@pytest.mark.parametrize("credits", [None, "5000", True])
def test_report_refuses_an_answer_without_numeric_credits(credits):
    with pytest.raises(SMSNexusResponseError, match="numeric 'credits'"):
        balance_report({"credits": credits, "credits_used_today": 3}, NOON_UTC)


def test_report_ignores_a_non_numeric_usage():
    assert balance_report({"credits": 10, "credits_used_today": "n/a"}, NOON_UTC)["hours_left"] is None
