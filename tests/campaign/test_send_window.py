"""Send windows: parsing, each row's zones, open / next opening / close across zones, days and DST, row plans
and the dry-run schedule.

Every expected instant is worked out by hand in the comment beside it, from the zones' offsets:
2026-03-02 is a Monday. US daylight saving time starts on Sunday 2026-03-08 (02:00 EST -> 03:00 EDT) and ends
on Sunday 2026-11-01 (02:00 EDT -> 01:00 EST). Before 03-08: New York UTC-5, Chicago UTC-6, Denver UTC-7,
Los Angeles UTC-8, Honolulu UTC-10 (Hawaii keeps no DST).
"""

from __future__ import annotations

import json
from datetime import datetime, time, timezone

import pytest

from airflow_provider_smsnexus.campaign.send_timing import (
    OPEN,
    SKIP,
    WAIT,
    RowTiming,
    closes_at,
    is_open,
    local_moment,
    next_opening,
    plan_row,
    schedule,
    zones_for_number,
    zones_for_row,
)
from airflow_provider_smsnexus.campaign.send_window import MIDNIGHT, PRESETS, US_FEDERAL, SendWindow
from airflow_provider_smsnexus.exceptions import SMSNexusValidationError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


NEW_YORK, CHICAGO, DENVER = "+12125550101", "+13125550102", "+13035550103"
LOS_ANGELES, HONOLULU = "+12135550104", "+18085550105"
SOUTH_DAKOTA = "+16055550106"  # area code 605: Mountain (west) and Central (east) time
INMARSAT = "+870301234567"  # a valid satellite number: phonenumbers says Etc/Unknown
NY = ("America/New_York",)


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        (NEW_YORK, ("America/New_York",)),
        (CHICAGO, ("America/Chicago",)),
        (DENVER, ("America/Denver",)),
        (LOS_ANGELES, ("America/Los_Angeles",)),
        (HONOLULU, ("Pacific/Honolulu",)),
        (SOUTH_DAKOTA, ("America/Denver", "America/North_Dakota/Center")),
        ("+442079460000", ("Europe/London",)),  # a London landline
        # a UK mobile is not geographic: phonenumbers gives every zone of +44 (all on London's clock)
        ("+447400123456", ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")),
        (INMARSAT, ()),
        ("+15555550100", ()),  # invalid (area code 555): Etc/Unknown
        ("not a number", ()),
    ],
)
def test_zones_for_number_reads_the_prefix_and_gives_nothing_when_unknown(number, zones):
    assert zones_for_number(number) == zones


# US federal window 08:00-21:00 local on Monday 2026-03-02, in UTC:
#   New York 13:00-02:00(+1), Chicago 14:00-03:00(+1), Denver 15:00-04:00(+1), Los Angeles 16:00-05:00(+1),
#   Honolulu 18:00-07:00(+1); Sunday's windows end at the same hours on Monday.
US_DAY = [
    # 04:00Z: NY Sun 23:00, CHI 22:00, DEN 21:00 (end is exclusive) closed; LA 20:00, HNL 18:00 open
    ("2026-03-02T04:00", NEW_YORK, "2026-03-02T13:00"),
    ("2026-03-02T04:00", CHICAGO, "2026-03-02T14:00"),
    ("2026-03-02T04:00", DENVER, "2026-03-02T15:00"),
    ("2026-03-02T04:00", LOS_ANGELES, "now"),
    ("2026-03-02T04:00", HONOLULU, "now"),
    # 07:00Z: HNL Sun 21:00 just closed; everyone waits for Monday 08:00 local
    ("2026-03-02T07:00", NEW_YORK, "2026-03-02T13:00"),
    ("2026-03-02T07:00", HONOLULU, "2026-03-02T18:00"),
    # 12:00Z: NY 07:00, CHI 06:00, DEN 05:00, LA 04:00, HNL 02:00: all closed
    ("2026-03-02T12:00", NEW_YORK, "2026-03-02T13:00"),
    ("2026-03-02T12:00", CHICAGO, "2026-03-02T14:00"),
    ("2026-03-02T12:00", DENVER, "2026-03-02T15:00"),
    ("2026-03-02T12:00", LOS_ANGELES, "2026-03-02T16:00"),
    ("2026-03-02T12:00", HONOLULU, "2026-03-02T18:00"),
    # 14:30Z: NY 09:30 and CHI 08:30 open; DEN 07:30, LA 06:30, HNL 04:30 closed
    ("2026-03-02T14:30", NEW_YORK, "now"),
    ("2026-03-02T14:30", CHICAGO, "now"),
    ("2026-03-02T14:30", DENVER, "2026-03-02T15:00"),
    ("2026-03-02T14:30", LOS_ANGELES, "2026-03-02T16:00"),
    ("2026-03-02T14:30", HONOLULU, "2026-03-02T18:00"),
    # 21:00Z: NY 16:00 ... HNL 11:00: all open
    *[("2026-03-02T21:00", number, "now") for number in (NEW_YORK, CHICAGO, DENVER, LOS_ANGELES, HONOLULU)],
    # 02:00Z (3/3): NY Mon 21:00 closed until Tuesday 08:00 EST; CHI 20:00 still open
    ("2026-03-03T02:00", NEW_YORK, "2026-03-03T13:00"),
    ("2026-03-03T02:00", CHICAGO, "now"),
]


@pytest.mark.parametrize(("at", "number", "expected"), US_DAY)
def test_us_federal_window_is_open_or_opens_at_the_hand_computed_instant(at, number, expected):
    zones = zones_for_number(number)
    moment = utc(at)

    assert is_open(US_FEDERAL, zones, moment) is (expected == "now")
    assert next_opening(US_FEDERAL, zones, moment) == (moment if expected == "now" else utc(expected))
    timing = plan_row(US_FEDERAL, zones, moment, row_label="row 1")
    if expected == "now":
        assert timing == RowTiming(OPEN, None, timing.reason)
    else:
        assert timing == RowTiming(WAIT, utc(expected), timing.reason)


@pytest.mark.parametrize(
    ("number", "closes"),
    [
        # at 21:00Z every zone is open; each closes at its 21:00 local
        (NEW_YORK, "2026-03-03T02:00"),
        (CHICAGO, "2026-03-03T03:00"),
        (DENVER, "2026-03-03T04:00"),
        (LOS_ANGELES, "2026-03-03T05:00"),
        (HONOLULU, "2026-03-03T07:00"),
    ],
)
def test_closes_at_is_21_00_local(number, closes):
    assert closes_at(US_FEDERAL, zones_for_number(number), utc("2026-03-02T21:00")) == utc(closes)


def test_a_number_with_two_zones_is_open_only_when_open_in_both():
    zones = zones_for_number(SOUTH_DAKOTA)
    # Denver (UTC-7) 15:00Z-04:00Z, North Dakota Center (UTC-6) 14:00Z-03:00Z: jointly 15:00Z-03:00Z
    assert zones == ("America/Denver", "America/North_Dakota/Center")
    # 14:30Z: Center 08:30 open, Denver 07:30 closed
    assert not is_open(US_FEDERAL, zones, utc("2026-03-02T14:30"))
    assert next_opening(US_FEDERAL, zones, utc("2026-03-02T14:30")) == utc("2026-03-02T15:00")
    # 20:00Z: both open; Center reaches 21:00 first, at 03:00Z
    assert closes_at(US_FEDERAL, zones, utc("2026-03-02T20:00")) == utc("2026-03-03T03:00")
    # 03:30Z: Denver 20:30 still open, Center 21:30 closed
    assert is_open(US_FEDERAL, ("America/Denver",), utc("2026-03-03T03:30"))
    assert not is_open(US_FEDERAL, zones, utc("2026-03-03T03:30"))
    timing = plan_row(US_FEDERAL, zones, utc("2026-03-03T03:30"), row_label="row 7")
    assert timing.status == WAIT
    assert timing.opening == utc("2026-03-03T15:00")
    assert "America/Denver (Mon 20:30) and America/North_Dakota/Center (Mon 21:30)" in timing.reason


def test_zones_whose_windows_never_overlap_have_no_opening_and_the_row_is_skipped():
    window = SendWindow(start=time(9), end=time(12))
    # Etc/GMT+6 is UTC-6: 15:00Z-18:00Z; Etc/GMT-6 is UTC+6: 03:00Z-06:00Z; 12 hours apart, never together
    zones = ("Etc/GMT+6", "Etc/GMT-6")
    assert next_opening(window, zones, utc("2026-03-02T00:00")) is None
    timing = plan_row(window, zones, utc("2026-03-02T00:00"), row_label="row 4")
    assert (timing.status, timing.opening) == (SKIP, None)
    assert "Etc/GMT+6 and Etc/GMT-6" in timing.reason
    assert timing.reason.startswith("row 4: ")


def test_zones_12_hours_apart_share_the_overlap_of_a_13_hour_window():
    # 08:00-21:00 in UTC-6 is 14:00Z-03:00Z, in UTC+6 02:00Z-15:00Z: overlaps 14:00Z-15:00Z and 02:00Z-03:00Z
    zones = ("Etc/GMT+6", "Etc/GMT-6")
    assert next_opening(US_FEDERAL, zones, utc("2026-03-02T04:00")) == utc("2026-03-02T14:00")
    assert closes_at(US_FEDERAL, zones, utc("2026-03-02T14:00")) == utc("2026-03-02T15:00")
    assert next_opening(US_FEDERAL, zones, utc("2026-03-02T15:00")) == utc("2026-03-03T02:00")


def test_a_uk_mobile_is_open_on_londons_clock_in_all_its_zones():
    zones = zones_for_number("+447400123456")
    # Guernsey, Isle of Man, Jersey and London all read UTC+0 in March: 08:00-21:00 is 08:00Z-21:00Z
    assert next_opening(US_FEDERAL, zones, utc("2026-03-02T06:00")) == utc("2026-03-02T08:00")
    assert closes_at(US_FEDERAL, zones, utc("2026-03-02T08:00")) == utc("2026-03-02T21:00")


def test_a_toll_free_number_gets_every_zone_and_opens_only_where_they_all_overlap():
    zones = zones_for_number("+18005550100")
    assert {"Pacific/Guam", "Pacific/Pago_Pago", "America/St_Johns", "America/New_York"} <= set(zones)
    # the last to open is Guam (UTC+10): Tue 08:00 = Mon 22:00Z; the first to close is St John's (UTC-3:30):
    # Mon 21:00 = Tue 00:30Z; at 22:00Z Pago Pago (UTC-11) reads 11:00, also open
    assert next_opening(US_FEDERAL, zones, utc("2026-03-02T12:00")) == utc("2026-03-02T22:00")
    assert closes_at(US_FEDERAL, zones, utc("2026-03-02T22:00")) == utc("2026-03-03T00:30")


@pytest.mark.parametrize("number", [INMARSAT, "+881612345678"])
def test_unknown_zone_fails_by_default_naming_the_row_and_the_fixes(number):
    zones = zones_for_number(number)
    assert zones == ()
    with pytest.raises(SMSNexusValidationError) as caught:
        plan_row(US_FEDERAL, zones, utc("2026-03-02T12:00"), row_label="row 9")

    assert str(caught.value).startswith("row 9: the recipient's time zone is unknown")
    assert "zone_column" in str(caught.value)
    assert "unknown_zone" in str(caught.value)


def test_unknown_zone_skip_and_send():
    now = utc("2026-03-02T12:00")
    skip = plan_row(
        SendWindow.parse({"preset": "us_federal", "unknown_zone": "skip"}), (), now, row_label="row 2"
    )
    send = plan_row(
        SendWindow.parse({"preset": "us_federal", "unknown_zone": "send"}), (), now, row_label="row 2"
    )

    assert (skip.status, skip.opening) == (SKIP, None)
    assert (send.status, send.opening) == (OPEN, None)
    assert "unknown" in skip.reason
    assert "unknown" in send.reason


def test_a_zone_column_overrides_the_number():
    window = SendWindow.parse({"preset": "us_federal", "zone_column": "tz"})
    zones = zones_for_row(window, NEW_YORK, " America/Los_Angeles ", "row 1")

    assert zones == ("America/Los_Angeles",)
    # 14:30Z: the number's New York reads 09:30 (open) but the row lives in LA, 06:30: wait for 16:00Z
    assert plan_row(window, zones, utc("2026-03-02T14:30")).opening == utc("2026-03-02T16:00")


@pytest.mark.parametrize("missing", [None, float("nan"), "", "   "])
def test_a_missing_zone_column_value_falls_back_to_the_number(missing):
    window = SendWindow.parse({"preset": "us_federal", "zone_column": "tz"})

    assert zones_for_row(window, CHICAGO, missing, "row 1") == ("America/Chicago",)


def test_without_a_zone_column_the_column_value_is_ignored():
    assert zones_for_row(US_FEDERAL, CHICAGO, "Mars/Base", "row 1") == ("America/Chicago",)


@pytest.mark.parametrize("value", ["Mars/Base", "America", "../etc/passwd", 5])
def test_an_invalid_zone_name_names_the_row_and_the_column(value):
    window = SendWindow.parse({"preset": "us_federal", "zone_column": "tz"})
    with pytest.raises(SMSNexusValidationError) as caught:
        zones_for_row(window, NEW_YORK, value, "row 3")

    assert str(caught.value) == f"row 3: tz={value!r} is not an IANA time zone (such as 'America/New_York')"


def test_a_weekday_window_on_a_saturday_waits_for_monday_across_the_dst_change():
    window = SendWindow.parse({"preset": "us_federal", "days": "mon-fri"})
    # Sat 2026-03-07 15:00Z is 10:00 EST: no window on Saturday; Monday 03-09 08:00 is EDT (DST began
    # Sunday), so 12:00Z, not 13:00Z
    assert not is_open(window, NY, utc("2026-03-07T15:00"))
    assert next_opening(window, NY, utc("2026-03-07T15:00")) == utc("2026-03-09T12:00")
    # Friday 18:00 EST (23:00Z) is open, and closes at Friday 21:00 EST = Sat 02:00Z
    assert closes_at(window, NY, utc("2026-03-06T23:00")) == utc("2026-03-07T02:00")


def test_days_are_the_recipients_local_days():
    window = SendWindow.parse({"preset": "us_federal", "days": "mon-fri"})
    # 2026-03-09T03:00Z is already Monday in UTC but Sunday 17:00 in Honolulu: closed until Mon 08:00 HST
    assert not is_open(window, ("Pacific/Honolulu",), utc("2026-03-09T03:00"))
    assert next_opening(window, ("Pacific/Honolulu",), utc("2026-03-09T03:00")) == utc("2026-03-09T18:00")


def test_at_is_a_one_hour_local_time_delivery():
    window = SendWindow.parse({"at": "10:00"})
    assert window == SendWindow(start=time(10), end=time(11))
    # New York 10:00-11:00 EST on 03-02 is 15:00Z-16:00Z; Los Angeles (UTC-8) 18:00Z-19:00Z
    assert is_open(window, NY, utc("2026-03-02T15:30"))
    assert closes_at(window, NY, utc("2026-03-02T15:30")) == utc("2026-03-02T16:00")
    assert next_opening(window, NY, utc("2026-03-02T16:00")) == utc("2026-03-03T15:00")
    assert next_opening(window, ("America/Los_Angeles",), utc("2026-03-02T12:00")) == utc("2026-03-02T18:00")


def test_at_late_in_the_evening_is_cut_at_midnight():
    window = SendWindow.parse({"at": "23:30"})
    assert window == SendWindow(start=time(23, 30), end=MIDNIGHT)
    # 23:30 EST on 03-02 is 04:30Z on 03-03; midnight EST is 05:00Z
    assert next_opening(window, NY, utc("2026-03-02T12:00")) == utc("2026-03-03T04:30")
    assert closes_at(window, NY, utc("2026-03-03T04:30")) == utc("2026-03-03T05:00")


# US federal window in New York across the two DST changes of 2026
DST_OPENINGS = {  # after -> opening, UTC
    "2026-03-08T03:00": "2026-03-08T12:00",  # Sat 22:00 EST -> Sun 03-08 08:00 EDT = 12:00Z (not 13:00Z)
    "2026-03-08T11:59": "2026-03-08T12:00",  # 07:59 EDT: one minute to wait
    "2026-11-01T02:00": "2026-11-01T13:00",  # Sat 22:00 EDT -> Sun 11-01 08:00 EST = 13:00Z (not 12:00Z)
    "2026-11-01T12:30": "2026-11-01T13:00",  # 07:30 EST (it would be 08:30 with Saturday's offset)
}


@pytest.mark.parametrize(("after", "opening"), DST_OPENINGS.items())
def test_the_window_opens_at_08_00_local_across_dst(after, opening):
    assert not is_open(US_FEDERAL, NY, utc(after))
    assert next_opening(US_FEDERAL, NY, utc(after)) == utc(opening)


@pytest.mark.parametrize(
    ("at", "closes"),
    [
        ("2026-03-07T20:00", "2026-03-08T02:00"),  # Sat 15:00 EST; closes 21:00 EST
        ("2026-03-08T12:00", "2026-03-09T01:00"),  # Sun 08:00 EDT; closes 21:00 EDT
        ("2026-10-31T12:00", "2026-11-01T01:00"),  # Sat 08:00 EDT; closes 21:00 EDT
        ("2026-11-01T13:00", "2026-11-02T02:00"),  # Sun 08:00 EST; closes 21:00 EST
    ],
)
def test_the_window_closes_at_21_00_local_across_dst(at, closes):
    assert closes_at(US_FEDERAL, NY, utc(at)) == utc(closes)


def test_a_start_in_the_skipped_spring_hour_opens_at_the_end_of_the_gap():
    window = SendWindow.parse({"at": "02:30"})
    # 03-08: 02:30 does not exist (02:00 EST jumps to 03:00 EDT at 07:00Z): opens 03:00 EDT = 07:00Z and
    # closes 03:30 EDT = 07:30Z; at 06:45Z the clock reads 01:45 EST
    assert next_opening(window, NY, utc("2026-03-08T05:00")) == utc("2026-03-08T07:00")
    assert closes_at(window, NY, utc("2026-03-08T07:00")) == utc("2026-03-08T07:30")
    assert not is_open(window, NY, utc("2026-03-08T06:45"))
    # the day before, 02:30 EST = 07:30Z; the day after, 02:30 EDT = 06:30Z
    assert next_opening(window, NY, utc("2026-03-07T05:00")) == utc("2026-03-07T07:30")
    assert next_opening(window, NY, utc("2026-03-09T05:00")) == utc("2026-03-09T06:30")


def test_a_window_inside_the_skipped_hour_does_not_open_that_day():
    window = SendWindow(start=time(2, 10), end=time(2, 50))
    # 03-08 02:10 and 02:50 both map to 07:00Z: empty; next is 03-09 02:10 EDT = 06:10Z
    assert next_opening(window, NY, utc("2026-03-08T05:00")) == utc("2026-03-09T06:10")


def test_a_wall_time_that_happens_twice_in_autumn_is_its_first_occurrence():
    window = SendWindow.parse({"at": "01:30"})
    # 11-01: 01:30 EDT = 05:30Z comes first; the window closes at 02:30, which only exists in EST: 07:30Z.
    # At 06:45Z the clock reads 01:45 EST (the second pass), inside the window
    assert next_opening(window, NY, utc("2026-11-01T04:00")) == utc("2026-11-01T05:30")
    assert closes_at(window, NY, utc("2026-11-01T05:30")) == utc("2026-11-01T07:30")
    assert is_open(window, NY, utc("2026-11-01T06:45"))


def test_a_window_inside_the_repeated_hour_opens_once():
    window = SendWindow(start=time(1), end=time(1, 45))
    # 11-01: 01:00-01:45 EDT = 05:00Z-05:45Z; at 06:15Z the clock reads 01:15 EST again, but closed; next
    # is 11-02 01:00 EST = 06:00Z
    assert closes_at(window, NY, utc("2026-11-01T05:00")) == utc("2026-11-01T05:45")
    assert not is_open(window, NY, utc("2026-11-01T06:15"))
    assert next_opening(window, NY, utc("2026-11-01T06:15")) == utc("2026-11-02T06:00")


@pytest.mark.parametrize(
    ("zone", "at", "text"),
    [
        ("America/New_York", "2026-03-02T14:00", "2026-03-02T09:00:00-05:00 America/New_York"),
        ("America/New_York", "2026-03-08T12:00", "2026-03-08T08:00:00-04:00 America/New_York"),
        ("Pacific/Honolulu", "2026-03-02T04:00", "2026-03-01T18:00:00-10:00 Pacific/Honolulu"),
    ],
)
def test_local_moment(zone, at, text):
    assert local_moment(zone, utc(at)) == text


def test_reasons_name_the_zone_and_its_local_times():
    timing = plan_row(US_FEDERAL, NY, utc("2026-03-02T12:00"), row_label="row 5")
    assert timing.reason == (
        "row 5: outside 08:00-21:00 every day in America/New_York (Mon 07:00); opens at 2026-03-02T13:00:00Z, "
        "America/New_York (Mon 08:00)"
    )
    timing = plan_row(US_FEDERAL, NY, utc("2026-03-02T14:30"), row_label="row 5")
    assert timing.reason == "row 5: inside 08:00-21:00 every day in America/New_York (Mon 09:30)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (US_FEDERAL, US_FEDERAL),
        ("us_federal", US_FEDERAL),
        (" US_Federal ", US_FEDERAL),
        ({"start": "08:00", "end": "21:00"}, US_FEDERAL),
        ('{"start": "08:00", "end": "21:00"}', US_FEDERAL),
        ({"start": "9:00", "end": "24:00"}, SendWindow(start=time(9), end=MIDNIGHT)),
        ({"start": time(8), "end": time(20)}, SendWindow(start=time(8), end=time(20))),
        ({"preset": "us_federal", "end": "20:00"}, SendWindow(start=time(8), end=time(20))),
        (
            {"preset": "us_federal", "days": "mon-fri"},
            SendWindow(time(8), time(21), frozenset({1, 2, 3, 4, 5})),
        ),
        ({"preset": "us_federal", "days": ["mon", "tue"]}, SendWindow(time(8), time(21), frozenset({1, 2}))),
        ({"preset": "us_federal", "days": [1, 2]}, SendWindow(time(8), time(21), frozenset({1, 2}))),
        ({"preset": "us_federal", "days": "sat, sun"}, SendWindow(time(8), time(21), frozenset({6, 7}))),
        ({"preset": "us_federal", "days": "fri-mon"}, SendWindow(time(8), time(21), frozenset({5, 6, 7, 1}))),
        ({"preset": "us_federal", "days": "Monday"}, SendWindow(time(8), time(21), frozenset({1}))),
        (
            {"preset": "us_federal", "unknown_zone": "skip", "zone_column": "tz"},
            SendWindow(time(8), time(21), unknown_zone="skip", zone_column="tz"),
        ),
    ],
)
def test_parse_reads_what_a_dag_author_writes(value, expected):
    assert SendWindow.parse(value) == expected


def test_the_us_federal_preset():
    assert PRESETS["us_federal"] is US_FEDERAL
    expected = SendWindow(start=time(8), end=time(21), days=frozenset(range(1, 8)), unknown_zone="fail")
    assert expected == US_FEDERAL


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (
            {"start": "25:00", "end": "21:00"},
            "send_window.start",
            "send_window.start='25:00' is not a time (HH:MM)",
        ),
        ({"start": "08:00", "end": "8pm"}, "send_window.end", "send_window.end='8pm' is not a time (HH:MM)"),
        ({"start": "24:00", "end": "21:00"}, "send_window.start", "send_window.start='24:00' is not a time"),
        (
            {"start": "21:00", "end": "08:00"},
            "send_window.end",
            "send_window.end='08:00' is not after start=",
        ),
        ({"start": "08:00"}, "send_window.end", "send_window.end is missing"),
        ({"begin": "08:00", "stop": "21:00"}, "send_window", "send_window has unknown keys 'begin', 'stop'"),
        ({"at": "10:00", "end": "12:00"}, "send_window.at", "send_window.at is a one-hour window"),
        ({"at": "ten"}, "send_window.at", "send_window.at='ten' is not a time (HH:MM)"),
        ({"preset": "us_fed"}, "send_window.preset", "send_window.preset='us_fed' is not a preset"),
        (
            "quiet_hours",
            "send_window",
            "send_window='quiet_hours' is not a preset: the presets are 'us_federal'",
        ),
        ("{not json", "send_window", "send_window='{not json' is not a JSON object"),
        (42, "send_window", "send_window=42 is not a window"),
        (
            {"preset": "us_federal", "days": "mon-xyz"},
            "send_window.days",
            "send_window.days='mon-xyz' is not a",
        ),
        (
            {"preset": "us_federal", "days": [0, 8]},
            "send_window.days",
            "send_window.days=[0, 8] is not a list",
        ),
        (
            {"preset": "us_federal", "days": [True]},
            "send_window.days",
            "send_window.days=[True] is not a list",
        ),
        ({"preset": "us_federal", "days": []}, "send_window.days", "send_window.days=[] is empty"),
        ({"preset": "us_federal", "days": 5}, "send_window.days", "send_window.days=5 is not a list of days"),
        (
            {"preset": "us_federal", "unknown_zone": "maybe"},
            "send_window.unknown_zone",
            "='maybe' is not one of",
        ),
        (
            {"preset": "us_federal", "zone_column": ""},
            "send_window.zone_column",
            "send_window.zone_column=''",
        ),
    ],
)
def test_parse_errors_name_the_field(value, field, message):
    with pytest.raises(SMSNexusValidationError) as caught:
        SendWindow.parse(value)

    assert message in str(caught.value)
    assert list(caught.value.errors) == [field]
    assert not isinstance(caught.value, (ValueError, KeyError))


def test_an_end_before_start_says_a_window_is_not_the_quiet_hours():
    with pytest.raises(SMSNexusValidationError, match="not the quiet hours"):
        SendWindow(start=time(21), end=time(8))


@pytest.mark.parametrize(
    "window",
    [
        US_FEDERAL,
        SendWindow.parse({"start": "09:15", "end": "20:00", "days": "mon-fri", "unknown_zone": "skip"}),
        SendWindow.parse({"at": "23:30", "days": [6], "unknown_zone": "send", "zone_column": "tz"}),
    ],
)
def test_as_json_round_trips_through_json(window):
    assert SendWindow.parse(json.loads(json.dumps(window.as_json()))) == window


def test_as_json_of_the_us_preset():
    assert US_FEDERAL.as_json() == {
        "start": "08:00",
        "end": "21:00",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "unknown_zone": "fail",
        "zone_column": None,
    }


def test_schedule_counts_rows_per_opening_now_first():
    tomorrow = utc("2026-03-03T13:00")
    tonight = datetime.fromisoformat("2026-03-02T16:00:00-08:00")  # Los Angeles: 2026-03-03T00:00Z
    openings = [None, tomorrow, None, tonight, tomorrow, None, utc("2026-03-03T00:00")]

    assert schedule(openings) == [("now", 3), ("2026-03-03T00:00:00Z", 2), ("2026-03-03T13:00:00Z", 2)]
    assert schedule([]) == []


def test_schedule_of_a_planned_list():
    # 12:00Z: NY waits for 13:00Z, LA for 16:00Z; at 14:30Z NY is open, LA still waits
    numbers = [NEW_YORK, LOS_ANGELES, NEW_YORK]
    for now, expected in [
        ("2026-03-02T12:00", [("2026-03-02T13:00:00Z", 2), ("2026-03-02T16:00:00Z", 1)]),
        ("2026-03-02T14:30", [("now", 2), ("2026-03-02T16:00:00Z", 1)]),
    ]:
        timings = [plan_row(US_FEDERAL, zones_for_number(number), utc(now)) for number in numbers]
        assert schedule(timing.opening for timing in timings) == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda naive: is_open(US_FEDERAL, NY, naive),
        lambda naive: next_opening(US_FEDERAL, NY, naive),
        lambda naive: closes_at(US_FEDERAL, NY, naive),
        lambda naive: plan_row(US_FEDERAL, NY, naive),
        lambda naive: schedule([naive]),
        lambda naive: local_moment("America/New_York", naive),
    ],
)
def test_naive_datetimes_are_refused(call):
    with pytest.raises(SMSNexusValidationError, match="is not an aware datetime"):
        call(datetime(2026, 3, 2, 12))


def test_closes_at_refuses_a_closed_moment():
    with pytest.raises(SMSNexusValidationError, match="not open at 2026-03-02T12:00:00Z"):
        closes_at(US_FEDERAL, NY, utc("2026-03-02T12:00"))


def test_timing_needs_at_least_one_zone():
    with pytest.raises(SMSNexusValidationError, match="no time zone given"):
        is_open(US_FEDERAL, (), utc("2026-03-02T12:00"))
