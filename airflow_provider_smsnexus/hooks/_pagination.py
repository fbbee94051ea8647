"""Walking the paginated lists of SMS Nexus: query parameters, page checks, id dedup and when to stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks._answers import extract_data
from airflow_provider_smsnexus.hooks._times import created_at_of, iso_utc

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

MAX_PER_PAGE = 100
MAX_PAGES_WITHOUT_NEW_IDS = 5


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


class IdSet:
    """
    A set of integer ids that stays small for the dense ids of a message history.

    Ids within a growing window are kept as bits (125 kB per million ids); any others fall back to a
    plain set, so correctness never depends on the ids being dense.
    """

    _MAX_SPAN = 64_000_000  # 8 MB of bits at most

    def __init__(self) -> None:
        self._base: int | None = None
        self._bits = bytearray()
        self._other: set[Any] = set()
        self.size = 0

    def add(self, value: Any) -> bool:
        """Add ``value``; return False when it was already there."""
        if isinstance(value, int) and not isinstance(value, bool):
            if self._base is None:
                self._base = max(0, value - self._MAX_SPAN // 2)
            offset = value - self._base
            if 0 <= offset < self._MAX_SPAN:
                byte, bit = divmod(offset, 8)
                if byte >= len(self._bits):
                    self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
                if self._bits[byte] >> bit & 1:
                    return False
                self._bits[byte] |= 1 << bit
                self.size += 1
                return True
        if value in self._other:
            return False
        self._other.add(value)
        self.size += 1
        return True


class PageWalker:
    """
    The state of one walk through a paginated list: dedup by id, the client-side date window, and the
    decision when to stop.

    Page-number pagination over a live account drifts: a new message pushes older ones onto the next page,
    so a row can come twice (dropped here by id). Rows are never skipped by such drift, since rows are
    only added. When the server is seen to list newest first, the walk stops at the first page that
    reaches past the window's start, even if the server ignored the date parameters.

    :param path: the list's path, for error messages.
    :param start: the window's start (inclusive), or None.
    :param end: the window's end (exclusive), or None.
    """

    def __init__(self, path: str, start: datetime | None = None, end: datetime | None = None):
        self.path = path
        self.start = start
        self.end = end
        self.seen = IdSet()
        self.pages = 0
        self.duplicates = 0
        self.outside_window = 0
        self._newest_first = True
        self._previous: datetime | None = None
        self._reached_start = False
        self._pages_without_new_ids = 0

    def take(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the new rows of one page's answer that lie inside the window."""
        rows = extract_data(body, self.path, list)
        self.pages += 1
        seen_before = self.seen.size
        fresh: list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, dict) or "id" not in row:
                raise SMSNexusResponseError(
                    f"{self.path} page {self.pages} holds a row without an id: {row!r}"
                )
            if isinstance(row["id"], bool) or not isinstance(row["id"], int | str):
                raise SMSNexusResponseError(
                    f"{self.path} page {self.pages} holds a row whose id is not a number: {row['id']!r}"
                )
            if not self.seen.add(row["id"]):
                self.duplicates += 1
                continue
            created = created_at_of(row) if (self.start or self.end) else None
            self._track_order(created)
            if (self.start or self.end) and created is None:
                raise SMSNexusResponseError(
                    f"{self.path}: row id {row['id']} has no readable created_at to place it in the window"
                )
            if created is not None and (
                (self.start and created < self.start) or (self.end and created >= self.end)
            ):
                self.outside_window += 1
                if self.start and created < self.start:
                    self._reached_start = True
                continue
            fresh.append(row)
        self._check_progress(bool(rows) and self.seen.size == seen_before)
        return fresh

    def _check_progress(self, nothing_new: bool) -> None:
        # Drift repeats a few rows at a page's head; whole pages of nothing new mean the server ignores
        # the page parameter, and reading on would never end.
        self._pages_without_new_ids = self._pages_without_new_ids + 1 if nothing_new else 0
        if self._pages_without_new_ids >= MAX_PAGES_WITHOUT_NEW_IDS:
            raise SMSNexusResponseError(
                f"{self.path}: {MAX_PAGES_WITHOUT_NEW_IDS} pages in a row up to page {self.pages} held only "
                "rows already read: the server seems to ignore the page parameter"
            )

    def _track_order(self, created: datetime | None) -> None:
        if created is None:
            return
        if self._previous is not None and created > self._previous:
            self._newest_first = False
        self._previous = created

    def is_done(self, body: dict[str, Any], page: int) -> bool:
        """Whether the page just taken was the last one worth reading."""
        if not body.get("data"):
            return True
        if self._reached_start and self._newest_first:
            return True
        meta = body.get("meta")
        last_page = meta.get("last_page") if isinstance(meta, dict) else None
        if isinstance(last_page, int) and not isinstance(last_page, bool):
            return page >= last_page
        return False  # no meta: read on until an empty page
