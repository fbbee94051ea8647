"""
The columns of each exported resource, and the turning of API rows into Arrow tables of that schema.

One definition of what an export holds: the resources, their API paths, each column's name, source field,
type and meaning, the explicit pyarrow schema, and the checks that turn odd API values into typed errors.
"""

from __future__ import annotations

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


def arrow_schema(resource: str) -> pa.Schema:
    """The explicit pyarrow schema of a resource's export (see :data:`COLUMNS`)."""
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


def _column_array(column: Column, values: list[Any], ids: list[Any], resource: str) -> pa.Array:
    """One column as an Arrow array: a fast vectorised path, and a per-value path for odd values."""
    import pyarrow as pa

    target = arrow_type(column.kind)
    try:
        if column.kind == "timestamp":
            if all(v is None or isinstance(v, str) for v in values):
                return _check_calendar(pa.array(values, pa.string()).cast(target), column, resource)
        elif column.kind == "string_list":
            if all(v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in values):
                return pa.array(values, target)
        else:
            return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    coerce: Callable[[Any], Any]
    if column.kind == "int64":
        coerce = lambda v, rid: _coerce_int(v, column, resource, rid)  # noqa: E731
    elif column.kind == "string":
        coerce = lambda v, rid: _coerce_string(v)  # noqa: E731
    elif column.kind == "timestamp":
        coerce = lambda v, rid: _coerce_timestamp(v, column, resource, rid)  # noqa: E731
    else:
        coerce = lambda v, rid: _coerce_string_list(v, column, resource, rid)  # noqa: E731
    try:
        return pa.array([coerce(v, rid) for v, rid in zip(values, ids)], target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise SMSNexusResponseError(
            f"{resource}: field {column.source!r} holds values that are not {column.kind}: {exc}"
        ) from None


def _fast_arrays(resource: str, rows: Sequence[Mapping[str, Any]]) -> list[pa.Array] | None:
    """
    The columns parsed by Arrow's JSON reader from the rows re-encoded as JSON lines: one C++ pass, strict
    about types, and without ``pa.array`` on Python lists (which imports pandas, 40 MB). None when a value
    needs the per-value rules of :func:`_column_array` (a number where text is due, an id as a string ...).
    """
    import io

    import msgspec
    import pyarrow as pa
    import pyarrow.json as pajson

    columns = COLUMNS[resource]
    source_schema = pa.schema(
        [pa.field(c.source, pa.string() if c.kind == "timestamp" else arrow_type(c.kind)) for c in columns]
    )
    try:
        lines = msgspec.json.Encoder().encode_lines(rows)
        table = pajson.read_json(
            io.BytesIO(lines),
            read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(lines), 1 << 16)),
            parse_options=pajson.ParseOptions(
                explicit_schema=source_schema, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        return None
    if table.num_rows != len(rows):
        return None
    arrays = []
    for column in columns:
        array = table.column(column.source).combine_chunks()
        if column.kind == "timestamp":
            try:
                array = array.cast(arrow_type("timestamp"))
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
                return None
            array = _check_calendar(array, column, resource)
        arrays.append(array)
    return arrays


def rows_to_table(resource: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """
    Turn API rows into an Arrow table of the resource's schema.

    Fields the API adds later are ignored; documented fields it leaves out become nulls. Strings accept any
    scalar (numbers become text, objects JSON text); ids, counts and timestamps must be what they say.

    :param resource: one of :data:`RESOURCES`.
    :param rows: the rows, as the API returns them.
    :raises SMSNexusResponseError: a row is not an object, has no id, or holds a value of the wrong type.
    """
    import pyarrow as pa

    for row in rows:
        if not isinstance(row, Mapping):
            raise SMSNexusResponseError(
                f"{resource}: the API returned a row that is not an object: {_short(row)}"
            )
    columns = COLUMNS[check_resource(resource)]
    arrays = _fast_arrays(resource, rows) if rows and all(type(row) is dict for row in rows) else None
    if arrays is not None:
        for column, array in zip(columns, arrays):
            if not column.nullable and array.null_count:
                raise SMSNexusResponseError(f"{resource}: the API returned a row without {column.source!r}")
        return pa.Table.from_arrays(arrays, schema=arrow_schema(resource))
    ids = [row.get("id") for row in rows]
    arrays = []
    for column in columns:
        values = [row.get(column.source) for row in rows]
        if not column.nullable and any(v is None for v in values):
            raise SMSNexusResponseError(f"{resource}: the API returned a row without {column.source!r}")
        arrays.append(_column_array(column, values, ids, resource))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(resource))
