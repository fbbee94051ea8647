"""
The extraction core shared by the SMS Nexus transfer operators.

Everything both destinations need, written once: the columns and pyarrow schema of each resource, the
export window (its upper bound fixed when the task starts, widened by a lookback), the stream from API pages
to large Arrow batches with run-wide deduplication, the run's figures (the XCom value), and the operator
base class with its asset and OpenLineage plumbing. The destinations only implement :class:`ExportWriter`.

.. seealso:: the "Exporting history" section of the README.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

#: The resources an export can read.
RESOURCES = ("messages", "conversations", "phone_numbers")

#: The API path of each resource (the OpenLineage input dataset's name).
RESOURCE_PATHS = {
    "messages": "/api/messages",
    "conversations": "/api/conversations",
    "phone_numbers": "/api/phone-numbers",
}

#: Rows per batch handed to a destination: one Parquet row group at most, one spooled SQL batch.
DEFAULT_BATCH_SIZE = 50_000

#: Page rows are turned into Arrow columns this many at a time, so that at most this many dicts are held.
CONVERT_EVERY_ROWS = 5_000

MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed")
MESSAGE_DIRECTIONS = ("outbound", "inbound")


# --------------------------------------------------------------------------------------------------
# Columns and schemas
# --------------------------------------------------------------------------------------------------


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
    ids = [row.get("id") for row in rows]
    arrays = []
    for column in COLUMNS[check_resource(resource)]:
        values = [row.get(column.source) for row in rows]
        if not column.nullable and any(v is None for v in values):
            raise SMSNexusResponseError(f"{resource}: the API returned a row without {column.source!r}")
        arrays.append(_column_array(column, values, ids, resource))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(resource))


# --------------------------------------------------------------------------------------------------
# The export window
# --------------------------------------------------------------------------------------------------


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class ExportWindow:
    """
    The span [start, end) of created_at that a message export covers.

    :param start: the inclusive start (aware UTC), or None for the whole history.
    :param end: the exclusive end (aware UTC); never later than the moment the task started.
    """

    start: datetime | None
    end: datetime

    def covered_days(self) -> list[date] | None:
        """The UTC days the window touches (None when it has no start); empty for an empty window."""
        if self.start is None:
            return None
        if self.end <= self.start:
            return []
        first, last = self.start.date(), self.last_day()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def last_day(self) -> date:
        """The UTC day of the window's last moment."""
        return (self.end - timedelta(microseconds=1)).date()


def _as_utc(value: Any, name: str) -> datetime | None:
    from airflow_provider_smsnexus.hooks.smsnexus import as_utc

    if isinstance(value, str) and value.strip() in ("", "None"):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    value = as_utc(value, name)
    if value is None:
        return None
    # A plain datetime, also for the pendulum DateTimes of Airflow's context (their arithmetic differs).
    return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=timezone.utc)


def resolve_window(
    window_start: datetime | date | str | None,
    window_end: datetime | date | str | None,
    *,
    now: datetime,
    lookback: timedelta | None = None,
    whole_days: bool = False,
) -> ExportWindow:
    """
    Fix the window of one export run.

    :param window_start: the window's start (datetime, date or ISO string); None for the whole history.
    :param window_end: the window's end; None for ``now``.
    :param now: the moment the task started: the end is never later, so rows created while the export runs
        are left to the next run.
    :param lookback: moves the start back by this much, so that status changes of recent messages are
        exported again.
    :param whole_days: widen the window to whole UTC days (start to its midnight, end to the next midnight
        unless that is after ``now``), so that every day partition it touches is rewritten complete.
    :raises ValueError: the window would start after its end.
    """
    start = _as_utc(window_start, "window_start")
    end = _as_utc(window_end, "window_end") or now
    if lookback:
        if lookback < timedelta(0):
            raise ValueError(f"lookback must not be negative, not {lookback}")
        if start is not None:
            start -= lookback
    if whole_days:
        start = _midnight(start) if start is not None else None
        if end != _midnight(end):
            end = _midnight(end) + timedelta(days=1)
    end = min(end, now)
    if start is not None and start > end:
        raise ValueError(
            f"the export window starts at {start.isoformat()}, after its end {end.isoformat()} "
            "(an end in the future is cut to the moment the task started)"
        )
    return ExportWindow(start, end)


# --------------------------------------------------------------------------------------------------
# Figures of a run
# --------------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class ExportStats:
    """
    The figures of one export run; :meth:`to_xcom` is the operators' return value.

    :param resource: the exported resource.
    :param window_start: the start of the exported window (None: whole history / whole resource).
    :param window_end: the end of the window; for conversations and phone numbers the snapshot time.
    :param destination: the file URL or table address written to.
    :param rows: rows written.
    :param pages: pages read from the API.
    :param requests: HTTP requests made (retries and refused requests included).
    :param duplicates_dropped: rows dropped because their id had come before in this run (page drift).
    :param outside_window: rows the API returned outside the window (dropped).
    """

    resource: str
    window_start: datetime | None
    window_end: datetime | None
    destination: str
    rows: int = 0
    pages: int = 0
    requests: int = 0
    duplicates_dropped: int = 0
    outside_window: int = 0

    def to_xcom(self) -> dict[str, Any]:
        """The XCom value: JSON-ready, timestamps as ISO 8601 strings."""
        return {
            "resource": self.resource,
            "rows": self.rows,
            "pages": self.pages,
            "requests": self.requests,
            "duplicates_dropped": self.duplicates_dropped,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "destination": self.destination,
        }


# --------------------------------------------------------------------------------------------------
# Pages to batches
# --------------------------------------------------------------------------------------------------


@dataclass
class _Counters:
    walker: Any = None
    own_duplicates: int = 0
    own_outside: int = 0
    pages: int = 0


def _page_walker(resource: str, start: datetime | None = None, end: datetime | None = None) -> Any:
    """The hook's :class:`PageWalker`, made to turn every row's id into an int (or a typed error) first."""
    from airflow_provider_smsnexus.hooks.smsnexus import PageWalker

    class ExportPageWalker(PageWalker):
        def take(self, body: dict[str, Any]) -> list[dict[str, Any]]:
            rows = body.get("data") if isinstance(body, dict) else None
            for row in rows if isinstance(rows, list) else ():
                if isinstance(row, dict) and "id" in row:
                    row["id"] = as_id(row["id"], resource)
            return super().take(body)

    return ExportPageWalker(RESOURCE_PATHS[resource], start, end)


def _resource_pages(
    hook: SMSNexusHook,
    resource: str,
    window: ExportWindow | None,
    status: str | None,
    direction: str | None,
    per_page: int,
    counters: _Counters,
) -> Iterator[list[dict[str, Any]]]:
    if resource == "messages":
        start, end = (window.start, window.end) if window else (None, None)
        counters.walker = _page_walker(resource, start, end)
        yield from hook.iter_message_pages(
            status=status,
            direction=direction,
            start_date=start,
            end_date=end,
            per_page=per_page,
            walker=counters.walker,
        )
    elif resource == "conversations":
        counters.walker = _page_walker(resource)
        yield from hook.iter_conversation_pages(per_page=per_page, walker=counters.walker)
    else:
        counters.pages = 1
        yield hook.get_phone_numbers()


def _window_filter(table: pa.Table, window: ExportWindow) -> pa.Table:
    """Keep the rows whose created_at lies in the window (the hook filters too: this guards partitions)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    created = table.column("created_at")
    mask = pc.less(created, pa.scalar(window.end, created.type))
    if window.start is not None:
        mask = pc.and_(mask, pc.greater_equal(created, pa.scalar(window.start, created.type)))
    return table.filter(mask)


def iter_export_batches(
    hook: SMSNexusHook,
    resource: str,
    stats: ExportStats,
    *,
    window: ExportWindow | None = None,
    status: str | None = None,
    direction: str | None = None,
    per_page: int = 100,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_page: Callable[[], None] | None = None,
) -> Iterator[pa.Table]:
    """
    Stream a resource from the API as Arrow tables of about ``batch_size`` rows.

    At most ``batch_size`` + :data:`CONVERT_EVERY_ROWS` rows are held at any time, whatever the size of the
    history. Each id is yielded once per run (the first time it comes); ``stats`` is kept up to date.

    :param hook: the SMS Nexus hook to read with (its ``stats["requests"]`` counts the requests).
    :param resource: one of :data:`RESOURCES`.
    :param stats: the run's figures, updated in place (rows, pages, requests, duplicates_dropped).
    :param window: for messages: the window on created_at; None for the whole history.
    :param status: for messages: only this status.
    :param direction: for messages: only this direction.
    :param per_page: rows per API page (at most 100).
    :param batch_size: rows per yielded table.
    :param on_page: called after every page (the writers use it as a heartbeat).
    """
    import pyarrow as pa

    from airflow_provider_smsnexus.hooks.smsnexus import IdSet

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    requests_before = hook.stats["requests"]
    counters = _Counters()
    seen = IdSet()
    raw: list[Mapping[str, Any]] = []
    ready: list[pa.Table] = []
    ready_rows = 0

    def convert() -> None:
        nonlocal ready_rows
        table = rows_to_table(resource, raw)
        raw.clear()
        if resource == "messages" and window is not None:
            kept = _window_filter(table, window)
            counters.own_outside += table.num_rows - kept.num_rows
            table = kept
        if table.num_rows:
            ready.append(table)
            ready_rows += table.num_rows

    def take_batch() -> pa.Table:
        nonlocal ready_rows
        batch = pa.concat_tables(ready).combine_chunks()
        ready.clear()
        ready_rows = 0
        stats.rows += batch.num_rows
        return batch

    def update_counters() -> None:
        walker = counters.walker
        stats.requests = int(hook.stats["requests"] - requests_before)
        stats.pages = walker.pages if walker is not None else counters.pages
        walker_duplicates = walker.duplicates if walker is not None else 0
        stats.duplicates_dropped = walker_duplicates + counters.own_duplicates
        walker_outside = walker.outside_window if walker is not None else 0
        stats.outside_window = walker_outside + counters.own_outside

    try:
        for page in _resource_pages(hook, resource, window, status, direction, per_page, counters):
            if not isinstance(page, list):
                raise SMSNexusResponseError(f"{resource}: the API returned a page that is not a list")
            for row in page:
                if not isinstance(row, Mapping):
                    raise SMSNexusResponseError(
                        f"{resource}: the API returned a row that is not an object: {_short(row)}"
                    )
                row_id = as_id(row.get("id"), resource)
                if not seen.add(row_id):
                    counters.own_duplicates += 1
                    continue
                raw.append(row if row.get("id") is row_id else {**row, "id": row_id})
            if len(raw) >= min(CONVERT_EVERY_ROWS, batch_size):
                convert()
            if ready_rows >= batch_size:
                update_counters()
                yield take_batch()
            if on_page is not None:
                on_page()
        if raw:
            convert()
        update_counters()
        if ready:
            yield take_batch()
    finally:
        update_counters()


# --------------------------------------------------------------------------------------------------
# The operator base class
# --------------------------------------------------------------------------------------------------


class ExportWriter(Protocol):
    """What a destination does with the batches of one run."""

    def write(self, table: pa.Table) -> None:
        """Take one batch (the run's schema; ids unique within the run)."""

    def heartbeat(self) -> None:
        """Called after every API page: show that the run is alive."""

    def commit(self) -> None:
        """Make the whole run visible at once (or per partition, see the writer)."""

    def abort(self) -> None:
        """Drop everything this run staged; the destination stays as it was."""


class SMSNexusExportBaseOperator(BaseOperator):
    """
    The steps every SMS Nexus export shares; subclasses name the destination.

    :param resource: ``messages`` (default), ``conversations`` or ``phone_numbers``. Conversations and phone
        numbers are exported whole; messages for a window on created_at.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param window_start: (templated) the window's start on created_at; default: the run's
        ``data_interval_start``. Without either, the whole history is exported. (Not ``start_date``: that name
        is BaseOperator's own.)
    :param window_end: (templated) the window's end (excluded); default: the run's ``data_interval_end``, else
        now. Never later than the moment the task starts.
    :param lookback: re-export this much before ``window_start`` too, so that later status changes of recent
        messages reach the destination (e.g. ``timedelta(days=2)``).
    :param status: (templated) messages only: export only this status.
    :param direction: (templated) messages only: export only ``outbound`` or ``inbound``.
    :param per_page: rows per API page (at most 100, the API's maximum and the default).
    :param batch_size: rows per batch written to the destination; bounds the memory used.
    """

    template_fields: Sequence[str] = ("window_start", "window_end", "status", "direction")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        resource: str = "messages",
        smsnexus_conn_id: str = "smsnexus_default",
        window_start: datetime | date | str | None = None,
        window_end: datetime | date | str | None = None,
        lookback: timedelta | None = None,
        status: str | None = None,
        direction: str | None = None,
        per_page: int = 100,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource = check_resource(resource)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.window_start = window_start
        self.window_end = window_end
        self.lookback = lookback
        self.status = status
        self.direction = direction
        self.per_page = per_page
        self.batch_size = batch_size
        if resource != "messages" and (status or direction or window_start or window_end or lookback):
            raise ValueError(
                f"{resource} are exported whole: window_start, window_end, lookback, status and direction "
                "apply to resource='messages' only"
            )
        for name, value, allowed in (
            ("status", status, MESSAGE_STATUSES),
            ("direction", direction, MESSAGE_DIRECTIONS),
        ):
            if value and "{{" not in value and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if lookback is not None and not isinstance(lookback, timedelta):
            raise TypeError(f"lookback must be a datetime.timedelta, not {type(lookback).__name__}")
        if not 1 <= per_page <= 100:
            raise ValueError(f"per_page must be between 1 and 100, not {per_page}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._stats: ExportStats | None = None

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook of this task."""
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    # -- steps the destinations provide -------------------------------------------------------------

    def _whole_days(self) -> bool:
        """Whether the window is widened to whole UTC days (partitioned destinations)."""
        return False

    def _open_writer(self, window: ExportWindow | None) -> ExportWriter:
        raise NotImplementedError

    def _destination(self) -> str:
        raise NotImplementedError

    def _lineage_output(self) -> tuple[str, str]:
        """The OpenLineage (namespace, name) of the destination."""
        raise NotImplementedError

    # -- the shared run -----------------------------------------------------------------------------

    def export_window(self, context: Context, now: datetime) -> ExportWindow | None:
        """The run's window (messages) or None (resources exported whole), fixed at ``now``."""
        if self.resource != "messages":
            return None
        start = self.window_start if self.window_start is not None else context.get("data_interval_start")
        end = self.window_end if self.window_end is not None else context.get("data_interval_end")
        return resolve_window(start, end, now=now, lookback=self.lookback, whole_days=self._whole_days())

    def execute(self, context: Context) -> dict[str, Any]:
        """Fix the window, stream the pages into the destination's writer, commit, return the figures."""
        # The API's timestamps have whole seconds: rows created in the current second are left to a later
        # run, so that every row of the window exists before the first page is read.
        now = datetime.now(timezone.utc).replace(microsecond=0)
        window = self.export_window(context, now)
        stats = ExportStats(
            resource=self.resource,
            window_start=window.start if window else None,
            window_end=window.end if window else now,
            destination=self._destination(),
        )
        self._stats = stats
        self.log.info(
            "Exporting %s [%s, %s) to %s",
            self.resource,
            _iso(stats.window_start) or "beginning",
            _iso(stats.window_end),
            stats.destination,
        )
        writer = self._open_writer(window)
        try:
            for batch in iter_export_batches(
                self.hook,
                self.resource,
                stats,
                window=window,
                status=self.status or None,
                direction=self.direction or None,
                per_page=self.per_page,
                batch_size=self.batch_size,
                on_page=writer.heartbeat,
            ):
                writer.write(batch)
                self.log.info(
                    "%d rows so far (%d pages, %d requests)", stats.rows, stats.pages, stats.requests
                )
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        self.log.info(
            "Exported %d %s rows in %d pages (%d requests, %d duplicates dropped, %d outside the window)",
            stats.rows,
            self.resource,
            stats.pages,
            stats.requests,
            stats.duplicates_dropped,
            stats.outside_window,
        )
        return stats.to_xcom()

    # -- lineage ------------------------------------------------------------------------------------

    def lineage_datasets(self) -> dict[str, Any]:
        """
        The lineage of this task as plain values: the API path read and the destination written.

        :return: ``{"input": (namespace, name), "output": (namespace, name), "schema": [(column, type)],
            "rows": int | None}``.
        """
        from urllib.parse import urlsplit

        parts = urlsplit(self.hook.config.base_url)
        return {
            "input": (f"{parts.scheme}://{parts.netloc}", RESOURCE_PATHS[self.resource]),
            "output": self._lineage_output(),
            "schema": [(f.name, str(f.type)) for f in arrow_schema(self.resource)],
            "rows": self._stats.rows if self._stats else None,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        OpenLineage: the API endpoint as input, the file or table (with its schema) as output.

        Returns None when the OpenLineage provider is not installed (nothing would ask for it then).
        """
        try:
            from airflow.providers.common.compat.openlineage.facet import (
                Dataset,
                SchemaDatasetFacet,
                SchemaDatasetFacetFields,
            )
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        lineage = self.lineage_datasets()
        schema = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=name, type=kind) for name, kind in lineage["schema"]]
        )
        return OperatorLineage(
            inputs=[Dataset(namespace=lineage["input"][0], name=lineage["input"][1])],
            outputs=[
                Dataset(namespace=lineage["output"][0], name=lineage["output"][1], facets={"schema": schema})
            ],
        )
