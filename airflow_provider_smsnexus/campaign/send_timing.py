"""When each campaign row may be texted: its time zones, whether its :class:`SendWindow` is open at a given
moment, when it next opens and closes, and a dry run's schedule. Pure: no I/O and no clock of its own; every
function takes the moment, and every instant returned is aware UTC. The rules (a row open only when the window is
open in all its zones, unknown zones, daylight saving time, the horizon) are written once, in
:mod:`~airflow_provider_smsnexus.campaign.send_window`.
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_smsnexus.campaign.send_window import MIDNIGHT, SendWindow, bad_setting, invalid_setting
from airflow_provider_smsnexus.utils.phone import is_missing
from airflow_provider_smsnexus.utils.times import iso_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: How far ahead :func:`next_opening` looks: a week, and a day for a daylight-saving shift.
OPENING_HORIZON = timedelta(days=8)

#: :func:`plan_row`'s statuses: send now, wait for :attr:`RowTiming.opening`, not sent by this run.
OPEN, WAIT, SKIP = "open", "wait", "skip"

_Span = tuple[datetime, datetime]


def zones_for_number(e164: str) -> tuple[str, ...]:
    """
    The IANA time zones of a number's prefix, from ``phonenumbers``; ``()`` when unknown.

    Most numbers give one zone; some area codes give two (+1 605: ``America/Denver`` and
    ``America/North_Dakota/Center``). ``phonenumbers``' ``Etc/Unknown`` (satellite phones, international
    freephone, invalid numbers) and text that is not a number give ``()``.

    :param e164: the number, E.164 (``+12125550100``).
    """
    import phonenumbers
    from phonenumbers import timezone as number_zones

    if not isinstance(e164, str):
        return ()
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = number_zones.time_zones_for_number(number)
    return tuple(zone for zone in zones if zone != number_zones.UNKNOWN_TIMEZONE)


def zones_for_row(window: SendWindow, e164: str, column_value: Any, row_label: str) -> tuple[str, ...]:
    """
    The time zones of one row: its ``zone_column`` value when the window names a column and the row has a
    value there (blank and missing values count as none), else the zones of its number.

    :param window: the campaign's window.
    :param e164: the row's number, E.164.
    :param column_value: the row's value in ``window.zone_column`` (ignored when the window names none).
    :param row_label: how errors name the row (``"row 3"``).
    :raises SMSNexusValidationError: the column's value is not an IANA time zone.
    """
    if window.zone_column is None or is_missing(column_value) or str(column_value).strip() == "":
        return zones_for_number(e164)
    name = column_value.strip() if isinstance(column_value, str) else None
    if name is None or _load_zone(name) is None:
        problem = (
            f"{window.zone_column}={column_value!r} is not an IANA time zone (such as 'America/New_York')"
        )
        raise invalid_setting(f"send_window.zone_column.{window.zone_column}", f"{row_label}: {problem}")
    return (name,)


def _load_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown key, malformed path, a folder
        return None


def _zone(name: str) -> ZoneInfo:
    zone = _load_zone(name) if isinstance(name, str) else None
    if zone is None:
        raise bad_setting("zones", name, "is not an IANA time zone (such as 'America/New_York')")
    return zone


def _utc(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise bad_setting(name, value, "is not an aware datetime: give one with a time zone (UTC)")
    return value.astimezone(timezone.utc)


def _first_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant of the local ``day`` whose wall time is ``wall`` or later, aware UTC."""
    naive = datetime.combine(day, wall)
    instant = naive.replace(tzinfo=zone).astimezone(timezone.utc)  # fold=0: the first of two readings
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # ``wall`` lies in the hour skipped in spring: find the transition between its two readings.
    low, high = sorted((int(naive.replace(tzinfo=zone, fold=1).timestamp()), int(instant.timestamp())))
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


@functools.lru_cache(maxsize=8192)
def _day_span(zone: str, day: date, start: time, end: time) -> _Span:
    # Cached: a campaign asks the same few zones about the same few days for every row.
    tz = _zone(zone)
    closes = _first_instant(day, end, tz) if end != MIDNIGHT else _first_instant(day + timedelta(1), end, tz)
    return _first_instant(day, start, tz), closes


def _zone_spans(window: SendWindow, zone: str, since: datetime, until: datetime) -> list[_Span]:
    """The window's open spans in one zone, from the local day before ``since`` to ``until``'s, sorted."""
    tz = _zone(zone)
    spans: list[_Span] = []
    day, last = since.astimezone(tz).date() - timedelta(days=1), until.astimezone(tz).date()
    while day <= last:
        if day.isoweekday() in window.days:
            opens, closes = _day_span(zone, day, window.start, window.end)
            if spans and opens <= spans[-1][1]:  # 00:00-24:00 on consecutive days is one span
                spans[-1] = (spans[-1][0], closes)
            elif opens < closes:  # empty when the window lies inside a skipped hour
                spans.append((opens, closes))
        day += timedelta(days=1)
    return spans


def _joint_spans(window: SendWindow, zones: Sequence[str], since: datetime, until: datetime) -> list[_Span]:
    """The spans in which the window is open in every zone."""
    if not zones:
        raise invalid_setting(
            "zones", "no time zone given: plan_row() decides what a row of unknown zone does"
        )
    joint: list[_Span] | None = None
    for zone in dict.fromkeys(zones):
        spans = _zone_spans(window, zone, since, until)
        joint = spans if joint is None else _intersect(joint, spans)
    return joint or []


def _intersect(first: list[_Span], second: list[_Span]) -> list[_Span]:
    joint: list[_Span] = []
    i = j = 0
    while i < len(first) and j < len(second):
        opens, closes = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if opens < closes:
            joint.append((opens, closes))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return joint


def is_open(window: SendWindow, zones: Sequence[str], at: datetime) -> bool:
    """
    Whether the window is open at ``at`` in every one of ``zones``.

    :param window: the window.
    :param zones: the row's IANA zones (at least one).
    :param at: the moment, an aware datetime.
    """
    at = _utc(at, "at")
    return any(opens <= at < closes for opens, closes in _joint_spans(window, zones, at, at))


def next_opening(window: SendWindow, zones: Sequence[str], after: datetime) -> datetime | None:
    """
    The earliest instant at or after ``after`` at which the window is open in every zone: ``after`` itself
    when it is open then.

    :param window: the window.
    :param zones: the row's IANA zones (at least one).
    :param after: the moment, an aware datetime.
    :return: aware UTC; None when the zones' windows do not overlap within :data:`OPENING_HORIZON` (a row
        that cannot be sent inside its window: :func:`plan_row` skips it).
    """
    after = _utc(after, "after")
    horizon = after + OPENING_HORIZON
    for opens, closes in _joint_spans(window, zones, after, horizon):
        if closes > after and opens <= horizon:
            return max(opens, after)
    return None


def closes_at(window: SendWindow, zones: Sequence[str], at: datetime) -> datetime:
    """
    When the window open at ``at`` closes: when the first of ``zones`` closes. For a window that is always
    open (00:00-24:00 every day) this is the end of the last day within :data:`OPENING_HORIZON`.

    :param window: the window.
    :param zones: the row's IANA zones (at least one).
    :param at: a moment at which the window is open, an aware datetime.
    :raises SMSNexusValidationError: the window is not open at ``at``.
    """
    at = _utc(at, "at")
    for opens, closes in _joint_spans(window, zones, at, at + OPENING_HORIZON):
        if opens <= at < closes:
            return closes
    raise invalid_setting(
        "at", f"the window is not open at {iso_utc(at)} in {', '.join(zones)}: see next_opening()"
    )


def local_moment(zone: str, at: datetime) -> str:
    """``at`` on the wall clock of ``zone``, for a report: ``2026-03-02T09:00:00-05:00 America/New_York``."""
    return f"{_utc(at, 'at').astimezone(_zone(zone)).isoformat(timespec='seconds')} {zone}"


class RowTiming(NamedTuple):
    """
    When one row may go out (:func:`plan_row`).

    :param status: :data:`OPEN` (send now), :data:`WAIT` (its window opens at ``opening``) or :data:`SKIP`
        (this campaign does not send it).
    :param opening: when a waiting row's window opens, aware UTC; None for a row to send now or to skip.
    :param reason: a sentence for the report naming the zone(s) and their local times.
    """

    status: str
    opening: datetime | None
    reason: str


def _zones_text(zones: Sequence[str], at: datetime | None = None) -> str:
    """The zones for a reason, with their local times at ``at``; a long list (toll-free numbers) in short."""
    unique = list(dict.fromkeys(zones))
    if len(unique) > 3:
        return f"{len(unique)} zones ({unique[0]} ... {unique[-1]})"
    return " and ".join(
        zone if at is None else f"{zone} ({at.astimezone(_zone(zone)):%a %H:%M})" for zone in unique
    )


def plan_row(
    window: SendWindow, zones: Sequence[str], now: datetime, *, row_label: str = "a row"
) -> RowTiming:
    """
    Whether a row goes out now, waits for its window, or is skipped.

    A row with zones is open when the window is open in all of them, waits for the next joint opening, and
    is skipped when there is none within :data:`OPENING_HORIZON`. A row with no known zone follows
    ``window.unknown_zone``: ``"send"`` (open, the reason says the zone is unknown), ``"skip"``, or ``"fail"``.

    :param window: the campaign's window.
    :param zones: the row's zones (:func:`zones_for_row`); empty when unknown.
    :param now: the planning moment, an aware datetime.
    :param row_label: how messages name the row (``"row 3"``).
    :raises SMSNexusValidationError: the zone is unknown and ``unknown_zone`` is ``"fail"``.
    """
    now = _utc(now, "now")
    if zones:
        timing = _timing(window, tuple(zones), now)
        return timing._replace(reason=f"{row_label}: {timing.reason}")
    if window.unknown_zone == "fail":
        raise invalid_setting(
            "send_window.unknown_zone",
            f"{row_label}: the recipient's time zone is unknown (its number does not place it), so its local "
            "time cannot be known. Name each row's IANA zone in a column (send_window zone_column), or set "
            "send_window unknown_zone to 'skip' or 'send'",
        )
    if window.unknown_zone == "skip":
        return RowTiming(SKIP, None, f"{row_label}: time zone unknown, not sent (unknown_zone='skip')")
    return RowTiming(
        OPEN, None, f"{row_label}: time zone unknown, sent without a window (unknown_zone='send')"
    )


@functools.lru_cache(maxsize=1024)
def _timing(window: SendWindow, zones: tuple[str, ...], now: datetime) -> RowTiming:
    # Cached: a campaign plans every row at one ``now``, and its rows share a few zones.
    opening = next_opening(window, zones, now)
    hours = window.describe()
    if opening is None:
        return RowTiming(
            SKIP,
            None,
            f"{hours} is never open at once in {_zones_text(zones)} within {OPENING_HORIZON.days} days; name "
            "its zone in a column or widen the window",
        )
    if opening == now:
        return RowTiming(OPEN, None, f"inside {hours} in {_zones_text(zones, now)}")
    return RowTiming(
        WAIT,
        opening,
        f"outside {hours} in {_zones_text(zones, now)}; opens at {iso_utc(opening)}, {_zones_text(zones, opening)}",
    )


def schedule(openings: Iterable[datetime | None]) -> list[tuple[str, int]]:
    """
    How many rows go out at each opening, for a dry run: ``[("now", 120), ("2026-03-03T13:00:00Z", 80)]``.

    :param openings: the :attr:`RowTiming.opening` of each row that will be sent (status open or wait;
        leave skipped rows out): None counts as now.
    :return: ``("now", count)`` first when any row is open now, then each opening as ISO UTC, in time order.
    """
    now = 0
    later: Counter[datetime] = Counter()
    for opening in openings:
        if opening is None:
            now += 1
        else:
            later[_utc(opening, "opening")] += 1
    return ([("now", now)] if now else []) + [
        (iso_utc(moment), count) for moment, count in sorted(later.items())
    ]
