"""E.164 normalisation: every value gives a number or a reason, never an exception."""

from __future__ import annotations

import io
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_smsnexus.exceptions import SMSNexusInvalidNumberError
from airflow_provider_smsnexus.utils.phone import (
    PhoneResult,
    is_missing,
    listed_number,
    normalise_phone,
    normalise_phones,
    phone_argument,
)


@pytest.mark.parametrize(
    "value",
    [
        "+12125550100",
        " +1 212 555 0100 ",
        "+1 (212) 555-0100",
        "+1.212.555.0100",
        "+12125550100.0",
        b"+12125550100",
        "+\u0661\u0662\u0661\u0662\u0665\u0665\u0665\u0660\u0661\u0660\u0660",  # Arabic-Indic digits
    ],
)
def test_international_forms_normalise_without_a_region(value):
    assert normalise_phone(value) == PhoneResult("+12125550100", None)


@pytest.mark.parametrize(
    "value", ["(212) 555-0100", "212-555-0100", "2125550100", 2125550100, 2125550100.0, "1 212 555 0100"]
)
def test_national_numbers_normalise_with_default_region(value):
    assert normalise_phone(value, "US").number == "+12125550100"
    assert normalise_phone(value, "us").number == "+12125550100"


#: Numbers that lost their "+" (a numeric column): hand-checked, each is +1 212 555 0100.
LOST_PLUS = [
    12125550100,
    12125550100.0,
    np.int64(12125550100),
    np.float64(12125550100.0),
    Decimal("12125550100"),
    "12125550100.0",
]


@pytest.mark.parametrize("value", LOST_PLUS)
def test_a_number_that_lost_its_plus_is_refused_without_a_region_and_read_with_one(value):
    result = normalise_phone(value)
    assert result.number is None
    assert "default_region" in result.reason
    assert "text with '+'" in result.reason
    assert normalise_phone(value, "US").number == "+12125550100"


# Ten bare digits without a region: each is also a valid foreign number when read as "+digits" (the hole):
# +20 155 501 42 is Egypt, +32 355 501 42 is Belgium, +1 212 555 0100 was read from "12125550100".
@pytest.mark.parametrize(
    ("text", "written_with_plus"),
    [("2015550142", "+12015550142"), ("3235550142", "+13235550142"), ("12125550100", "+12125550100")],
)
def test_bare_digits_without_a_region_are_never_read_as_a_foreign_number(text, written_with_plus):
    result = normalise_phone(text)
    assert result == PhoneResult(None, result.reason)
    assert result.reason.startswith("no country code")
    assert f"'{written_with_plus}' if it is a US or Canadian number" in result.reason
    assert "set default_region" in result.reason
    assert normalise_phone(text, "US").number == written_with_plus


def test_a_national_number_invalid_in_its_region_is_not_retried_as_a_foreign_one():
    # Under "US", 447911123456 is no US number; "+447911123456" would be a UK mobile. Not ours to guess.
    result = normalise_phone("447911123456", "US")
    assert result.number is None
    assert "national number of US" in result.reason
    assert normalise_phone("+447911123456", "US").number == "+447911123456"


def test_excel_scientific_notation_is_the_number_it_writes_when_every_digit_is_there():
    assert normalise_phone("1.2125550153E10", "US").number == "+12125550153"
    assert normalise_phone("1.21255501530E+10", "US").number == "+12125550153"
    without_region = normalise_phone("1.2125550153E10")
    assert without_region.number is None
    assert without_region.reason.startswith("Excel scientific notation")
    assert "'+12125550153'" in without_region.reason


@pytest.mark.parametrize("text", ["1.21256E+10", "1.2125555E10"])
def test_excel_scientific_notation_that_lost_digits_says_so(text):
    for region in (None, "US"):
        result = normalise_phone(text, region)
        assert result.number is None
        assert result.reason.startswith("Excel scientific notation that lost digits")
        assert "letters" not in result.reason


def test_without_a_region_setting_the_fix_does_not_mention_default_region():
    result = normalise_phone("2015550142", suggest_region=False)
    assert "'+12015550142' if it is a US or Canadian number" in result.reason
    assert "default_region" not in result.reason


def test_a_task_argument_that_is_not_a_number_raises_naming_the_argument():
    assert phone_argument("+1 212 555 0100", "from_number") == "+12125550100"
    with pytest.raises(
        SMSNexusInvalidNumberError, match=r"^from_number='2015550142' is not a usable"
    ) as caught:
        phone_argument("2015550142", "from_number")
    assert caught.value.parameter == "from_number"


@pytest.mark.parametrize(
    ("listed", "number"),
    [("+12125550100", "+12125550100"), ("12125550100", "+12125550100"), ("nope", None), (None, None)],
)
def test_numbers_the_server_lists_are_e164_that_may_have_lost_the_plus(listed, number):
    assert listed_number(listed) == number


def test_international_prefix_is_read_with_the_region():
    assert normalise_phone("00 1 212 555 0100", "GB").number == "+12125550100"
    assert normalise_phone("011 1 212 555 0100", "US").number == "+12125550100"


def test_national_text_without_region_says_to_set_default_region():
    result = normalise_phone("(212) 555-0100")
    assert result.number is None
    assert "default_region" in result.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing phone number"),
        (float("nan"), "missing phone number"),
        (pd.NA, "missing phone number"),
        (pd.NaT, "missing phone number"),
        (np.nan, "missing phone number"),
        ("", "empty phone number"),
        ("   ", "empty phone number"),
        (True, "boolean"),
        (1.5, "whole number"),
        (math.inf, "whole number"),
        (-12125550100, "negative"),
        (0, "negative"),
        ([12125550100], "type list"),
        ({"to": 1}, "type dict"),
        ("+1 800 FLOWERS", "letters"),
        ("+12125550100 ext. 5", "letters"),
        ("+12125550100\x00", "letters"),
        ("12125550100", "no country code"),
        (12125550100, "lost its '+'"),
        ("+1212+5550100", "misplaced"),
        ("+-()", "no digits"),
        ("x" * 5000, "too long"),
        ("+15555550100", "not a number in use"),
        ("+1212555", "wrong length"),
        ("+999123456789", "not a phone number"),
        (1e300, "too large"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_unusable_values_give_a_reason(value, reason):
    result = normalise_phone(value)
    assert result.number is None
    assert not result.ok
    assert reason in result.reason


def test_a_float_column_from_pandas_normalises_with_a_region_and_is_refused_without():
    frame = pd.read_csv(io.StringIO("to,name\n+12125550100,a\n,b\n12125550101,c\n"))
    assert frame["to"].dtype == float
    results = normalise_phones(frame["to"], "US")
    assert [r.number for r in results] == ["+12125550100", None, "+12125550101"]
    assert results[1].reason == "missing phone number"
    assert [r.number for r in normalise_phones(frame["to"])] == [None, None, None]


def test_normalise_phones_keeps_order_and_repeats():
    values = ["+12125550100", "bad", "+12125550100", None]
    assert [r.number for r in normalise_phones(values)] == ["+12125550100", None, "+12125550100", None]


def test_is_missing():
    assert is_missing(None)
    assert is_missing(float("nan"))
    assert is_missing(pd.NA)
    assert not is_missing("")
    assert not is_missing(0)


@given(st.one_of(st.text(max_size=80), st.integers(), st.floats(), st.binary(max_size=40), st.none()))
def test_any_value_gives_a_valid_number_or_a_reason(value):
    result = normalise_phone(value, "US")
    assert (result.number is None) != (result.reason is None)
    if result.number is not None:
        assert result.number.startswith("+")
        assert result.number[1:].isdigit()
        assert normalise_phone(result.number) == result  # E.164 output is a fixed point
