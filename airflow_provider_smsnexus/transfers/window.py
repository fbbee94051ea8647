"""
The window of a message export: which span of ``created_at`` one run covers, on every kind of schedule.

A run with a non-empty data interval (``CronDataIntervalTimetable``, ``timedelta`` schedules) exports that
interval. A run whose interval is empty or absent (Airflow 3's default ``CronTriggerTimetable``, ``@once``,
manual runs, asset-triggered runs, backfills of a cron trigger) exports from where the last export of the
same task into the same destination ended to the run's logical date (its ``run_after`` when it has none).
The destination keeps that record (:class:`ExportRun`, written in the same transaction as a SQL load,
beside the files of a Parquet export after they are swapped in), so a cleared run exports exactly its
window again and a manual run between scheduled runs neither loses nor repeats a message.

.. seealso:: "The window on every schedule" in :doc:`/guides/exports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.utils.times import as_utc, iso_utc

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: How a run's window was chosen (the ``window_rule`` of the XCom value).
RULE_EXPLICIT = "explicit"
RULE_DATA_INTERVAL = "data_interval"
RULE_AFTER_LAST_EXPORT = "after_last_export"
RULE_CLEARED_RUN = "same_as_before"
RULE_FIRST_EXPORT = "first_export"
RULE_NO_RUN = "no_run"


@dataclass(frozen=True)
class ExportWindow:
    """
    The span [start, end) of created_at that a message export covers.

    :param start: the inclusive start (aware UTC), or None for the whole history.
    :param end: the exclusive end (aware UTC); never later than the listed horizon (see
        :mod:`~airflow_provider_smsnexus.transfers.horizon`).
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


@dataclass(frozen=True)
class ExportRun:
    """
    One export run as its destination records it: the window it was asked for (before ``lookback`` and
    whole-day widening), so that the next run starts where it ended and a cleared run repeats it.

    :param key: the task: ``<dag_id>.<task_id>``.
    :param run_id: the DAG run's id.
    :param start: the window's start, or None for the whole history.
    :param end: the window's end.
    :param rows: rows the run wrote.
    :param exported_at: the moment (this machine's clock) the run measured the horizon its window ends at:
        messages created after it are the next run's, wherever a server clock set since dates them.
    """

    key: str
    run_id: str
    start: datetime | None
    end: datetime
    rows: int = 0
    exported_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO 8601)."""
        return {
            "key": self.key,
            "run_id": self.run_id,
            "window_start": None if self.start is None else iso_utc(self.start),
            "window_end": iso_utc(self.end),
            "rows": self.rows,
            "exported_at": None if self.exported_at is None else iso_utc(self.exported_at),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ExportRun:
        """Read :meth:`to_json`'s dict back."""
        return cls(
            key=str(value["key"]),
            run_id=str(value["run_id"]),
            start=as_utc(value.get("window_start"), "window_start"),
            end=as_utc(value["window_end"], "window_end"),  # type: ignore[arg-type]
            rows=int(value.get("rows") or 0),
            exported_at=as_utc(value.get("exported_at"), "exported_at"),
        )


@dataclass(frozen=True)
class RunFacts:
    """
    What the task context says about the run: read once, in one place.

    :param run_id: the DAG run's id, or None outside a DAG run (``execute({})``).
    :param logical_date: the run's logical date (None for runs without one).
    :param run_after: the run's ``run_after`` (None outside a DAG run).
    :param interval_start: ``data_interval_start`` (None for runs without one).
    :param interval_end: ``data_interval_end``.
    """

    run_id: str | None
    logical_date: datetime | None
    run_after: datetime | None
    interval_start: datetime | None
    interval_end: datetime | None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunFacts:
        """Read the run's facts from an Airflow task context (or a dict holding some of its keys)."""
        dag_run = context.get("dag_run")

        def read(name: str) -> datetime | None:
            value = context.get(name)
            if value is None and dag_run is not None:
                value = getattr(dag_run, name, None)
            return to_utc(value, name)

        run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
        return cls(
            run_id=None if run_id is None else str(run_id),
            logical_date=read("logical_date"),
            run_after=read("run_after"),
            interval_start=read("data_interval_start"),
            interval_end=read("data_interval_end"),
        )

    @property
    def has_interval(self) -> bool:
        """Whether the run has a data interval of non-zero length."""
        return (
            self.interval_start is not None
            and self.interval_end is not None
            and self.interval_end > self.interval_start
        )


def to_utc(value: Any, name: str) -> datetime | None:
    """A datetime, date or ISO string as a plain aware-UTC datetime; None, "" and "None" as None."""
    if isinstance(value, str) and value.strip() in ("", "None"):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    value = as_utc(value, name)
    if value is None:
        return None
    # A plain datetime, also for the pendulum DateTimes of Airflow's context (their arithmetic differs).
    return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=timezone.utc)


def choose_window(
    facts: RunFacts,
    history: Sequence[ExportRun],
    *,
    key: str,
    now: datetime,
    window_start: Any = None,
    window_end: Any = None,
    initial_window_start: datetime | None = None,
    server_clock_now: Callable[[datetime], datetime] | None = None,
) -> tuple[datetime | None, datetime | None, str]:
    """
    The window a run asks for, before ``lookback`` and whole-day widening: ``(start, end, rule)``.

    In order: explicit ``window_start``/``window_end`` (the other side from the data interval when it has
    one); a data interval of non-zero length; for a run already in ``history`` (a cleared run) the window
    it had; else from the latest recorded end at or before this run's end (its logical date, else its
    ``run_after``), or ``initial_window_start`` (None: the whole history) when there is none.

    :param facts: the run (see :class:`RunFacts`).
    :param history: the runs of this task its destination recorded.
    :param key: the task's key in ``history``.
    :param now: the listed horizon (the end of a run whose window has no fixed end).
    :param window_start: the operator's ``window_start`` (rendered), or None.
    :param window_end: the operator's ``window_end`` (rendered), or None.
    :param initial_window_start: where the first export of a task starts (None: the whole history).
    :param server_clock_now: a local moment on the server's clock as it is measured now, less the estimate's
        uncertainty: where the messages created after that moment begin. With it, a run after the last export
        starts no later than the last export's moment on the current clock, so that a server clock set back
        since (an NTP step) cannot date new messages into the window the last export already closed.
    """
    start, end = to_utc(window_start, "window_start"), to_utc(window_end, "window_end")
    if start is not None or end is not None:
        if facts.has_interval:
            start = start if start is not None else facts.interval_start
            end = end if end is not None else facts.interval_end
        return start, end, RULE_EXPLICIT
    mine = [run for run in history if run.key == key]
    if facts.has_interval:
        start = facts.interval_start
        before = [run for run in mine if run.end == start and run.run_id != facts.run_id]
        if (
            server_clock_now is not None
            and start is not None
            and before
            and before[0].exported_at is not None
        ):
            # The interval before was exported once; a clock set back since dates new messages into it.
            start = min(start, server_clock_now(before[0].exported_at))
        return start, facts.interval_end, RULE_DATA_INTERVAL
    if facts.run_id is None:
        return initial_window_start, None, RULE_NO_RUN
    for run in mine:
        if run.run_id == facts.run_id:
            return run.start, run.end, RULE_CLEARED_RUN
    end = facts.logical_date or facts.run_after or now
    end = min(end, now)
    earlier = [run for run in mine if run.end <= end]
    if earlier:
        start = max(run.end for run in earlier)
        measured = [(run.exported_at, run) for run in earlier if run.exported_at is not None]
        if server_clock_now is not None and measured:
            # After a clock set back, the latest end may not be the latest run's: start no later than the
            # latest run's end, nor than its moment on the clock as it is now (what was created since).
            exported_at, latest = max(measured, key=lambda pair: pair[0])
            start = min(start, latest.end, server_clock_now(exported_at))
        return start, end, RULE_AFTER_LAST_EXPORT
    return initial_window_start, end, RULE_FIRST_EXPORT


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


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
    :param now: the listed horizon, on the server's clock: the end is never later, so rows the list may not
        show yet (created since, or listed late) are left to the next run.
    :param lookback: moves the start back by this much, so that status changes of recent messages are
        exported again.
    :param whole_days: widen the window to whole UTC days (start to its midnight, end to the next midnight
        unless that is after ``now``), so that every day partition it touches is rewritten complete.
    :raises ValueError: the window would start after its end.
    """
    start = to_utc(window_start, "window_start")
    end = to_utc(window_end, "window_end") or now
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
            "(an end after the listed horizon, the server's present minus listing_delay, is cut to it)"
        )
    return ExportWindow(start, end)
