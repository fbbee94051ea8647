"""Send windows: the local hours in which a recipient may be texted, and when each row's window opens.

A campaign scheduled for 09:00 in New York reaches Los Angeles at 06:00. A :class:`SendWindow` names the local
wall-clock hours in which texts may go out; this module tells, for a row's time zone(s) and a moment it is
given, whether the window is open, when it next opens and when it closes. Pure: no I/O, no clock of its own
(every function takes the moment as an argument), every instant it returns is aware UTC.

The rules, each decided here once:

* **A row's zones** are the value of its ``zone_column`` when the window names one and the row has a value
  (exact), else the zones ``phonenumbers`` gives the number's prefix (:func:`zones_for_number`). Some area
  codes span two zones (+1 605: Mountain and Central); a row is open only when the window is open in *all*
  of its zones, so that no recipient it could be is texted outside the hours.
* **Unknown zones** (satellite phones, numbers ``phonenumbers`` cannot place) follow ``unknown_zone``:
  ``"fail"`` by default (never guess: the campaign stops before its first send), ``"skip"``, or ``"send"``
  (without a window). Non-geographic numbers such as US toll-free (+1 800) get every zone of their country
  from ``phonenumbers``; their window is the overlap of all of them, so give such rows a zone column.
* **Windows never cross midnight**: ``end`` must come after ``start``; ``end`` ``24:00`` (``time(0)``) is
  midnight at the end of the day. ``21:00``-``08:00`` is refused rather than read as an overnight window:
  it is far more often quiet hours written where the allowed hours belong.
* **Days** are the recipient's local ISO weekdays (1 = Monday) on which the window opens.
* **Daylight saving time**: the window opens at the first instant of the local day whose wall time is at or
  after ``start``, and closes at the first instant whose wall time is at or after ``end``. A time in the hour
  skipped in spring (02:30) is thus the end of the gap (03:00); a time that happens twice in autumn (01:30)
  is its first occurrence. A window lying wholly inside the skipped hour does not open that day.
* **Horizon**: openings are looked for :data:`OPENING_HORIZON` (8 days: a week, and a day for a DST shift)
  ahead. Zones whose windows never overlap within it (a 3-hour window in zones 12 hours apart) have no
  opening: such a row can never be sent within its window, and :func:`plan_row` skips it.

.. seealso:: "Send windows" in :doc:`/guides/sending`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

from airflow_provider_smsnexus.exceptions import SMSNexusValidationError

#: What a row whose time zone is unknown does: sent without a window, skipped, or the campaign fails.
UNKNOWN_ZONE_POLICIES = ("send", "skip", "fail")
#: Every ISO weekday (1 = Monday ... 7 = Sunday): a window's default days.
ALL_DAYS = frozenset(range(1, 8))
#: The ``end`` that stands for midnight at the end of the day (written ``24:00``).
MIDNIGHT = time(0)
#: How long a local-time delivery (``{"at": "10:00"}``) stays open; it is cut at midnight.
AT_WINDOW_LENGTH = timedelta(hours=1)

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: day for names in (_DAY_NAMES, _FULL_DAY_NAMES) for day, name in enumerate(names, 1)}
_KEYS = ("preset", "start", "end", "at", "days", "unknown_zone", "zone_column")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def invalid_setting(field: str, message: str) -> SMSNexusValidationError:
    # Raised on our side, before any request: no HTTP status; ``errors`` names the field as the server's would.
    return SMSNexusValidationError(message, status_code=None, errors={field: [message]})


def bad_setting(field: str, value: Any, problem: str) -> SMSNexusValidationError:
    return invalid_setting(field, f"{field}={value!r} {problem}")


@dataclass(frozen=True)
class SendWindow:
    """
    The local hours (and days) in which a campaign's texts may reach a recipient.

    The US federal rule allows marketing texts from 08:00 to 21:00 in the recipient's local time
    (:data:`US_FEDERAL`); some states allow less (08:00-20:00, fewer days): set your own hours.

    :param start: the local wall-clock time the window opens, in whole minutes.
    :param end: the local wall-clock time it closes (exclusive), after ``start``; ``time(0)`` is midnight
        at the end of the day. A window never crosses midnight.
    :param days: the local ISO weekdays (1 = Monday ... 7 = Sunday) on which it opens; default every day.
    :param unknown_zone: what a row whose time zone is unknown does: ``"fail"`` (default: the campaign stops
        before sending, naming the row), ``"skip"`` (not sent) or ``"send"`` (sent without a window).
    :param zone_column: a column of the recipient table holding each row's IANA zone (``America/Chicago``);
        where it has a value it is used instead of the zones of the number's prefix. Default: none.
    """

    start: time
    end: time
    days: frozenset[int] = ALL_DAYS
    unknown_zone: str = "fail"
    zone_column: str | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None or value.second or value.microsecond:
                raise bad_setting(
                    f"send_window.{name}", value, "is not a local time in whole minutes (HH:MM)"
                )
        if self.end != MIDNIGHT and self.end <= self.start:
            raise bad_setting(
                "send_window.end",
                _time_text(self.end),
                f"is not after start={_time_text(self.start)!r}: a window is the local hours in which texts "
                "may go out (such as 08:00-21:00), not the quiet hours, and never crosses midnight (end "
                "'24:00' is midnight)",
            )
        days = frozenset(self.days) if isinstance(self.days, (set, frozenset, list, tuple)) else frozenset()
        if not days or not days <= ALL_DAYS or any(type(day) is not int for day in days):
            raise bad_setting("send_window.days", self.days, "is not a set of ISO weekdays 1-7 (1 = Monday)")
        object.__setattr__(self, "days", days)
        if self.unknown_zone not in UNKNOWN_ZONE_POLICIES:
            raise bad_setting(
                "send_window.unknown_zone", self.unknown_zone, f"is not one of {UNKNOWN_ZONE_POLICIES}"
            )
        if self.zone_column is not None and not (isinstance(self.zone_column, str) and self.zone_column):
            raise bad_setting("send_window.zone_column", self.zone_column, "is not a column name")

    @classmethod
    def parse(cls, value: Any) -> SendWindow | None:
        """
        Read a window as a DAG author writes it, or as a templated operator argument carries it.

        Accepted: None or an empty text (no window: every row goes out at once; a template that renders
        nothing gives the empty text); a :class:`SendWindow`; a preset name
        (``"us_federal"``, see :data:`PRESETS`); a mapping, or its JSON text, with the keys ``start`` and
        ``end`` (``"HH:MM"``, end ``"24:00"`` for midnight), ``at`` (a local-time delivery: a one-hour window
        from then, cut at midnight, instead of start and end), ``days`` (``"mon-fri"``, ``"sat,sun"``,
        ``["mon", "tue"]`` or ``[1, 2]``), ``unknown_zone``, ``zone_column``, and ``preset`` (a preset that
        the other keys override).

        :param value: the window as written.
        :raises SMSNexusValidationError: naming the field and the value, for any value that is not a window.
        """
        if value is None or isinstance(value, SendWindow):
            return value
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str):
            if not value.strip().startswith("{"):
                return _preset(value, "send_window")
            try:
                value = json.loads(value)
            except ValueError:
                raise bad_setting("send_window", value, "is not a JSON object") from None
        if not isinstance(value, Mapping):
            raise bad_setting(
                "send_window", value, f"is not a window: give a preset ({_PRESET_NAMES}), a mapping or None"
            )
        unknown = sorted(str(key) for key in value if key not in _KEYS)
        if unknown:
            message = (
                f"send_window has unknown keys {', '.join(map(repr, unknown))}: it takes {', '.join(_KEYS)}"
            )
            raise invalid_setting("send_window", message)
        fields: dict[str, Any] = {}
        if "at" in value:
            if "start" in value or "end" in value:
                raise invalid_setting(
                    "send_window.at", "send_window.at is a one-hour window: give no start or end"
                )
            fields["start"] = _parse_time(value["at"], "send_window.at")
            fields["end"] = _time_after(fields["start"], AT_WINDOW_LENGTH)
        for name in ("start", "end"):
            if name in value:
                fields[name] = _parse_time(value[name], f"send_window.{name}", end=name == "end")
        if "days" in value:
            fields["days"] = _parse_days(value["days"])
        fields.update({name: value[name] for name in ("unknown_zone", "zone_column") if name in value})
        if "preset" in value:
            return replace(_preset(value["preset"], "send_window.preset"), **fields)
        for name in ("start", "end"):
            if name not in fields:
                message = (
                    f"send_window.{name} is missing: give start and end, at, or a preset ({_PRESET_NAMES})"
                )
                raise invalid_setting(f"send_window.{name}", message)
        return cls(**fields)

    def as_json(self) -> dict[str, Any]:
        """The window as a JSON-safe mapping that :meth:`parse` reads back to an equal window (it travels
        through XCom and a deferral's kwargs)."""
        return {
            "start": _time_text(self.start),
            "end": _time_text(self.end, end=True),
            "days": [_DAY_NAMES[day - 1] for day in sorted(self.days)],
            "unknown_zone": self.unknown_zone,
            "zone_column": self.zone_column,
        }

    def describe(self) -> str:
        """The window in words for a report: ``08:00-21:00 mon-fri`` (local time)."""
        runs: list[list[int]] = []
        for day in sorted(self.days):
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = ", ".join(
            "-".join(dict.fromkeys((_DAY_NAMES[r[0] - 1], _DAY_NAMES[r[-1] - 1]))) for r in runs
        )
        days = "every day" if self.days == ALL_DAYS else names
        return f"{_time_text(self.start)}-{_time_text(self.end, end=True)} {days}"


#: The US federal rule (TCPA): marketing texts from 08:00 to 21:00 in the recipient's local time, every day.
#: Some states allow less (such as 08:00-20:00, or not on Sundays): give your own hours for them.
US_FEDERAL = SendWindow(start=time(8), end=time(21))
#: Windows known by name (``send_window="us_federal"``).
PRESETS: Mapping[str, SendWindow] = MappingProxyType({"us_federal": US_FEDERAL})
_PRESET_NAMES = ", ".join(map(repr, PRESETS))


def _preset(name: Any, field: str) -> SendWindow:
    window = PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
    if window is None:
        raise bad_setting(field, name, f"is not a preset: the presets are {_PRESET_NAMES}")
    return window


def _parse_time(value: Any, field: str, *, end: bool = False) -> time:
    if isinstance(value, time):
        return value
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    hour, minute = (int(match[1]), int(match[2])) if match else (99, 99)
    if end and (hour, minute) == (24, 0):
        return MIDNIGHT
    if hour < 24 and minute < 60:
        return time(hour, minute)
    raise bad_setting(field, value, "is not a time (HH:MM)")


def _time_after(start: time, length: timedelta) -> time:
    moment = datetime.combine(date.min, start) + length
    return MIDNIGHT if moment.date() > date.min else moment.time()


def _time_text(value: time, *, end: bool = False) -> str:
    return "24:00" if end and value == MIDNIGHT else value.strftime("%H:%M")


def _parse_days(value: Any) -> frozenset[int]:
    items = value.split(",") if isinstance(value, str) else value
    found = (
        [_day_items(item) for item in items] if isinstance(items, (list, tuple, set, frozenset)) else [None]
    )
    if any(days is None for days in found):
        example = "'mon-fri', 'sat,sun', ['mon', 'wed'] or ISO weekdays [1, 3] (1 = Monday)"
        raise bad_setting("send_window.days", value, f"is not a list of days: write {example}")
    if not found:
        raise bad_setting("send_window.days", value, "is empty: the window would never open")
    return frozenset(day for days in found for day in days)


def _day_items(item: Any) -> list[int] | None:
    """The days one item names (``3``, ``"wed"``, ``"fri-mon"``, which wraps round the week), or None."""
    if type(item) is int:
        return [item] if 1 <= item <= 7 else None
    first, dash, last = item.strip().lower().partition("-") if isinstance(item, str) else ("", "", "")
    start, stop = _DAY_NUMBERS.get(first.strip()), _DAY_NUMBERS.get((last if dash else first).strip())
    if start is None or stop is None:
        return None
    return [(start - 1 + step) % 7 + 1 for step in range((stop - start) % 7 + 1)]
