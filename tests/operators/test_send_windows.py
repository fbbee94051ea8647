"""SMSNexusBulkSendOperator with a send window, against the emulator: no text leaves outside 08:00-21:00 of its
recipient's zone (read from the emulator's record), every row is sent exactly once in the end, the task defers
(holding no worker) while it waits, and the dry run's schedule is what is then sent.

Time is the emulator's clock, which the test sets (``clock_offset_seconds``): the campaign judges windows on the
server's clock as it measures it, and the server's ``created_at`` is the record checked. A deferral is followed as
Airflow would: a new operator (a resumed task is a new instance) runs ``execute_complete`` once the server's
clock reads the moment the trigger names.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_smsnexus.exceptions import SMSNexusValidationError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from airflow_provider_smsnexus.utils.times import as_utc
from tests.hostile.hostile_support import Worker, task_context, wait_for_file

SENDER = "+12125550100"
# A hand-checked table: each number's area code and the zone it lies in (2026-03-02 is before the US switch to
# summer time on 2026-03-08: New York UTC-5, Chicago -6, Denver -7, Los Angeles -8, Honolulu -10).
ZONES = {
    "+12125550101": "America/New_York",  # 212 Manhattan
    "+13125550102": "America/Chicago",  # 312 Chicago
    "+13035550103": "America/Denver",  # 303 Denver
    "+12135550104": "America/Los_Angeles",  # 213 Los Angeles
    "+18085550105": "Pacific/Honolulu",  # 808 Hawaii
}
# The same day's 08:00 local, in UTC: when each one's US-federal window opens.
OPENS_UTC_HOUR = {
    "+12125550101": 13,
    "+13125550102": 14,
    "+13035550103": 15,
    "+12135550104": 16,
    "+18085550105": 18,
}
DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def set_server_clock(admin: Any, moment: datetime) -> None:
    """Make the emulator's clock read ``moment`` now."""
    admin.configure(clock_offset_seconds=(moment - datetime.now(timezone.utc)).total_seconds())


def server_now(admin: Any) -> datetime:
    offset = admin.config()["clock_offset_seconds"]
    return datetime.now(timezone.utc) + timedelta(seconds=offset)


def operator(rows: list[dict[str, Any]], **kwargs: Any) -> SMSNexusBulkSendOperator:
    options = {"send_window": "us_federal", "campaign_id": "windowed", "honor_opt_outs": False}
    return SMSNexusBulkSendOperator(
        task_id="send",
        recipients=rows,
        message_template="Hi {{ row.name }}",
        from_number=SENDER,
        **{**options, **kwargs},
    )


def table(numbers: list[str]) -> list[dict[str, Any]]:
    return [{"to": number, "name": f"n{n}"} for n, number in enumerate(numbers)]


def run_through_deferrals(admin: Any, make: Any, start: datetime) -> tuple[dict[str, Any], list[datetime]]:
    """Run a windowed campaign from ``start`` (server clock) to its end, following every deferral; return the
    final summary and the server's clock at each resumption."""
    set_server_clock(admin, start)
    resumed: list[datetime] = []
    resume = False
    for _ in range(12):
        op = make()
        try:
            return (
                op.execute_complete(task_context(), None) if resume else op.execute(task_context())
            ), resumed
        except TaskDeferred as deferred:
            trigger, method = deferred.trigger, deferred.method_name
        assert isinstance(trigger, DateTimeTrigger)  # waits in the triggerer: no worker slot held
        assert method == "execute_complete"
        wait = (trigger.moment - datetime.now(timezone.utc)).total_seconds()
        assert wait > 0
        set_server_clock(admin, server_now(admin) + timedelta(seconds=wait))  # as if it had waited
        resumed.append(server_now(admin))
        resume = True
    raise AssertionError("the campaign was still deferring after 12 resumptions")


def check_every_text_inside_its_window(admin: Any, numbers: list[str]) -> None:
    texted = [m["to"] for m in admin.sent_messages()]
    assert sorted(texted) == sorted(numbers), "each recipient exactly once"
    for message in admin.sent_messages():
        local = as_utc(message["created_at"], "created_at").astimezone(ZoneInfo(ZONES[message["to"]]))
        assert 8 <= local.hour < 21, f"{message['to']} texted at {local.isoformat()} local time"


@pytest.mark.parametrize(
    ("start_hour", "resumptions"),
    [
        (12.0, 5),  # 07:00 in New York: nobody yet; each zone opens an hour after the one east of it
        (15.5, 2),  # New York, Chicago, Denver open; Los Angeles at 16:00Z, Honolulu at 18:00Z
        (26.5, 1),  # 21:30 in New York (closed until tomorrow 13:00Z), 20:30 in Chicago, the west open
        (25.9975, 1),  # 20:59:51 in New York: too close to its end for a request to arrive in time
    ],
    ids=["before-anyone", "mid-morning-east", "evening-east-closed", "seconds-before-ny-closes"],
)
def test_a_us_campaign_texts_each_recipient_once_inside_their_local_hours(
    smsnexus_conn, smsnexus_emulator, start_hour, resumptions
):
    admin = smsnexus_emulator.admin
    numbers = list(ZONES)

    summary, resumed = run_through_deferrals(admin, lambda: operator(table(numbers)), at(start_hour))

    check_every_text_inside_its_window(admin, numbers)
    assert len(resumed) == resumptions
    assert summary["sent"] + summary["already_sent"] == len(numbers)
    assert (summary["waiting"], summary["outside_window"], summary["resume_at"]) == (0, 0, None)


def test_each_resumption_comes_as_the_next_window_opens(smsnexus_conn, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    numbers = list(ZONES)

    _, resumed = run_through_deferrals(admin, lambda: operator(table(numbers)), at(12))

    for moment, number in zip(resumed, numbers):
        opening = at(OPENS_UTC_HOUR[number])
        assert opening <= moment < opening + timedelta(seconds=10), (number, moment)
    for message in admin.sent_messages():
        opening = at(OPENS_UTC_HOUR[message["to"]])
        assert opening <= as_utc(message["created_at"], "created_at") < opening + timedelta(seconds=30)


def test_the_dry_run_schedule_is_what_is_then_sent(smsnexus_conn, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    numbers = list(ZONES)
    set_server_clock(admin, at(15.5))

    dry = operator(table(numbers), dry_run=True).execute(task_context())

    assert admin.sent_messages() == []
    # by hand: New York, Chicago and Denver are open at 15:30Z; Los Angeles opens 16:00Z, Honolulu 18:00Z
    assert dry["schedule"] == [["now", 3], ["2026-03-02T16:00:00Z", 1], ["2026-03-02T18:00:00Z", 1]]
    run_through_deferrals(admin, lambda: operator(table(numbers)), at(15.5))
    sent_at = [as_utc(m["created_at"], "created_at") for m in admin.sent_messages()]
    for bucket, count in dry["schedule"]:
        start = at(15.5) if bucket == "now" else as_utc(bucket, "bucket")
        assert sum(start <= moment < start + timedelta(minutes=1) for moment in sent_at) == count


def test_a_number_whose_area_code_spans_two_zones_waits_for_both(smsnexus_conn, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    # 605 (South Dakota) is Mountain and Central time: 08:00 is 15:00Z in Denver, 14:00Z in Central time
    rows = table(["+13125550102", "+16055550106"])

    summary, resumed = run_through_deferrals(admin, lambda: operator(rows), at(14.5))

    by_number = {m["to"]: as_utc(m["created_at"], "created_at") for m in admin.sent_messages()}
    assert by_number["+13125550102"] < at(15)  # Chicago was open at once
    assert at(15) <= by_number["+16055550106"] < at(15) + timedelta(seconds=30)
    assert (len(resumed), summary["sent"], summary["already_sent"]) == (1, 1, 1)


SATELLITE = "+881631234567"  # Iridium: a number no time zone holds (checked in test_send_window.py)


@pytest.mark.parametrize("mode", ["fail", "skip", "send"])
def test_a_number_of_unknown_zone_follows_unknown_zone(smsnexus_conn, smsnexus_emulator, mode):
    admin = smsnexus_emulator.admin
    set_server_clock(admin, at(15.5))
    rows = table(["+12125550101", SATELLITE])
    window = {"preset": "us_federal", "unknown_zone": mode}

    if mode == "fail":
        with pytest.raises(SMSNexusValidationError, match=r"row 2: the recipient's time zone is unknown"):
            operator(rows, send_window=window).execute(task_context())
        assert admin.sent_messages() == []  # nothing left before the error
        return
    summary = operator(rows, send_window=window).execute(task_context())

    texted = sorted(m["to"] for m in admin.sent_messages())
    assert texted == (["+12125550101"] if mode == "skip" else ["+12125550101", SATELLITE])
    assert summary["outside_window"] == (1 if mode == "skip" else 0)


def test_a_zone_column_beats_the_number(smsnexus_conn, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    set_server_clock(admin, at(15.5))  # 10:30 in New York, 05:30 in Honolulu
    rows = [
        {"to": "+12125550101", "name": "a", "tz": "Pacific/Honolulu"},  # a New York number, living in Hawaii
        {"to": "+18085550105", "name": "b", "tz": "America/New_York"},
    ]

    with pytest.raises(TaskDeferred):
        operator(rows, send_window={"preset": "us_federal", "zone_column": "tz"}).execute(task_context())

    assert [m["to"] for m in admin.sent_messages()] == ["+18085550105"]


def test_a_campaign_killed_inside_its_window_resumes_without_a_second_text(
    smsnexus_conn, smsnexus_emulator, ledger_home, tmp_path, monkeypatch
):
    admin = smsnexus_emulator.admin
    # a short request time: the rerun waits that long for the killed attempt's pending request
    quick = {"retry_backoff": 0.01, "retry_backoff_max": 0.05, "timeout": 3, "listing_delay": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**quick))
    set_server_clock(admin, at(18.5))  # every zone open: 13:30 in New York ... 08:30 in Honolulu
    numbers = list(ZONES)
    spec = {
        "kind": "campaign",
        "recipients": table(numbers),
        "message_template": "Hi {{ row.name }}",
        "from_number": SENDER,
        "honor_opt_outs": False,
        "campaign_id": "windowed-kill",
        "send_window": "us_federal",
        "lease_seconds": 4,
    }
    flag = tmp_path / "flag"
    worker = Worker(
        {**spec, "pause": {"at": "before_request", "after": 3, "flag": str(flag)}}, airflow_home=ledger_home
    )
    assert wait_for_file(worker, flag), worker.stderr[-3000:]
    assert worker.kill()  # SIGKILL: the third row is marked pending, its request not sent
    assert len(admin.sent_messages()) == 2

    final = {k: v for k, v in spec.items() if k != "kind"}
    summary = SMSNexusBulkSendOperator(task_id="send", **final).execute(task_context())

    check_every_text_inside_its_window(admin, numbers)
    assert (summary["already_sent"], summary["sent"]) == (2, 3)
