"""The window of an export (transfers/window.py): its bounds, and the rule that picks it on every schedule."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.window import ExportWindow, resolve_window

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc)


def test_window_end_is_cut_to_the_moment_the_task_started():
    window = resolve_window("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z", now=NOW)
    assert window == ExportWindow(datetime(2026, 3, 10, tzinfo=timezone.utc), NOW)


def test_window_without_dates_is_the_whole_history_up_to_now():
    assert resolve_window(None, None, now=NOW) == ExportWindow(None, NOW)
    assert resolve_window("None", "", now=NOW) == ExportWindow(None, NOW)


def test_lookback_moves_the_start_back():
    window = resolve_window(
        datetime(2026, 3, 9, tzinfo=timezone.utc), "2026-03-10", now=NOW, lookback=timedelta(days=2)
    )
    assert window.start == datetime(2026, 3, 7, tzinfo=timezone.utc)
    assert window.end == datetime(2026, 3, 10, tzinfo=timezone.utc)


def test_whole_days_widen_the_window_to_midnights_but_never_past_now():
    window = resolve_window("2026-03-08T06:00:00Z", "2026-03-10T09:00:00Z", now=NOW, whole_days=True)
    assert window.start == datetime(2026, 3, 8, tzinfo=timezone.utc)
    assert window.end == NOW  # the next midnight is after now
    assert window.covered_days() == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    earlier = resolve_window("2026-03-01T06:00:00Z", "2026-03-02T09:00:00Z", now=NOW, whole_days=True)
    assert earlier == ExportWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc)
    )


def test_naive_datetimes_and_dates_are_taken_as_utc():
    window = resolve_window(date(2026, 3, 1), datetime(2026, 3, 2, 12), now=NOW)
    assert window == ExportWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    )


def test_a_window_starting_after_now_is_an_error():
    with pytest.raises(ValueError, match="after its end"):
        resolve_window("2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z", now=NOW)
    with pytest.raises(SMSNexusError, match="not an ISO 8601"):
        resolve_window("last tuesday", None, now=NOW)


def test_covered_days_of_an_empty_or_open_window():
    assert ExportWindow(NOW, NOW).covered_days() == []
    assert ExportWindow(None, NOW).covered_days() is None


def test_airflow_context_datetimes_are_accepted():
    import pendulum

    window = resolve_window(
        pendulum.datetime(2026, 3, 8, tz="UTC"),
        pendulum.datetime(2026, 3, 9, tz="Europe/Paris"),
        now=NOW,
        lookback=timedelta(days=2),
        whole_days=True,
    )
    assert window == ExportWindow(
        datetime(2026, 3, 6, tzinfo=timezone.utc), datetime(2026, 3, 9, tzinfo=timezone.utc)
    )
    assert type(window.start) is datetime


# -- the window on every kind of schedule (the README's table) -------------------------------------

D1 = datetime(2026, 3, 8, tzinfo=timezone.utc)
D2 = D1 + timedelta(days=1)
KEY = "daily_export.to_sql"


def facts_of(run_id, *, logical_date=None, run_after=None, interval=None):
    from airflow_provider_smsnexus.transfers.window import RunFacts

    start, end = interval if interval is not None else (None, None)
    return RunFacts(run_id, logical_date, run_after, start, end)


def history(*ends, run_ids=None):
    from airflow_provider_smsnexus.transfers.window import ExportRun

    run_ids = run_ids or [f"scheduled__{end.isoformat()}" for end in ends]
    return [ExportRun(KEY, run_id, None, end) for run_id, end in zip(run_ids, ends)]


def window_of(facts, runs=(), **options):
    from airflow_provider_smsnexus.transfers.window import choose_window

    return choose_window(facts, list(runs), key=KEY, now=NOW, **options)


def core_timetable(schedule):
    from airflow.sdk import DAG
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(DAG("t", schedule=schedule, start_date=D1 - timedelta(days=30)).timetable)


def scheduled_interval(timetable, after):
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=D1 - timedelta(days=30), latest=None, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=after, restriction=restriction)
    return info.logical_date, (info.data_interval.start, info.data_interval.end)


def test_a_cron_trigger_run_exports_from_the_last_exports_end_to_its_logical_date(monkeypatch):
    from airflow.timetables.base import DataInterval

    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "False")
    timetable = core_timetable("@daily")
    logical, interval = scheduled_interval(timetable, DataInterval(D1, D1))
    assert (logical, interval) == (D2, (D2, D2))  # Airflow 3's default: an empty data interval
    facts = facts_of(
        f"scheduled__{D2.isoformat()}", logical_date=logical, run_after=logical, interval=interval
    )
    assert window_of(facts, history(D1)) == (D1, D2, "after_last_export")
    assert window_of(facts) == (None, D2, "first_export")
    assert window_of(facts, initial_window_start=D1 - timedelta(days=7)) == (
        D1 - timedelta(days=7),
        D2,
        "first_export",
    )


def test_a_cron_data_interval_run_exports_its_interval(monkeypatch):
    from airflow.timetables.base import DataInterval

    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "True")
    timetable = core_timetable("@daily")
    logical, interval = scheduled_interval(timetable, DataInterval(D1 - timedelta(days=1), D1))
    assert interval == (D1, D2)
    facts = facts_of("scheduled__x", logical_date=logical, run_after=D2, interval=interval)
    assert window_of(facts, history(D1 - timedelta(days=5))) == (D1, D2, "data_interval")


def test_an_at_once_run_exports_up_to_its_logical_date_the_dags_start_date():
    timetable = core_timetable("@once")
    logical, interval = scheduled_interval(timetable, None)
    start_date = D1 - timedelta(days=30)
    assert interval == (start_date, start_date)
    facts = facts_of("scheduled__once", logical_date=logical, run_after=logical, interval=interval)
    assert window_of(facts) == (None, start_date, "first_export")


def test_a_manual_run_with_a_logical_date_exports_from_the_last_end_to_that_date(monkeypatch):
    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "False")
    moment = D2 + timedelta(hours=12)
    interval = core_timetable("@daily").infer_manual_data_interval(run_after=moment)
    facts = facts_of(
        "manual__1", logical_date=moment, run_after=moment, interval=(interval.start, interval.end)
    )
    assert window_of(facts, history(D2)) == (D2, moment, "after_last_export")


@pytest.mark.parametrize("run_id", ["manual__2026-03-09T15:00:00", "asset_triggered__2026-03-09T15:00:00"])
def test_runs_without_a_logical_date_export_up_to_their_run_after(run_id):
    # Manual runs from the CLI or REST API and asset-triggered runs: no logical date, no data interval.
    run_after = D2 + timedelta(hours=15)
    facts = facts_of(run_id, run_after=run_after)
    assert window_of(facts, history(D1, D2)) == (D2, run_after, "after_last_export")


def test_a_backfill_run_behind_later_exports_starts_at_the_latest_end_before_its_own():
    facts = facts_of("backfill__x", logical_date=D1, run_after=D1, interval=(D1, D1))
    assert window_of(facts, history(D1 - timedelta(days=1), D2)) == (
        D1 - timedelta(days=1),
        D1,
        "after_last_export",
    )
    assert window_of(facts, history(D2), initial_window_start=D1 - timedelta(days=3)) == (
        D1 - timedelta(days=3),
        D1,
        "first_export",
    )


def test_a_cleared_run_exports_exactly_the_window_it_had():
    from airflow_provider_smsnexus.transfers.window import ExportRun

    runs = [
        ExportRun(KEY, "scheduled__b", D1, D2),
        ExportRun(KEY, "scheduled__c", D2, D2 + timedelta(days=1)),
    ]
    facts = facts_of("scheduled__b", logical_date=D2, run_after=D2, interval=(D2, D2))
    assert window_of(facts, runs) == (D1, D2, "same_as_before")


def test_another_tasks_record_and_explicit_windows_are_not_mixed_in():
    from airflow_provider_smsnexus.transfers.window import ExportRun

    other = [ExportRun("other.task", "r", None, D1)]
    facts = facts_of("manual__1", run_after=D2)
    assert window_of(facts, other) == (None, D2, "first_export")
    assert window_of(facts, history(D1), window_start="2026-03-01") == (
        datetime(2026, 3, 1, tzinfo=timezone.utc),
        None,
        "explicit",
    )
    assert window_of(facts_of(None)) == (None, None, "no_run")
