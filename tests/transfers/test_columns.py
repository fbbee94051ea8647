"""Arrow arrays built straight from Python values (transfers/_columns.py), checked against ``pa.array``."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.transfers._columns import (
    columns_of,
    int64_array,
    string_array,
    string_list_array,
    timestamp_array,
)
from tests._hypothesis import deep_examples

TIMESTAMP = pa.timestamp("us", tz="UTC")
#: Any code point, lone surrogates and the ASCII controls included.
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)


def _pa_array_or_none(values, kind):
    """pyarrow's own converter, the independent record: its array, or None when it refuses a value."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None


@settings(max_examples=deep_examples(200), deadline=None)
@given(st.lists(st.one_of(st.none(), ANY_TEXT), max_size=40))
def test_texts_and_nulls_become_the_string_array_pyarrow_builds(values):
    expected = _pa_array_or_none(values, pa.string())
    built = string_array(values)
    if expected is None:  # a lone surrogate: left to the per-value rules
        assert built is None
    else:
        built.validate(full=True)
        assert built.equals(expected)
        assert built.to_pylist() == values


@settings(max_examples=deep_examples(100), deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=10), st.integers(0, 9))
def test_a_value_that_is_not_text_leaves_the_column_to_the_per_value_rules(values, where):
    for odd in (5, 2.5, True, {"text": "hi"}, ["a"]):
        mixed = [*values[:where], odd, *values[where:]]
        assert string_array(mixed) is None


@settings(max_examples=deep_examples(200), deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-(2**70), 2**70)),
        max_size=40,
    )
)
def test_integers_and_nulls_become_the_int64_array_pyarrow_builds(values):
    expected = _pa_array_or_none(values, pa.int64())
    built = int64_array(values)
    if expected is None:  # past int64
        assert built is None
    else:
        built.validate(full=True)
        assert built.equals(expected)
        assert built.to_pylist() == values


def test_bools_floats_and_digit_texts_are_not_taken_as_integers():
    # pyarrow itself would read 2.5 as 2 and 3.0 as 3; the per-value rules decide these instead.
    for odd in (True, False, 2.5, 3.0, "4"):
        assert int64_array([1, None, odd]) is None
    assert int64_array([None, None]).to_pylist() == [None, None]


@settings(max_examples=deep_examples(200), deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.tuples(
                st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30)),
                st.sampled_from(["Z", "+00:00", "+02:00", "-05:30"]),
                st.booleans(),
            ),
        ),
        max_size=30,
    )
)
def test_iso_texts_become_utc_microsecond_timestamps(moments):
    texts, expected = [], []
    for moment in moments:
        if moment is None:
            texts.append(None)
            expected.append(None)
            continue
        local, zone, fraction = moment
        local = local if fraction else local.replace(microsecond=0)
        texts.append(local.isoformat() + zone)
        expected.append(datetime.fromisoformat(local.isoformat() + zone.replace("Z", "+00:00")))
    built = timestamp_array(texts, TIMESTAMP)
    assert built.type == TIMESTAMP
    assert built.to_pylist() == [None if e is None else e.astimezone(timezone.utc) for e in expected]


def test_texts_arrow_cannot_read_as_timestamps_are_left_to_the_per_value_rules():
    good = "2026-03-08T12:00:00Z"
    for odd in ("yesterday", "2026-03-08 12:00:00", "", "2026-03-08", 1709892000):
        assert timestamp_array([good, odd], TIMESTAMP) is None


def test_lists_of_texts_become_a_list_array():
    kind = pa.list_(pa.string())
    values = [["sms", "mms"], None, [], ["é", None]]
    built = string_list_array(values, kind)
    built.validate(full=True)
    assert built.equals(pa.array(values, kind))
    for odd in ("sms", 7, ["sms", 7], ("sms",)):
        assert string_list_array([["sms"], odd], kind) is None


def test_the_values_of_each_field_are_read_from_dicts_and_other_mappings_missing_fields_as_none():
    class Row(dict):
        pass

    whole = [{"a": 1, "b": "x", "c": 0}, {"a": 2, "b": None, "c": 0}]
    gaps = [{"a": 1}, {"b": 2, "c": 3}, {"a": None}]
    assert [list(v) for v in columns_of(whole, ["a", "b"])] == [[1, 2], ["x", None]]
    assert [list(v) for v in columns_of(gaps, ["a", "b"])] == [[1, None, None], [None, 2, None]]
    assert [list(v) for v in columns_of([Row(r) for r in gaps], ["a", "b"])] == [
        [1, None, None],
        [None, 2, None],
    ]
    assert [list(v) for v in columns_of([], ["a", "b"])] == [[], []]


def test_turning_rows_into_tables_does_not_import_pandas():
    # pa.array on a Python list, and pa.scalar, import pandas (36 MB); an export never does, with or without
    # nulls, from dicts or from columns, nor when it writes PostgreSQL's CSV.
    code = (
        "import sys\n"
        "from airflow_provider_smsnexus.hooks.message_columns import decode_message_page\n"
        "from airflow_provider_smsnexus.transfers.schema import COLUMNS, columns_to_table, rows_to_table\n"
        "from airflow_provider_smsnexus.transfers.sql_loading import _csv_bytes\n"
        "row = {'id': 1, 'from': '+1', 'body': 'h\\u00e9', 'credits_used': None,"
        " 'created_at': '2026-03-08T12:00:00Z'}\n"
        "_csv_bytes(rows_to_table('messages', [row, {**row, 'id': 2, 'to': '+2', 'created_at': None}]))\n"
        "_csv_bytes(rows_to_table('phone_numbers', [{'id': 1, 'capabilities': ['sms']}, {'id': 2}]))\n"
        "rows_to_table('conversations', [])\n"
        'page = decode_message_page(\'{"data": [{"id": 3, "created_at": "2026-03-08T12:00:00Z"}]}\')\n'
        "_csv_bytes(columns_to_table('messages', [page['data'].field(c.source) for c in COLUMNS['messages']]))\n"
        "print('pandas' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.splitlines()[-1] == "False", completed.stderr


def test_timestamps_at_the_ends_of_the_calendar_are_read_as_python_reads_them():
    texts = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]
    built = timestamp_array(texts, TIMESTAMP).to_pylist()
    assert built[0] == datetime(1, 1, 1, tzinfo=timezone.utc)
    assert built[1] == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert built[2] - built[0] == timedelta(days=719162)
