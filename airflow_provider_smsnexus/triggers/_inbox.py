"""Reading the inbound messages that came after a position: which messages match, and one full walk of
the inbound list (async for triggers, sync for poke mode) that never relies on the list's order.

What the walk assumes about the server, beyond the API reference (docs/guides/two-way.md lists it too):

- message ids are integers that grow: a message created later has a greater id;
- a message is listed within ``lookback_seconds`` of its creation. Ids need not become visible in
  increasing order (the emulator's ``late_visibility_ms`` breaks that): the inbound trigger keeps the
  set of ids it handed on in the window, and the reply sensor reads the whole window on every look;
- a message with a greater id was not created more than ``lookback_seconds`` before one with a smaller
  id. Only the date window the walk asks for rests on this; a server that ignores the date parameters
  costs more pages but loses nothing (the window is also applied here, by :class:`PageWalker`).

It does not assume any sort order: every page of the window is read, whatever order the server lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.hooks._pagination import MAX_PER_PAGE, PageWalker
from airflow_provider_smsnexus.hooks._times import as_utc, created_at_of, iso_utc
from airflow_provider_smsnexus.utils.phone import phone_argument

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook

MESSAGES_PATH = "/api/messages"
#: How far before the newest handed-on message the walk's date window opens (see the module docstring).
DEFAULT_LOOKBACK_SECONDS = 3600.0


def message_id(row: dict[str, Any]) -> int:
    """The integer id of a listed message; a server that lists another kind of id breaks the position."""
    value = row.get("id")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SMSNexusResponseError(
            f"{MESSAGES_PATH} lists a message whose id is not an integer ({value!r}): the position of "
            "replies is a message id and needs integer ids"
        )
    return value


def compile_pattern(pattern: str | None, field: str = "pattern") -> re.Pattern[str] | None:
    """Compile a reply pattern (case-insensitive, searched anywhere unless anchored), or raise naming it."""
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise SMSNexusError(f"{field}={pattern!r} is not a valid regular expression: {exc}") from None


def normalize_numbers(numbers: str | Iterable[str] | None, field: str) -> list[str] | None:
    """
    E.164 forms of the given numbers (one string or several), or None for "any number".

    A number must carry its country (``+``): there is no ``default_region`` here, and a national number
    such as ``2015550142`` could be another person's number abroad.

    :raises SMSNexusInvalidNumberError: naming ``field`` and the number, before anything is waited on.
    """
    if numbers is None:
        return None
    if isinstance(numbers, str):
        numbers = [numbers]
    return sorted({phone_argument(number, field, suggest_region=False) for number in numbers})


@dataclass(frozen=True)
class ReplyFilter:
    """
    Which inbound messages count: from given numbers, to one of the account's numbers, text matching.

    :param from_numbers: the contacts whose messages count (E.164); None for any contact.
    :param to_number: the account's number they must be sent to; None for any.
    :param pattern: a regular expression the text must contain (``re.search``, case-insensitive);
        anchor it (``^(YES|NO)$``) to match the whole text. Surrounding whitespace is ignored.
    """

    from_numbers: Sequence[str] | None = None
    to_number: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_numbers", normalize_numbers(self.from_numbers, "from_numbers"))
        to = normalize_numbers(self.to_number, "to_number")
        object.__setattr__(self, "to_number", to[0] if to else None)
        object.__setattr__(self, "_regex", compile_pattern(self.pattern))

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether an inbound message passes every condition."""
        if row.get("direction") not in (None, "inbound"):
            return False  # a server that ignores direction=inbound must not hand on our own texts
        if self.from_numbers is not None and row.get("from") not in self.from_numbers:
            return False
        if self.to_number is not None and row.get("to") != self.to_number:
            return False
        regex: re.Pattern[str] | None = self.__dict__["_regex"]
        return regex is None or bool(regex.search(str(row.get("body") or "").strip()))

    def as_kwargs(self) -> dict[str, Any]:
        """The JSON-safe values that rebuild this filter."""
        return {"from_numbers": self.from_numbers, "to_number": self.to_number, "pattern": self.pattern}


def window_start(
    newest_created_at: str | None, since: datetime | None, lookback_seconds: float
) -> datetime | None:
    """The start of the date window a walk asks for: ``lookback_seconds`` before the newest message
    handed on, else ``since``; never before ``since``, which is a floor for every message."""
    newest = as_utc(newest_created_at, "newest_created_at") if newest_created_at else None
    if newest is None:
        return since
    start = newest - timedelta(seconds=lookback_seconds)
    return max(start, since) if since is not None else start


def _fresh_rows(
    walker: PageWalker, body: dict[str, Any], after_id: int, since: datetime | None
) -> list[dict[str, Any]]:
    fresh = []
    for row in walker.take(body):
        if message_id(row) <= after_id:
            continue
        created = created_at_of(row)
        if since is not None and (created is None or created < since):
            continue
        fresh.append(row)
    return fresh


def _query(start: datetime | None) -> dict[str, Any]:
    return {"direction": "inbound", "per_page": MAX_PER_PAGE, "start_date": iso_utc(start) if start else None}


async def aread_inbound_after(
    hook: SMSNexusAsyncHook, after_id: int, *, since: datetime | None, start: datetime | None
) -> list[dict[str, Any]]:
    """
    Every inbound message with an id above ``after_id`` (and created at or after ``since``), by id.

    Reads every page of the window (``start`` on), each id once, whatever the server's order.
    """
    walker = PageWalker(MESSAGES_PATH, start, None)
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        body = await hook.get_messages(page=page, **_query(start))
        found.extend(_fresh_rows(walker, body, after_id, since))
        if walker.is_done(body, page):
            return sorted(found, key=message_id)
        page += 1


def read_inbound_after(
    hook: SMSNexusHook, after_id: int, *, since: datetime | None, start: datetime | None
) -> list[dict[str, Any]]:
    """The synchronous twin of :func:`aread_inbound_after`, for poke mode."""
    walker = PageWalker(MESSAGES_PATH, start, None)
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        body = hook.get_messages(page=page, **_query(start))
        found.extend(_fresh_rows(walker, body, after_id, since))
        if walker.is_done(body, page):
            return sorted(found, key=message_id)
        page += 1
