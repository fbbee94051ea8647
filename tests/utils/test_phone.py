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

from airflow_provider_smsnexus.utils.phone import PhoneResult, is_missing, normalise_phone, normalise_phones


@pytest.mark.parametrize(
    "value",
    [
        "+12125550100",
        " +1 212 555 0100 ",
        "+1 (212) 555-0100",
        "+1.212.555.0100",
        12125550100,
        12125550100.0,
        np.int64(12125550100),
        np.float64(12125550100.0),
        Decimal("12125550100"),
        "12125550100.0",
        "12125550100",
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


def test_a_float_column_from_pandas_normalises():
    frame = pd.read_csv(io.StringIO("to,name\n+12125550100,a\n,b\n12125550101,c\n"))
    assert frame["to"].dtype == float
    results = normalise_phones(frame["to"])
    assert [r.number for r in results] == ["+12125550100", None, "+12125550101"]
    assert results[1].reason == "missing phone number"


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
