"""Message pages decoded into columns (hooks/message_columns.py): which pages take the path, what they hold,
and a walk over columns keeping exactly the rows a walk over dicts keeps (against an oracle written here).

The switch tests of the walk over HTTP run on both paths in ``test_pagination.py``; the export, which reads
columns, in ``tests/transfers``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.hooks.message_columns import (
    MESSAGE_FIELDS,
    MessageColumns,
    decode_message_page,
)
from airflow_provider_smsnexus.hooks.pagination import PageWalker
from airflow_provider_smsnexus.transfers.schema import COLUMNS, columns_to_table, rows_to_table
from tests._hypothesis import deep_examples

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def page(rows: list, meta: object = None, **extra: object) -> str:
    body = {"success": True, "data": rows, **extra}
    if meta is not None:
        body["meta"] = meta
    return json.dumps(body, ensure_ascii=False)


def message(id_: object = 7, created_at: object = "2026-03-01T10:00:00Z", **fields: object) -> dict:
    row = {"id": id_, "from": "+12125550100", "to": "+12125550101", "body": "hi", "direction": "outbound"}
    return {**row, "status": "sent", "credits_used": 1, "created_at": created_at, **fields}


def test_a_page_of_documented_values_becomes_columns_in_listing_order():
    text = page(
        [
            message(9, "2026-03-01T10:00:00Z", body="Olá 👍", credits_used=None),
            {"id": 8, "created_at": "2026-03-01T11:30:00+01:00", "status": None, "extra": [1]},
        ],
        meta={"current_page": 1, "last_page": 3, "total": 5},
    )
    body = decode_message_page(text)
    columns = body["data"]
    assert isinstance(columns, MessageColumns)
    assert body["meta"] == {"current_page": 1, "last_page": 3, "total": 5}
    assert body["success"] is True
    # Hand-checked: the second row lacks from/to/body/direction/credits (None) and says 11:30 at +01:00.
    assert dict(columns.values) == {
        "id": (9, 8),
        "from": ("+12125550100", None),
        "to": ("+12125550101", None),
        "body": ("Olá 👍", None),
        "direction": ("outbound", None),
        "status": ("sent", None),
        "credits_used": (None, None),
        "created_at": (datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    }
    assert list(columns.values) == list(MESSAGE_FIELDS)
    assert [row["id"] for row in columns] == [9, 8]
    assert columns.take([1]).field("id") == [8]


def test_the_records_hold_every_field_the_export_reads_in_its_order():
    # One fact in two layers: the hook's typed records and the export's message columns read the same fields.
    assert [column.source for column in COLUMNS["messages"]] == list(MESSAGE_FIELDS)


def test_an_empty_page_is_empty_columns():
    columns = decode_message_page(page([], meta={"last_page": 1}))["data"]
    assert isinstance(columns, MessageColumns)
    assert len(columns) == 0


@pytest.mark.parametrize(
    "text",
    [
        page([message(id_="7")]),  # an id as text: read by the reader, row by row
        page([message(id_=2**63)]),  # past int64
        page([message(id_=True)]),
        page([message(id_=7.0)]),
        page([message(created_at="2026-03-01T10:00:00")]),  # no offset: the plain path reads it as UTC
        page([message(created_at="yesterday")]),
        page([message(created_at=None)]),
        page([{k: v for k, v in message().items() if k != "created_at"}]),
        page([{k: v for k, v in message().items() if k != "id"}]),
        page([message(body=5)]),  # a number where text is due: the plain path makes it text
        page([message(credits_used=1.5)]),
        page([message(status=["sent"])]),
        page([message(), None]),
        page([message()], meta=[1]),
        page([message()], success="yes"),
        json.dumps({"success": True, "data": None}),
        json.dumps({"success": False, "message": "no"}),
        "<html>busy</html>",
        "",
    ],
    ids=lambda text: text[:60],
)
def test_any_other_page_is_decoded_as_plain_json(text):
    body = decode_message_page(text)
    expected = json.loads(text) if text.startswith("{") else None
    assert body == expected
    assert not isinstance((body or {}).get("data"), MessageColumns)


def test_columns_make_the_same_arrow_table_as_the_rows_they_came_from():
    rows = [
        message(1, "2026-03-01T10:00:00.123456Z", body="naïve ✓ 👍"),
        message(2, "2026-03-01T10:00:00-05:00", to=None, credits_used=None),
        message(3, "1999-12-31T23:59:59+14:00", status=None, body=""),
        {"id": 2**63 - 1, "created_at": "2026-03-01T00:00:00Z"},
    ]
    columns = decode_message_page(page(rows))["data"]
    assert isinstance(columns, MessageColumns)
    sources = [column.source for column in COLUMNS["messages"]]
    from_columns = columns_to_table("messages", [columns.field(source) for source in sources])
    from_rows = rows_to_table("messages", rows)
    assert from_columns.equals(from_rows)
    # And the instants, checked by hand: 10:00 at -05:00 is 15:00 UTC; 23:59:59 at +14:00 is 09:59:59 UTC.
    assert from_columns.column("created_at").to_pylist()[1:3] == [
        datetime(2026, 3, 1, 15, tzinfo=UTC),
        datetime(1999, 12, 31, 9, 59, 59, tzinfo=UTC),
    ]


# -- a walk over columns keeps what a walk over dicts keeps, and what the rules say ---------------------

_rows = st.lists(
    st.tuples(
        st.integers(1, 40),  # ids repeat: drift
        st.one_of(st.none(), st.integers(0, 60)),  # minutes after T0, or no created_at
        st.sampled_from(["queued", "sent", None]),
    ),
    max_size=8,
)


def _page_rows(drawn: list[tuple]) -> list[dict]:
    rows = []
    for id_, minutes, status in drawn:
        row = {"id": id_, "status": status}
        if minutes is not None:
            row["created_at"] = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        rows.append(row)
    return rows


def _oracle(pages: list[list[dict]], start, end, status) -> tuple[list[list[int]], bool]:
    """What a walk must yield, row by row, from the rules in hooks/pagination.py's docstring; and whether
    the rows prove newest-first order. None: a new row in a window without a created_at (an error)."""
    seen: set[int] = set()
    kept_pages, moments, rose, fell = [], [], False, False
    for rows in pages:
        last_before = moments[-1] if moments else None
        kept = []
        for row in rows:
            moment = row.get("created_at")
            if moment is not None:
                if moments and moment > moments[-1]:
                    rose = True
                if last_before is not None and moment < last_before:
                    fell = True
                moments.append(moment)
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            if (start or end) and moment is None:
                return None, False
            if (start and moment < start) or (end and moment >= end):
                continue
            if status and row["status"] != status:
                continue
            kept.append(row["id"])
        kept_pages.append(kept)
    return kept_pages, fell and not rose


@settings(max_examples=deep_examples(150), deadline=None)
@given(
    pages=st.lists(_rows, min_size=1, max_size=5),
    start=st.one_of(st.none(), st.integers(0, 60)),
    end=st.one_of(st.none(), st.integers(0, 61)),
    status=st.sampled_from([None, "queued"]),
)
def test_a_walk_over_columns_keeps_the_rows_the_rules_keep(pages, start, end, status):
    pages = [_page_rows(drawn) for drawn in pages]
    iso = {m: (T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in range(62)}
    expected, proven = _oracle(
        pages, iso.get(start), iso.get(end), status
    )  # ISO texts of one form compare as the times they name
    window = {
        "start": None if start is None else T0 + timedelta(minutes=start),
        "end": None if end is None else T0 + timedelta(minutes=end),
    }
    where = {"status": status} if status else None
    for columns in (False, True):
        walker = PageWalker("/api/messages", **window, where=where)
        got = []
        try:
            for rows in pages:
                text = json.dumps({"data": rows})
                body = decode_message_page(text) if columns else json.loads(text)
                if columns and rows and all("created_at" in row for row in rows):
                    assert isinstance(body["data"], MessageColumns)
                got.append([row["id"] for row in walker.take(body)])
        except Exception:
            if expected is not None:
                raise
            continue
        assert expected is not None, "the walk should have refused an undated row in a window"
        assert got == expected
        assert walker.newest_first_proven == proven
        assert walker.seen.size == len({row["id"] for rows in pages for row in rows})


_text = st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 5), st.just("\ud800"))
_moment = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(["2026-03-01T10:00:00+05:30", "2026-03-01T10:00:00", "2026-03-01 10:00:00Z", "x", ""]),
    st.none(),
)
_message = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(1, 50), st.sampled_from(["7", 2**63, -(2**63) - 1, 3.0])),
        "created_at": _moment,
    },
    optional={
        "from": _text,
        "to": _text,
        "body": _text,
        "direction": _text,
        "status": _text,
        "credits_used": st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["2", 1.5, True])),
    },
)


# Rows of the documented types only (most pages then take the column path), and rows with odd values.
_typed_message = st.fixed_dictionaries(
    {
        "id": st.integers(1, 50),
        "created_at": st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
        ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    },
    optional={
        field: st.one_of(st.none(), st.text(max_size=6))
        for field in ("from", "to", "body", "direction", "status")
    }
    | {"credits_used": st.one_of(st.none(), st.integers(-3, 3))},
)


@settings(max_examples=deep_examples(200), deadline=None)
@given(rows=st.lists(st.one_of(_typed_message, _typed_message, _typed_message, _message), max_size=6))
def test_what_a_page_holds_decides_only_its_path_never_the_table(rows):
    # The export of a page read as columns, or as dicts when it is not exactly typed, against the page read
    # as dicts by the standard library: the same table, or the same error.
    text = json.dumps({"data": rows})
    sources = [column.source for column in COLUMNS["messages"]]

    def table_or_error(read):
        try:
            return read()
        except Exception as exc:
            return type(exc)

    data = decode_message_page(text)["data"]
    if isinstance(data, MessageColumns):
        got = table_or_error(lambda: columns_to_table("messages", [data.field(s) for s in sources]))
    else:
        got = table_or_error(lambda: rows_to_table("messages", data))
    expected = table_or_error(lambda: rows_to_table("messages", json.loads(text)["data"]))
    if isinstance(expected, type):
        assert got is expected
    else:
        assert not isinstance(got, type), got
        assert got.equals(expected)
