"""The extraction core: schemas, row conversion, the window, and pages to batches."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from export_helpers import message_rows

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.transfers.extraction import (
    COLUMNS,
    ExportStats,
    ExportWindow,
    arrow_schema,
    iter_export_batches,
    resolve_window,
    rows_to_table,
)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc)


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


def test_window_end_is_cut_to_the_moment_the_task_started():
    window = resolve_window("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z", now=NOW)
    assert window == ExportWindow(datetime(2026, 3, 10, tzinfo=timezone.utc), NOW)


def test_window_without_dates_is_the_whole_history_up_to_now():
    assert resolve_window(None, None, now=NOW) == ExportWindow(None, NOW)
    assert resolve_window("None", "", now=NOW) == ExportWindow(None, NOW)


def test_lookback_moves_the_start_back():
    window = resolve_window(
        datetime(2026, 3, 9, tzinfo=timezone.utc), "2026-03-10", now=NOW, lookback=timedelta(days=2)
    )
    assert window.start == datetime(2026, 3, 7, tzinfo=timezone.utc)
    assert window.end == datetime(2026, 3, 10, tzinfo=timezone.utc)


def test_whole_days_widen_the_window_to_midnights_but_never_past_now():
    window = resolve_window("2026-03-08T06:00:00Z", "2026-03-10T09:00:00Z", now=NOW, whole_days=True)
    assert window.start == datetime(2026, 3, 8, tzinfo=timezone.utc)
    assert window.end == NOW  # the next midnight is after now
    assert window.covered_days() == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    earlier = resolve_window("2026-03-01T06:00:00Z", "2026-03-02T09:00:00Z", now=NOW, whole_days=True)
    assert earlier == ExportWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc)
    )


def test_naive_datetimes_and_dates_are_taken_as_utc():
    window = resolve_window(date(2026, 3, 1), datetime(2026, 3, 2, 12), now=NOW)
    assert window == ExportWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    )


def test_a_window_starting_after_now_is_an_error():
    with pytest.raises(ValueError, match="after its end"):
        resolve_window("2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z", now=NOW)
    with pytest.raises(SMSNexusError, match="not an ISO 8601"):
        resolve_window("last tuesday", None, now=NOW)


def test_covered_days_of_an_empty_or_open_window():
    assert ExportWindow(NOW, NOW).covered_days() == []
    assert ExportWindow(None, NOW).covered_days() is None


class PagesHook:
    """A stand-in for the hook that returns fixed pages (with repeats a real walk never yields)."""

    def __init__(self, pages):
        self.pages = pages
        self.stats = {"requests": 0}

    def iter_message_pages(self, **kwargs):
        for page in self.pages:
            self.stats["requests"] += 1
            yield page


def test_batches_are_bounded_and_each_id_comes_once():
    rows = message_rows(2_500, step=timedelta(minutes=1))
    pages = [rows[i : i + 100] for i in range(0, 2_500, 100)]
    pages.insert(5, rows[:100])  # a whole page again
    stats = ExportStats("messages", None, NOW, "test")
    hook = PagesHook(pages)
    batches = list(
        iter_export_batches(hook, "messages", stats, window=ExportWindow(None, NOW), batch_size=1_000)
    )
    ids = [i for batch in batches for i in batch.column("id").to_pylist()]
    assert sorted(ids) == list(range(1, 2_501))
    assert all(batch.num_rows <= 1_000 + 5_000 for batch in batches)
    assert stats.rows == 2_500
    assert stats.duplicates_dropped == 100
    assert stats.requests == 26


def test_rows_outside_the_window_are_dropped_even_if_the_hook_let_them_through():
    rows = message_rows(48)  # one per hour over two days
    stats = ExportStats("messages", None, NOW, "test")
    window = ExportWindow(
        datetime(2026, 3, 1, 12, tzinfo=timezone.utc), datetime(2026, 3, 2, tzinfo=timezone.utc)
    )
    batches = list(iter_export_batches(PagesHook([rows]), "messages", stats, window=window))
    assert sum(b.num_rows for b in batches) == 12
    assert stats.outside_window == 36


def test_airflow_context_datetimes_are_accepted():
    import pendulum

    window = resolve_window(
        pendulum.datetime(2026, 3, 8, tz="UTC"),
        pendulum.datetime(2026, 3, 9, tz="Europe/Paris"),
        now=NOW,
        lookback=timedelta(days=2),
        whole_days=True,
    )
    assert window == ExportWindow(
        datetime(2026, 3, 6, tzinfo=timezone.utc), datetime(2026, 3, 9, tzinfo=timezone.utc)
    )
    assert type(window.start) is datetime


def test_lone_surrogates_and_other_odd_text_become_valid_strings():
    rows = message_rows(2)
    rows[0]["body"] = "broken \ud83d pair and a good \ud83c\udf89 one"
    rows[1]["body"] = ["a", 1]
    table = rows_to_table("messages", rows)
    assert table.column("body").to_pylist() == ["broken \ufffd pair and a good \U0001f389 one", '["a", 1]']
