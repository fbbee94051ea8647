"""The columns of each resource and the turning of API rows into Arrow tables (transfers/schema.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError
from airflow_provider_smsnexus.transfers.schema import COLUMNS, arrow_schema, id_reader, rows_to_table
from tests.transfers.export_helpers import message_rows


def test_schemas_use_int64_ids_utc_microsecond_timestamps_and_string_lists():
    messages = arrow_schema("messages")
    assert messages.field("id").type == pa.int64()
    assert not messages.field("id").nullable
    assert messages.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert messages.names == [
        "id",
        "from_number",
        "to_number",
        "body",
        "direction",
        "status",
        "credits_used",
        "created_at",
    ]
    assert arrow_schema("phone_numbers").field("capabilities").type == pa.list_(pa.string())
    assert arrow_schema("conversations").field("last_message_at").type == pa.timestamp("us", tz="UTC")
    for resource, columns in COLUMNS.items():
        assert all(arrow_schema(resource).field(c.name).metadata[b"description"] for c in columns)


def test_unknown_resource_is_rejected():
    with pytest.raises(ValueError, match="resource must be one of"):
        arrow_schema("webhooks")


def test_rows_ignore_fields_the_api_adds_and_fill_missing_fields_with_nulls():
    row = message_rows(1)[0]
    row["segments"] = 3  # a field a later API version adds
    del row["body"]
    table = rows_to_table("messages", [row])
    assert table.schema == arrow_schema("messages")
    assert table.column("body").to_pylist() == [None]
    assert table.column("from_number").to_pylist() == ["+12125550100"]


def test_fields_some_rows_leave_out_or_send_as_null_become_nulls_in_those_rows_only():
    rows = message_rows(4)
    del rows[0]["credits_used"]
    rows[1]["body"] = None
    rows[2]["created_at"] = None
    del rows[3]["to"]
    table = rows_to_table("messages", rows)
    assert table.schema == arrow_schema("messages")
    assert table.column("credits_used").to_pylist() == [None, 1, 1, 1]
    assert table.column("body").to_pylist() == ["message 1", None, "message 3", "message 4"]
    assert table.column("created_at").null_count == 1
    assert table.column("created_at").to_pylist()[2] is None
    assert table.column("to_number").to_pylist() == ["+12125550100", "+12125550101", "+12125550102", None]


def test_integral_floats_and_digit_strings_count_as_whole_numbers():
    rows = message_rows(2)
    rows[0]["credits_used"] = 3.0
    rows[1]["credits_used"] = " 4 "
    assert rows_to_table("messages", rows).column("credits_used").to_pylist() == [3, 4]


def test_timestamps_with_offsets_or_without_zone_become_utc():
    rows = message_rows(3)
    rows[0]["created_at"] = "2026-03-08T14:00:00+02:00"
    rows[1]["created_at"] = "2026-03-08 12:00:00"  # no zone: taken as UTC
    rows[2]["created_at"] = "2026-03-08T12:00:00.123456Z"
    values = rows_to_table("messages", rows).column("created_at").to_pylist()
    assert values == [
        datetime(2026, 3, 8, 12, tzinfo=timezone.utc),
        datetime(2026, 3, 8, 12, tzinfo=timezone.utc),
        datetime(2026, 3, 8, 12, 0, 0, 123456, tzinfo=timezone.utc),
    ]


def test_string_fields_accept_other_scalars_and_ids_accept_digit_strings():
    rows = message_rows(2)
    rows[0]["body"] = 12345
    rows[1]["body"] = {"text": "hi"}
    rows[1]["id"] = "77"
    table = rows_to_table("messages", rows)
    assert table.column("body").to_pylist() == ["12345", '{"text": "hi"}']
    assert table.column("id").to_pylist() == [1, 77]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "abc", "not a whole number"),
        ("id", None, "without 'id'"),
        ("credits_used", "lots", "not a whole number"),
        ("credits_used", 2.5, "not a whole number"),
        ("credits_used", True, "not a whole number"),
        ("created_at", "yesterday", "not an ISO 8601 timestamp"),
        ("created_at", 1709892000, "not an ISO 8601 timestamp"),
        ("created_at", "0001-01-01T00:00:00+01:00", "years 1 to 9999"),
        ("created_at", "9999-12-31T23:59:59-01:00", "years 1 to 9999"),
    ],
)
def test_wrong_value_types_raise_a_typed_error_naming_the_field(field, value, message):
    rows = message_rows(2)
    rows[1][field] = value
    with pytest.raises(SMSNexusResponseError, match=message):
        rows_to_table("messages", rows)


def test_a_row_that_is_not_an_object_raises_a_typed_error():
    with pytest.raises(SMSNexusResponseError, match="not an object"):
        rows_to_table("messages", [*message_rows(1), ["not", "a", "row"]])


def test_capabilities_become_a_list_of_strings():
    rows = [
        {
            "id": 1,
            "number": "+12125550100",
            "capabilities": ["sms", "mms"],
            "created_at": "2026-01-15T10:30:00Z",
        },
        {"id": 2, "number": "+12125550101", "capabilities": "sms"},
        {"id": 3, "number": "+12125550102", "capabilities": None},
    ]
    table = rows_to_table("phone_numbers", rows)
    assert table.column("capabilities").to_pylist() == [["sms", "mms"], ["sms"], None]
    with pytest.raises(SMSNexusResponseError, match="not a list of strings"):
        rows_to_table("phone_numbers", [{"id": 4, "capabilities": 7}])


def test_lone_surrogates_and_other_odd_text_become_valid_strings():
    rows = message_rows(2)
    rows[0]["body"] = "broken \ud83d pair and a good \ud83c\udf89 one"
    rows[1]["body"] = ["a", 1]
    table = rows_to_table("messages", rows)
    assert table.column("body").to_pylist() == ["broken \ufffd pair and a good \U0001f389 one", '["a", 1]']


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (-(2**63), -(2**63)), (2**63 - 1, 2**63 - 1), ("77", 77), (" 8 ", 8), (9.0, 9)],
)
def test_the_id_reader_reads_whole_numbers_in_any_form(value, expected):
    assert id_reader("messages")(value) == expected


@pytest.mark.parametrize("value", [True, 2**63, -(2**63) - 1, 2.5, "x", None, [1]])
def test_the_id_reader_refuses_what_is_not_a_64_bit_whole_number(value):
    with pytest.raises(SMSNexusResponseError):
        id_reader("messages")(value)
