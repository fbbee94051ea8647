"""
The columns of each exported resource, and the turning of API rows into Arrow tables of that schema.

One definition of what an export holds: the resources, their API paths, each column's name, source field,
type and meaning, the explicit pyarrow schema, and the checks that turn odd API values into typed errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError

if TYPE_CHECKING:
    import pyarrow as pa

#: The resources an export can read.
RESOURCES = ("messages", "conversations", "phone_numbers")

#: The API path of each resource (the OpenLineage input dataset's name).
RESOURCE_PATHS = {
    "messages": "/api/messages",
    "conversations": "/api/conversations",
    "phone_numbers": "/api/phone-numbers",
}

MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed")
MESSAGE_DIRECTIONS = ("outbound", "inbound")


@dataclass(frozen=True)
class Column:
    """
    One destination column of an exported resource.

    :param name: the column's name in Parquet and SQL.
    :param source: the API field it is read from.
    :param kind: ``int64``, ``string``, ``timestamp`` (UTC, microseconds) or ``string_list``.
    :param nullable: whether the API may leave it out; ``id`` is the only column that may not.
    :param description: what the column holds (written into the Parquet schema's field metadata).
    """

    name: str
    source: str
    kind: str
    nullable: bool = True
    description: str = ""


COLUMNS: dict[str, tuple[Column, ...]] = {
    "messages": (
        Column("id", "id", "int64", False, "Message id, unique per account."),
        Column("from_number", "from", "string", description="Sender, E.164 (API field 'from')."),
        Column("to_number", "to", "string", description="Recipient, E.164 (API field 'to')."),
        Column("body", "body", "string", description="Text of the message."),
        Column("direction", "direction", "string", description="outbound or inbound."),
        Column("status", "status", "string", description="queued, sent, delivered or failed."),
        Column("credits_used", "credits_used", "int64", description="Credits charged."),
        Column("created_at", "created_at", "timestamp", description="Creation time, UTC."),
    ),
    "conversations": (
        Column("id", "id", "int64", False, "Conversation id."),
        Column("phone_number", "phone_number", "string", description="The account's number, E.164."),
        Column("contact_number", "contact_number", "string", description="The contact's number, E.164."),
        Column("last_message", "last_message", "string", description="Text of the latest message."),
        Column("last_message_at", "last_message_at", "timestamp", description="Time of the latest message."),
        Column("unread_count", "unread_count", "int64", description="Unread inbound messages."),
        Column("message_count", "message_count", "int64", description="Messages in the thread."),
    ),
    "phone_numbers": (
        Column("id", "id", "int64", False, "Phone number id."),
        Column("number", "number", "string", description="The number, E.164."),
        Column("carrier", "carrier", "string", description="Carrier name."),
        Column("capabilities", "capabilities", "string_list", description="sms, mms, ..."),
        Column("status", "status", "string", description="active or inactive."),
        Column("created_at", "created_at", "timestamp", description="When the number was added, UTC."),
    ),
}


def check_resource(resource: str) -> str:
    """Return ``resource`` when it is one of :data:`RESOURCES`; raise ValueError otherwise."""
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, not {resource!r}")
    return resource


def arrow_type(kind: str) -> pa.DataType:
    """The pyarrow type of a column kind."""
    import pyarrow as pa

    return {
        "int64": pa.int64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "string_list": pa.list_(pa.string()),
    }[kind]


@functools.cache
def arrow_schema(resource: str) -> pa.Schema:
    """The explicit pyarrow schema of a resource's export (see :data:`COLUMNS`; built once, immutable)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(c.name, arrow_type(c.kind), nullable=c.nullable, metadata={"description": c.description})
            for c in COLUMNS[check_resource(resource)]
        ],
        metadata={"smsnexus_resource": resource},
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_id(value: Any, resource: str) -> int:
    """
    An API row's ``id`` as an int: whole numbers, also as digit strings or integral floats.

    :raises SMSNexusResponseError: for anything else, or a value outside int64.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        raise SMSNexusResponseError(f"{resource}: a row has the id {_short(value)}, not a whole number")
    if not -(2**63) <= number < 2**63:
        raise SMSNexusResponseError(f"{resource}: the id {number} does not fit a 64-bit integer")
    return number


def id_reader(resource: str) -> Callable[[Any], int]:
    """:func:`as_id` for ``resource`` as a one-argument reader (the walker's), quickest for plain int ids."""
    low, high = -(2**63), 2**63 - 1

    def read_id(value: Any) -> int:
        if value.__class__ is int and low <= value <= high:  # what nearly every row holds
            return value
        return as_id(value, resource)

    read_id.keeps_int64 = True  # type: ignore[attr-defined]  # see hooks/pagination.py's plain_id
    return read_id


def _coerce_int(value: Any, column: Column, resource: str, row_id: Any) -> int | None:
    if value is None:
        return None
    try:
        return as_id(value, resource)
    except SMSNexusResponseError:
        raise SMSNexusResponseError(
            f"{resource}: field {column.source!r} of id {row_id!r} is {_short(value)}, not a whole number"
        ) from None


def _valid_text(value: str) -> str:
    """``value`` as valid Unicode: surrogate pairs joined, lone surrogates (JSON allows them) as U+FFFD."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _coerce_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return _valid_text(value if isinstance(value, str) else str(value))


def _coerce_timestamp(value: Any, column: Column, resource: str, row_id: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is not None:
        try:
            return (
                parsed.replace(tzinfo=timezone.utc)
                if parsed.tzinfo is None
                else parsed.astimezone(timezone.utc)
            )
        except OverflowError:  # an offset that moves it out of years 1-9999
            pass
    raise SMSNexusResponseError(
        f"{resource}: field {column.source!r} of id {row_id!r} is {_short(value)}, "
        "not an ISO 8601 timestamp in years 1 to 9999 (UTC)"
    )


#: The span of Python's datetime (years 1 to 9999, UTC) in microseconds since the epoch.
_TIMESTAMP_RANGE_US = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def _check_calendar(array: pa.Array, column: Column, resource: str) -> pa.Array:
    """Refuse timestamps outside years 1-9999 (UTC): Arrow holds them, but no reader's calendar does."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(array) == array.null_count:
        return array
    bounds = pc.min_max(array.cast(pa.int64()))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low < _TIMESTAMP_RANGE_US[0] or high > _TIMESTAMP_RANGE_US[1]:
        raise SMSNexusResponseError(
            f"{resource}: field {column.source!r} holds a timestamp outside years 1 to 9999 (UTC)"
        )
    return array


def _coerce_string_list(value: Any, column: Column, resource: str, row_id: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [_coerce_string(v) for v in value]  # type: ignore[misc]
    raise SMSNexusResponseError(
        f"{resource}: field {column.source!r} of id {row_id!r} is {_short(value)}, not a list of strings"
    )


def _slow_column_array(column: Column, values: Sequence[Any], ids: Sequence[Any], resource: str) -> pa.Array:
    """One column whose values are not all of their exact type: each value through its coercion rule."""
    from airflow_provider_smsnexus.transfers import _columns

    coerce: Callable[[Any, Any], Any]
    if column.kind == "int64":
        coerce = lambda v, rid: _coerce_int(v, column, resource, rid)  # noqa: E731
    elif column.kind == "string":
        coerce = lambda v, rid: _coerce_string(v)  # noqa: E731
    elif column.kind == "timestamp":
        coerce = lambda v, rid: _coerce_timestamp(v, column, resource, rid)  # noqa: E731
    else:
        coerce = lambda v, rid: _coerce_string_list(v, column, resource, rid)  # noqa: E731
    coerced = [coerce(v, rid) for v, rid in zip(values, ids)]
    # The coerced values are of their exact types: the same builders take them (never pa.array, which
    # would import pandas, and reads 2.5 as 2).
    target = arrow_type(column.kind)
    if column.kind == "int64":
        array = _columns.int64_array(coerced)
    elif column.kind == "string":
        array = _columns.string_array(coerced)
    elif column.kind == "timestamp":
        array = _columns.datetime_array(coerced, target)
    else:
        array = _columns.string_list_array(coerced, target)
    if array is None:  # not reached: the coercions return nothing else
        raise SMSNexusResponseError(
            f"{resource}: field {column.source!r} holds values that are not {column.kind}"
        )
    return array


def _column_array(column: Column, values: Sequence[Any], ids: Sequence[Any], resource: str) -> pa.Array:
    """
    One column as an Arrow array: built straight from the values when each is of its column's exact type
    (:mod:`~airflow_provider_smsnexus.transfers._columns`, no pandas), else through the per-value rules.
    """
    from airflow_provider_smsnexus.transfers import _columns

    if column.kind == "int64":
        array = _columns.int64_array(values)
    elif column.kind == "string":
        array = _columns.string_array(values)
    elif column.kind == "timestamp":
        array = _columns.timestamp_array(values, arrow_type("timestamp"))
        if array is None:  # decoded datetimes (the column path), not texts
            array = _columns.datetime_array(values, arrow_type("timestamp"))
    else:
        array = _columns.string_list_array(values, arrow_type(column.kind))
    if array is None:
        array = _slow_column_array(column, values, ids, resource)
    if column.kind == "timestamp":
        array = _check_calendar(array, column, resource)
    return array


def rows_to_table(resource: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """
    Turn API rows into an Arrow table of the resource's schema.

    Fields the API adds later are ignored; documented fields it leaves out become nulls. Strings accept any
    scalar (numbers become text, objects JSON text); ids, counts and timestamps must be what they say.

    :param resource: one of :data:`RESOURCES`.
    :param rows: the rows, as the API returns them.
    :raises SMSNexusResponseError: a row is not an object, has no id, or holds a value of the wrong type.
    """

    from airflow_provider_smsnexus.transfers._columns import columns_of

    columns = COLUMNS[check_resource(resource)]
    if not set(map(type, rows)) <= {dict}:
        for row in rows:
            if not isinstance(row, Mapping):
                raise SMSNexusResponseError(
                    f"{resource}: the API returned a row that is not an object: {_short(row)}"
                )
    return columns_to_table(resource, columns_of(rows, [column.source for column in columns]))


def columns_to_table(resource: str, values_of: Sequence[Sequence[Any]]) -> pa.Table:
    """
    :func:`rows_to_table` for rows given as columns: ``values_of`` holds the values of each of the
    resource's :data:`COLUMNS` (its source field), in that order. The same types and errors.
    """
    import pyarrow as pa

    columns = COLUMNS[check_resource(resource)]
    ids = values_of[0]  # named in the per-value errors (id is every resource's first column)
    arrays = []
    for column, values in zip(columns, values_of):
        if not column.nullable and None in values:
            raise SMSNexusResponseError(f"{resource}: the API returned a row without {column.source!r}")
        arrays.append(_column_array(column, values, ids, resource))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(resource))
