"""Reading the inbound messages that came after a position: which messages match, where each read of the
inbound list starts on the server's clock (:class:`InboxWindow`), and one walk of that window (async for
triggers, sync for poke mode) that never relies on the list's order.

What the reads assume about the server, beyond the API reference (docs/guides/two-way.md lists it too, with
the emulator switch that breaks each):

- message ids are integers that grow: a message created later has a greater id;
- a message is listed within the connection's ``listing_delay`` of its ``created_at``;
- ``created_at`` is written by the clock that the answers' ``Date`` header reads (``hook.server_clock``).

Not assumed: any sort order (every page of the window is read unless its rows prove newest-first order, as
:class:`~airflow_provider_smsnexus.hooks.pagination.PageWalker` does for exports), that the date parameters are honoured (the window is also applied
here), that ids become visible in increasing order, or that the server's clock only goes forward. A read
starts at the *listed horizon* of the read before it (the server's present then, less the clock's
uncertainty and ``listing_delay``: :func:`~airflow_provider_smsnexus.transfers.horizon.listed_horizon`), taken
again on the clock as measured now: a step back of the server's clock between two reads moves the start back
by the step, and a read during which the samples show the clock went back is made again from the lower start.
Steps back and forth between two reads that no answer shows are not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.transfers.horizon import listed_horizon
from airflow_provider_smsnexus.utils.phone import phone_argument
from airflow_provider_smsnexus.utils.times import as_utc, created_at_of, iso_utc, utcnow

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Generator, Iterable, Sequence

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook

    Horizon = Callable[[datetime], datetime]

MESSAGES_PATH = "/api/messages"
#: A margin for clocks that may differ (the delivery trigger opens its window this long before the oldest send).
DEFAULT_LOOKBACK_SECONDS = 3600.0
#: How far back from the listed horizon the reads placing a bare ``after_id`` look, one span after the other,
#: until the ids listed show the span reaches back to ``after_id``; after the last, the whole list is read.
PLACING_SPANS = (timedelta(hours=1), timedelta(hours=8), timedelta(days=3), timedelta(days=21))


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

    def from_awaited(self, row: dict[str, Any]) -> bool:
        """Whether an inbound message comes from an awaited contact to the awaited number (any text)."""
        if row.get("direction") not in (None, "inbound"):
            return False  # a server that ignores direction=inbound must not hand on our own texts
        if self.from_numbers is not None and row.get("from") not in self.from_numbers:
            return False
        return self.to_number is None or row.get("to") == self.to_number

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether an inbound message passes every condition."""
        regex: re.Pattern[str] | None = self.__dict__["_regex"]
        text = str(row.get("body") or "").strip()
        return self.from_awaited(row) and (regex is None or bool(regex.search(text)))

    def as_kwargs(self) -> dict[str, Any]:
        """The JSON-safe values that rebuild this filter."""
        return {"from_numbers": self.from_numbers, "to_number": self.to_number, "pattern": self.pattern}


@dataclass(frozen=True)
class Edge:
    """
    Where the next read of the inbound list starts: every message created before ``server`` (on the server's
    clock) that a read asks for has been read, as far as the server's clock went forward since.

    :param server: the moment on the server's clock: the listed horizon of the read that ended there, or a
        moment the server wrote (a question's ``created_at``).
    :param local: this machine's epoch seconds at which that read started; None for a moment known only on
        the server's clock. Taken again on the clock as measured now, it moves the edge back by any step back
        the server's clock took since.
    """

    server: datetime
    local: float | None = None

    def start(self, horizon: Horizon) -> datetime:
        """The start of the next read: ``server``, or earlier when the server's clock went back since."""
        if self.local is None:
            return self.server
        return min(self.server, horizon(datetime.fromtimestamp(self.local, tz=timezone.utc)))

    def lowered(self, moment: datetime | None) -> Edge:
        """This edge, moved back to ``moment`` when that is earlier."""
        return self if moment is None or moment >= self.server else Edge(moment, self.local)

    def as_json(self) -> dict[str, Any]:
        """The JSON-safe form (:meth:`from_json` reads it back)."""
        return {"server": iso_utc(self.server), "local": self.local}

    @classmethod
    def from_json(cls, value: Any) -> Edge | None:
        """An edge from :meth:`as_json`'s form; None for None."""
        if not value:
            return None
        local = value.get("local")
        return cls(as_utc(value["server"], "edge"), None if local is None else float(local))


@dataclass
class InboxRead:
    """What one walk of a window found.

    :param rows: the messages with an id above ``after_id``, created at or after ``since``, in the window.
    :param reaches_back: a message with an id at or below ``after_id`` was listed in the window: since ids
        grow, every message after ``after_id`` was created after it, so inside the window too.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    reaches_back: bool = False


class InboxWindow:
    """
    Where one waiter's reads of the inbound list start, and how the start moves on after each read.

    The first read starts at ``edge`` (a question's ``created_at``, or a stored position), else at ``since``,
    else, for a bare ``after_id``, at the first of :data:`PLACING_SPANS` back from the listed horizon that lists
    a message at or below ``after_id``. After each read the edge is that read's listed horizon (see the module
    docstring), so a waiter reads each stretch of the list about once, not the whole history on every look.

    :param after_id: only messages with a greater id (0: any).
    :param since: only messages created at or after this moment, on the server's clock; a floor of every read.
    :param edge: where the first read starts, when known.
    """

    def __init__(self, after_id: int, since: datetime | None, edge: Edge | None = None) -> None:
        self.after_id = after_id
        self.since = since
        self.edge = edge

    @property
    def needs_clock(self) -> bool:
        """Whether the next read's start depends on the server's clock (a measured clock is needed first)."""
        if self.edge is not None:
            return self.edge.local is not None
        return self.since is None and self.after_id > 0

    def _start(self, horizon: Horizon) -> datetime | None:
        start = self.edge.start(horizon) if self.edge is not None else None
        if self.since is not None:
            start = self.since if start is None else max(start, self.since)
        return start

    def reads(
        self, horizon: Horizon, log: logging.Logger
    ) -> Generator[datetime | None, InboxRead, list[dict[str, Any]]]:
        """
        The walks of one look, as a generator: it yields the start of each walk (None: the whole list), is
        sent what that walk found, and returns the new messages by id; the edge has moved on by then.

        :param horizon: the listed horizon (server clock) of a local moment, on the clock as measured now.
        :param log: where a step back of the server's clock is reported.
        """
        local = utcnow()
        if self.edge is None and self.since is None and self.after_id > 0:
            found = yield from self._place_after_id(horizon(local))
        else:
            start = self._start(horizon)
            found = yield start
            while start is not None:
                lower = self._start(horizon)  # on the clock as this walk's answers measured it
                if lower is None or lower >= start:
                    break
                log.warning(
                    "The server's clock went back while the inbound list was read (its window started at %s, "
                    "now %s on the clock as measured): reading the list again from there",
                    iso_utc(start),
                    iso_utc(lower),
                )
                start = lower
                found = _union(found, (yield start))
        self.edge = Edge(horizon(local), local.timestamp())
        return sorted(found.rows, key=message_id)

    def _place_after_id(self, present: datetime) -> Generator[datetime | None, InboxRead, InboxRead]:
        for span in PLACING_SPANS:
            found = yield present - span
            if found.reaches_back:
                return found
        return (yield None)


def _union(first: InboxRead, second: InboxRead) -> InboxRead:
    rows = {message_id(row): row for row in [*first.rows, *second.rows]}
    return InboxRead(list(rows.values()), first.reaches_back or second.reaches_back)


def _take(rows: list[dict[str, Any]], window: InboxWindow, found: InboxRead) -> None:
    for row in rows:
        if message_id(row) <= window.after_id:
            found.reaches_back = True
            continue
        created = created_at_of(row)
        if window.since is not None and (created is None or created < window.since):
            continue
        found.rows.append(row)


async def _awalk(hook: SMSNexusAsyncHook, window: InboxWindow, start: datetime | None) -> InboxRead:
    found = InboxRead()
    async for rows in hook.iter_message_pages(direction="inbound", start_date=start):
        _take(rows, window, found)
    return found


def _walk(hook: SMSNexusHook, window: InboxWindow, start: datetime | None) -> InboxRead:
    found = InboxRead()
    for rows in hook.iter_message_pages(direction="inbound", start_date=start):
        _take(rows, window, found)
    return found


async def ahorizon(hook: SMSNexusAsyncHook, *, measure: bool = True) -> Horizon:
    """
    The listed horizon (server clock) of a local moment, on the async hook's clock as measured when called.

    :param hook: the async hook (its ``server_clock`` and connection's ``listing_delay``).
    :param measure: when the hook has not heard from the server yet, measure its clock first (one
        ``GET /api/balance``) rather than assume it.
    """
    from types import SimpleNamespace

    config = await hook.get_config()
    if measure and not hook.server_clock.answers:
        await hook.get_balance()  # measure the server's clock rather than assume it
    view = SimpleNamespace(server_clock=hook.server_clock, config=config)  # what listed_horizon reads

    def horizon(local: datetime) -> datetime:
        return listed_horizon(view, local)  # type: ignore[arg-type]

    return horizon


async def aread_inbound(
    hook: SMSNexusAsyncHook, window: InboxWindow, log: logging.Logger
) -> list[dict[str, Any]]:
    """
    One look at the inbound list: every message after ``window``'s position (see :class:`InboxWindow`), by id.

    Each walk reads every page of its window, each id once, whatever the server's order; the window moves on.

    :param hook: the async hook (its ``server_clock`` and connection's ``listing_delay`` place the windows).
    :param window: where the look starts; moved on when it returns.
    :param log: where a step back of the server's clock is reported.
    """
    horizon = await ahorizon(hook, measure=window.needs_clock)
    steps = window.reads(horizon, log)
    start = next(steps)
    while True:
        found = await _awalk(hook, window, start)
        try:
            start = steps.send(found)
        except StopIteration as done:
            return done.value


def read_inbound(hook: SMSNexusHook, window: InboxWindow, log: logging.Logger) -> list[dict[str, Any]]:
    """The synchronous twin of :func:`aread_inbound`, for poke mode."""
    steps = window.reads(lambda local: listed_horizon(hook, local), log)
    start = next(steps)
    while True:
        found = _walk(hook, window, start)
        try:
            start = steps.send(found)
        except StopIteration as done:
            return done.value
