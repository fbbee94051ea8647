"""
The stream of one export: API pages through the hook's walk to Arrow batches, and the run's figures.

The hook's walk is the one place where rows are deduplicated by id, checked against the window and the
client-side filters (the export hands it the schema's id reader, so ``5`` and ``"5"`` are one id); this
module only turns its rows into batches of bounded size and keeps the figures that become the XCom value,
read from the walk's statistics.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError
from airflow_provider_smsnexus.hooks.message_columns import MessageColumns
from airflow_provider_smsnexus.hooks.pagination import PageWalk, PageWalker
from airflow_provider_smsnexus.transfers.schema import (
    COLUMNS,
    RESOURCE_PATHS,
    columns_to_table,
    id_reader,
    rows_to_table,
)
from airflow_provider_smsnexus.utils.times import iso_utc

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime

    import pyarrow as pa

    from airflow_provider_smsnexus.hooks.pagination import WalkStats
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
    from airflow_provider_smsnexus.transfers.window import ExportWindow

#: Rows per batch handed to a destination: one Parquet row group at most, one spooled SQL batch. Small
#: enough that a run's working set is a few MB above the libraries (measured: bench/README.md).
DEFAULT_BATCH_SIZE = 10_000

#: Page rows are turned into Arrow columns this many at a time, so that at most this many dicts are held.
CONVERT_EVERY_ROWS = 1_000


@contextmanager
def system_memory_pool() -> Iterator[None]:
    """
    Allocate Arrow buffers with the C library's allocator while the block runs, then restore the default.

    Arrow's default pool (mimalloc) keeps the pages of freed batches: over a long export its high-water
    mark rose 40-50 MB above the system allocator's for the same rows (bench/README.md). Buffers remember
    their pool, so restoring the default afterwards is safe.
    """
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else iso_utc(value)


@dataclass
class ExportStats:
    """
    The figures of one export run; :meth:`to_xcom` is the operators' return value.

    :param resource: the exported resource.
    :param window_start: the start of the exported window (None: whole history / whole resource).
    :param window_end: the end of the window; for conversations and phone numbers the snapshot time.
    :param destination: the file URL or table address written to.
    :param window_rule: how the window was chosen (see :mod:`~airflow_provider_smsnexus.transfers.window`).
    :param rows: rows written.
    :param pages: pages read from the API (re-read pages included).
    :param requests: HTTP requests made (retries and refused requests included).
    :param duplicates_dropped: rows dropped because their id had come before in this run (page drift).
    :param outside_window: rows the API returned outside the window (dropped).
    :param filtered_out: rows of another status or direction than asked (dropped: filtered here).
    :param reread_rows: rows that only a re-read of the list found (they had moved past the walk).
    :param passes: walks through the list (more than one when rows moved past the walk).
    """

    resource: str
    window_start: datetime | None
    window_end: datetime | None
    destination: str
    window_rule: str | None = None
    rows: int = 0
    pages: int = 0
    requests: int = 0
    duplicates_dropped: int = 0
    outside_window: int = 0
    filtered_out: int = 0
    reread_rows: int = 0
    passes: int = 0

    def to_xcom(self) -> dict[str, Any]:
        """The XCom value: JSON-ready, timestamps as ISO 8601 strings."""
        return {
            "resource": self.resource,
            "rows": self.rows,
            "pages": self.pages,
            "requests": self.requests,
            "duplicates_dropped": self.duplicates_dropped,
            "outside_window": self.outside_window,
            "filtered_out": self.filtered_out,
            "reread_rows": self.reread_rows,
            "passes": self.passes,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "window_rule": self.window_rule,
            "destination": self.destination,
        }


def _walk(
    hook: SMSNexusHook,
    resource: str,
    window: ExportWindow | None,
    status: str | None,
    direction: str | None,
    per_page: int,
) -> PageWalk:
    """
    The walk of ``resource``, page by page: reading one page ahead on a thread cost more CPU in hand-offs than it
    overlapped (measured: bench/README.md), and against a distant server it saves only the client's time per page.
    """
    read_id = id_reader(resource)
    if resource == "messages":
        return hook.iter_message_pages(
            status=status,
            direction=direction,
            start_date=window.start if window else None,
            end_date=window.end if window else None,
            per_page=per_page,
            read_id=read_id,
            columns=True,
        )
    if resource == "conversations":
        return hook.iter_conversation_pages(per_page=per_page, read_id=read_id)
    # One unpaginated list, still deduplicated and checked by a walker.
    walker = PageWalker(RESOURCE_PATHS[resource], read_id=read_id)
    return PageWalk(walker, _one_page(walker, hook.get_phone_numbers))


def _one_page(walker: PageWalker, read: Callable[[], list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    yield walker.take({"data": read()})


def _count_walk(stats: ExportStats, walk: WalkStats, requests: float) -> None:
    """Copy a walk's figures, and the requests the hook made for it, into the run's figures."""
    stats.requests = int(requests)
    stats.pages = walk.pages
    stats.passes = walk.passes
    stats.duplicates_dropped = walk.duplicates
    stats.outside_window = walk.outside_window
    stats.filtered_out = walk.filtered_out
    stats.reread_rows = walk.reread_rows


class _Batches:
    """
    Rows of pages turned into Arrow tables :data:`CONVERT_EVERY_ROWS` at a time, handed out in batches.

    A page comes as dicts or, decoded by the walk, as columns; each kind is held apart and converted in
    arrival order (the walk has deduplicated both).
    """

    def __init__(self, resource: str, batch_size: int) -> None:
        self.resource = resource
        self.batch_size = batch_size
        self.raw: list[Mapping[str, Any]] = []
        self.columns: list[MessageColumns] = []
        self.held = 0
        self.ready: list[pa.Table] = []
        self.ready_rows = 0

    def add(self, page: list[dict[str, Any]] | MessageColumns) -> None:
        """Take one page's rows, converting them once enough are held."""
        if isinstance(page, MessageColumns):
            if self.raw:
                self.convert()
            self.columns.append(page)
        elif isinstance(page, list):
            if self.columns:
                self.convert()
            self.raw.extend(page)
        else:
            raise SMSNexusResponseError(f"{self.resource}: the API returned a page that is not a list")
        self.held += len(page)
        if self.held >= min(CONVERT_EVERY_ROWS, self.batch_size):
            self.convert()

    def convert(self) -> None:
        """Turn the rows held into an Arrow table waiting to be handed out."""
        if self.columns:
            held = MessageColumns.concat(self.columns)
            sources = [column.source for column in COLUMNS[self.resource]]
            table = columns_to_table(self.resource, [held.field(source) for source in sources])
        else:
            table = rows_to_table(self.resource, self.raw)
        self.raw.clear()
        self.columns.clear()
        self.held = 0
        if table.num_rows:
            self.ready.append(table)
            self.ready_rows += table.num_rows

    def take(self) -> pa.Table:
        """The tables waiting, as one batch."""
        import pyarrow as pa

        batch = pa.concat_tables(self.ready).combine_chunks()
        self.ready.clear()
        self.ready_rows = 0
        return batch


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
    :param resource: one of :data:`~airflow_provider_smsnexus.transfers.schema.RESOURCES`.
    :param stats: the run's figures, updated in place.
    :param window: for messages: the window on created_at; None for the whole history.
    :param status: for messages: only this status (checked on the client: rows leave a status while paged).
    :param direction: for messages: only this direction.
    :param per_page: rows per API page (at most 100).
    :param batch_size: rows per yielded table.
    :param on_page: called after every page (the writers use it as a heartbeat).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    requests_before = hook.stats["requests"]
    walk = _walk(hook, resource, window, status, direction, per_page)
    batches = _Batches(resource, batch_size)
    try:
        for page in walk:
            batches.add(page)
            if batches.ready_rows >= batch_size:
                _count_walk(stats, walk.stats, hook.stats["requests"] - requests_before)
                batch = batches.take()
                stats.rows += batch.num_rows
                yield batch
            if on_page is not None:
                on_page()
        if batches.held:
            batches.convert()
        _count_walk(stats, walk.stats, hook.stats["requests"] - requests_before)
        if batches.ready:
            batch = batches.take()
            stats.rows += batch.num_rows
            yield batch
    finally:
        _count_walk(stats, walk.stats, hook.stats["requests"] - requests_before)
