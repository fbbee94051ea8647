"""Walking the paginated lists of SMS Nexus: query parameters, page checks, id dedup, and when a walk is over.

What a walk assumes about the server, and what it does not (the API reference promises no order, and says
nothing of rows that change while a list is paged):

* **Order is proven, never assumed.** A walk with a window start stops before ``last_page`` only when the
  rows it has read prove newest-first order: ``created_at`` never rose from one row to the next (in listing
  order, across pages) and some row was strictly older than the last row of the page before it. Anything else (oldest
  first, a page holding one timestamp, one row per page, no order) reads every page to ``last_page``.
* **Filters that rows can leave are applied here, not by the server.** A message's status changes while the
  list is paged; a status-filtered list then shrinks under the walk and pulls unread rows onto pages already
  read. Status (and direction, and the window on ``created_at``) are therefore checked on the client; only
  filters a row can never leave (direction, the window) are also sent, to save pages.
* **Messages are only ever added, never deleted, and ``created_at`` never changes.** Under those, a walk
  of the unfiltered (or direction-filtered) list skips no row: an insertion pushes rows down, so a row can
  come twice (dropped here by id), never not at all.
* **Conversations move**: one with a new message jumps to the top of its list, past the walk. A
  conversation walk re-reads from page 1 until the distinct ids read equal the last page's ``meta.total``.
  Conversations are never deleted, so every id read still exists, and equal counts prove that every
  conversation existing when that page was served was read. Without ``meta.total``, or when the count does
  not match after :data:`MAX_PASSES` passes, the walk raises :class:`SMSNexusResponseError` saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress, islice
from operator import gt
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks._answers import extract_data
from airflow_provider_smsnexus.hooks.message_columns import MessageColumns, decode_message_page
from airflow_provider_smsnexus.utils.id_set import IdSet
from airflow_provider_smsnexus.utils.times import created_at_of, iso_utc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

MAX_PER_PAGE = 100
MAX_PAGES_WITHOUT_NEW_IDS = 5
#: Passes over a list that must be proven complete by its count (conversations) before the walk gives up.
MAX_PASSES = 10


def message_query(
    config: SMSNexusConnectionConfig,
    *,
    status: str | None,
    direction: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The query parameters of ``/api/messages`` for the given filters (page parameters excluded)."""
    params: dict[str, Any] = {}
    if status:
        params["status"] = status
    if direction:
        params["direction"] = direction
    if start is not None:
        params[config.date_from_param] = iso_utc(start)
    if end is not None:
        params[config.date_to_param] = iso_utc(end)
    return params


def page_params(per_page: int, page: int) -> dict[str, int]:
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise SMSNexusError(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
    if page < 1:
        raise SMSNexusError(f"page must be 1 or more, not {page}")
    return {"page": page, "per_page": per_page}


def plain_id(value: Any) -> Hashable:
    """The default id reader: an int or a string, as the API sent it (``5`` and ``"5"`` stay distinct)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a {type(value).__name__}")
    return value


#: A reader marked so returns every int within 64 bits unchanged: the ids of a page decoded into columns
#: (which are such ints) are then not read again one by one.
plain_id.keeps_int64 = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class WalkStats:
    """What one walk through a paginated list saw: the figures an export reports."""

    #: Pages read (re-read pages included).
    pages: int
    #: Passes through the list from page 1: 0 when no page was read, more than one when rows moved past the walk.
    passes: int
    #: Rows dropped because their id had come before in the walk (page drift).
    duplicates: int
    #: Rows dropped because their ``created_at`` lies outside the window.
    outside_window: int
    #: Rows dropped because a field differs from ``where`` (status, direction).
    filtered_out: int
    #: Rows first read by a re-read pass (they had moved past the walk).
    reread_rows: int
    #: The rows read prove newest-first order (see the module's docstring).
    newest_first_proven: bool


class _RowFields:
    """The fields of a page's dict rows, read a column at a time (a row without the field: None)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def field(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]


class PageWalker:
    """
    The state of one walk through a paginated list: the one place where rows are deduplicated by id,
    checked against the window and the client-side filters, and where the walk decides to stop.

    See the module's docstring for what a walk assumes about the server.

    :param path: the list's path, for error messages.
    :param start: the window's start on ``created_at`` (inclusive), or None.
    :param end: the window's end (exclusive), or None.
    :param read_id: turns a row's ``id`` into the value it is deduplicated by (raise ValueError or
        :class:`SMSNexusError` for an id it refuses); default :func:`plain_id`. Rows are yielded unchanged.
    :param where: fields a row must equal to be yielded (``{"status": "queued"}``), checked here.
    :param prove_by_total: re-read the list from page 1 until the distinct ids read equal ``meta.total``
        (for lists whose rows move, such as conversations).
    :param decode: decodes each page's answer (a typed decoder such as
        :func:`~airflow_provider_smsnexus.hooks.message_columns.decode_message_page`, whose pages come as
        columns); default: plain JSON, pages of dicts.
    :param read_ahead: the caller reads every page of the walk and works long on each (it stops early only on
        an error): the hook then fetches page n+1 while the caller works on page n. Default False: each page is
        requested when the caller asks for it, so a caller that stops early (``any(...)``, a lookup) never
        pays for a page it did not use (see ``hooks/_read_ahead.py``).
    """

    def __init__(
        self,
        path: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        read_id: Callable[[Any], Hashable] | None = None,
        where: Mapping[str, Any] | None = None,
        prove_by_total: bool = False,
        decode: Callable[[str], Any] | None = None,
        read_ahead: bool = False,
    ):
        self.path = path
        self.start = start
        self.end = end
        self.read_id = read_id or plain_id
        self.where = {name: value for name, value in (where or {}).items() if value is not None}
        self.prove_by_total = prove_by_total
        self.decode = decode
        self.read_ahead = read_ahead
        self.seen = IdSet()
        self.pages = 0
        self.passes = 1
        self.duplicates = 0
        self.outside_window = 0
        self.filtered_out = 0
        #: Rows first read by a re-read pass (they had moved past the walk).
        self.reread_rows = 0
        self.total: int | None = None
        self._previous: datetime | None = None
        self._rose = False
        self._fell_across_pages = False
        self._reached_start = False
        self._pages_without_new_ids = 0

    @property
    def newest_first_proven(self) -> bool:
        """Whether the rows read so far prove newest-first order (see the module's docstring)."""
        return self._fell_across_pages and not self._rose

    def stats(self) -> WalkStats:
        """What the walk has seen so far."""
        return WalkStats(
            pages=self.pages,
            passes=self.passes if self.pages else 0,
            duplicates=self.duplicates,
            outside_window=self.outside_window,
            filtered_out=self.filtered_out,
            reread_rows=self.reread_rows,
            newest_first_proven=self.newest_first_proven,
        )

    def take(self, body: dict[str, Any]) -> list[dict[str, Any]] | MessageColumns:
        """
        Return the rows of one page's answer that are new, inside the window and match ``where``: a list of
        the page's dicts, or, for a page decoded into columns (:attr:`decode`), those columns' rows.
        """
        data = body.get("data")
        if isinstance(data, MessageColumns):
            self.pages += 1
            self._read_total(body)
            ids = data.values["id"]
            if not getattr(self.read_id, "keeps_int64", False):
                ids = list(map(self.read_id, ids))
            return data.take(self._keep(ids, data.field("created_at"), data))
        rows = extract_data(body, self.path, list)
        self.pages += 1
        self._read_total(body)
        kept = self._keep(self._ids_of(rows), list(map(created_at_of, rows)), _RowFields(rows))
        return rows if len(kept) == len(rows) else [rows[i] for i in kept]

    def _ids_of(self, rows: list[dict[str, Any]]) -> list[Hashable]:
        read_id = self.read_id
        try:
            return [read_id(row["id"]) for row in rows]
        except (KeyError, ValueError, TypeError):
            pass
        ids = []  # again, row by row, to name what is wrong
        for row in rows:
            if "id" not in row:
                raise SMSNexusResponseError(f"{self.path} page {self.pages} holds a row without an id")
            try:
                ids.append(read_id(row["id"]))
            except (ValueError, TypeError) as exc:
                raise SMSNexusResponseError(
                    f"{self.path} page {self.pages} holds a row whose id is not a number ({exc})"
                ) from None
        return ids

    def _keep(self, ids: list[Hashable], created: Sequence[datetime | None], fields: Any) -> list[int]:
        """
        The indices of the page's rows to yield, given their ids, their ``created_at`` and their fields
        (``fields.field(name)``); the walk's order, dedup and figures are updated. Each check is one pass
        over a column, not a step per row (bench/README.md).
        """
        seen_before = self.seen.size
        # Order, over the rows with a created_at, in listing order across pages. A fall across pages: a row
        # of this page older than the last row of the page before (drift may repeat that last row at this
        # page's head, so any row of the page counts, not only its first).
        dated = [moment for moment in created if moment is not None] if None in created else created
        if dated:
            previous = self._previous
            if previous is not None:
                self._rose = self._rose or dated[0] > previous
                self._fell_across_pages = self._fell_across_pages or min(dated) < previous
            self._rose = self._rose or any(map(gt, islice(dated, 1, None), dated))
            self._previous = dated[-1]
        kept = list(compress(range(len(ids)), self.seen.add_many(ids)))
        self.duplicates += len(ids) - len(kept)
        if self.passes > 1:
            self.reread_rows += len(kept)
        start, end = self.start, self.end
        if start is not None or end is not None:
            undated = next((i for i in kept if created[i] is None), None)
            if undated is not None:
                raise SMSNexusResponseError(
                    f"{self.path}: the row with id {ids[undated]} has no readable created_at to place it "
                    "in the window"
                )
            if start is not None:
                inside = [i for i in kept if created[i] >= start]  # type: ignore[operator]
                if len(inside) < len(kept):
                    self.outside_window += len(kept) - len(inside)
                    self._reached_start = True
                kept = inside
            if end is not None:
                inside = [i for i in kept if created[i] < end]  # type: ignore[operator]
                self.outside_window += len(kept) - len(inside)
                kept = inside
        for name, value in self.where.items():
            values = fields.field(name)
            matching = [i for i in kept if values[i] == value]
            self.filtered_out += len(kept) - len(matching)
            kept = matching
        self._check_progress(bool(ids) and self.seen.size == seen_before)
        return kept

    def _read_total(self, body: dict[str, Any]) -> None:
        meta = body.get("meta")
        total = meta.get("total") if isinstance(meta, dict) else None
        self.total = total if isinstance(total, int) and not isinstance(total, bool) else None

    def _check_progress(self, nothing_new: bool) -> None:
        # Drift repeats a few rows at a page's head; whole pages of nothing new mean the server ignores
        # the page parameter, and reading on would never end. A re-read pass repeats on purpose.
        if self.passes > 1:
            return
        self._pages_without_new_ids = self._pages_without_new_ids + 1 if nothing_new else 0
        if self._pages_without_new_ids >= MAX_PAGES_WITHOUT_NEW_IDS:
            raise SMSNexusResponseError(
                f"{self.path}: {MAX_PAGES_WITHOUT_NEW_IDS} pages in a row up to page {self.pages} held only "
                "rows already read: the server seems to ignore the page parameter"
            )

    def complete_by_total(self) -> bool:
        """
        Whether the ids read are every row of the list (``prove_by_total`` walks).

        :raises SMSNexusResponseError: the list gives no ``meta.total``, or more distinct ids were read than
            it counts (rows deleted, or a wrong total): completeness cannot be proven.
        """
        if self.total is None:
            raise SMSNexusResponseError(
                f"{self.path} answered without meta.total: rows move in this list while it is paged, and "
                "without the count the walk cannot prove it read every row"
            )
        if self.seen.size > self.total:
            raise SMSNexusResponseError(
                f"{self.path}: {self.seen.size} distinct ids read, more than the {self.total} the list "
                "counts (rows deleted while paged?): the walk cannot prove what the list holds"
            )
        return self.seen.size == self.total

    def is_done(self, body: dict[str, Any], page: int) -> bool:
        """Whether the page just taken ends the pass (see :meth:`walk_is_over` for the whole walk)."""
        if self.prove_by_total and self.complete_by_total():
            return True
        if not body.get("data"):
            return True
        if self._reached_start and self.newest_first_proven:
            return True
        meta = body.get("meta")
        last_page = meta.get("last_page") if isinstance(meta, dict) else None
        if isinstance(last_page, int) and not isinstance(last_page, bool):
            return page >= last_page
        return False  # no meta: read on until an empty page

    def walk_is_over(self) -> bool:
        """
        At the end of a pass: whether the walk is over, or another pass from page 1 must follow.

        :raises SMSNexusResponseError: a ``prove_by_total`` walk still short of the count after
            :data:`MAX_PASSES` passes.
        """
        if not self.prove_by_total or self.complete_by_total():
            return True
        if self.passes >= MAX_PASSES:
            raise SMSNexusResponseError(
                f"{self.path}: {self.seen.size} distinct ids after {self.passes} passes, but the list counts "
                f"{self.total}: rows kept moving past the walk, so it cannot prove it read every row"
            )
        self.passes += 1
        return False


def message_walker(
    status: str | None,
    direction: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    read_id: Callable[[Any], Hashable] | None = None,
    columns: bool = False,
    read_ahead: bool = False,
) -> PageWalker:
    """
    The walker of one walk of ``/api/messages``: the window, and the filters a row can leave, checked here;
    with ``columns``, pages decoded into :class:`MessageColumns` where they can be (see that module).
    """
    where = {name: value for name, value in (("status", status), ("direction", direction)) if value}
    decode = decode_message_page if columns else None
    return PageWalker(
        "/api/messages", start, end, read_id=read_id, where=where, decode=decode, read_ahead=read_ahead
    )


class PageWalk:
    """
    One walk through a paginated list, as the hooks' ``iter_*_pages`` return it: iterate it for the pages of
    new rows (``for``/``next`` on :class:`~airflow_provider_smsnexus.hooks.smsnexus.SMSNexusHook`,
    ``async for`` on :class:`~airflow_provider_smsnexus.hooks.smsnexus.SMSNexusAsyncHook`), then read what
    the walk saw in :attr:`stats`.

    :param walker: the walk's state (dedup, window, filters, when it is over).
    :param pages: the pages, as the hook fetches them.
    """

    def __init__(
        self, walker: PageWalker, pages: Iterator[list[dict[str, Any]]] | AsyncIterator[list[dict[str, Any]]]
    ) -> None:
        self._walker = walker
        self._pages: Any = pages

    @property
    def stats(self) -> WalkStats:
        """What the walk has seen so far: read it after the last page for the whole walk's figures."""
        return self._walker.stats()

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        # The pages themselves: a for loop steps the hook's generator with no frame of this module between.
        return self._pages

    def __next__(self) -> list[dict[str, Any]]:
        return next(self._pages)

    def close(self) -> None:
        """Stop the walk early: a page fetched ahead is dropped and its thread ended before this returns."""
        self._pages.close()

    def __aiter__(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._pages

    async def __anext__(self) -> list[dict[str, Any]]:
        return await anext(self._pages)

    async def aclose(self) -> None:
        """Stop an async walk early."""
        await self._pages.aclose()
