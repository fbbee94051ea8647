"""The example DAGs on a real Airflow 3 deployment, triggered as a user triggers them.

A scheduler, a dag-processor, a triggerer and an api-server (the execution API the tasks call) run from the
installed package with the LocalExecutor and their metadata in a fresh PostgreSQL database; the emulator runs
as its console script. Every example DAG is unpaused, as a user starts; three are triggered with ``airflow dags
trigger`` (no logical date) and the DAGs' own schedules make scheduled runs. Outcomes are read through the REST
API and checked against the emulator's record and the export's files and tables.

The rule of docs/examples.md, that unpausing an example on a real account texts no one who did not just ask for
it: the account has history (inbound texts from many numbers to the number the reply example watches, up to the
moment of deployment), and the emulator's record shows that only those who asked were texted: the campaign's
rows and the on-call (the test triggers those), and the customer who wrote after the deployment, answered once.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tests.deployment.deployment_support import (
    QUICK_LIFECYCLE,
    Airflow,
    EmulatorProcess,
    task_process,
    wait_for,
)

pytestmark = [pytest.mark.deployment, pytest.mark.slow, pytest.mark.timeout(600)]

DAG_IDS = {"smsnexus_campaign_send", "nightly_export", "low_credit_alert"}
EXAMPLE_DAG_IDS = DAG_IDS | {"smsnexus_inbound_replies", "smsnexus_sms_approval"}
OUR_NUMBER = "+12125550100"
# Customers who wrote to OUR_NUMBER before the deployment (beside the seeded history), and one who writes after.
PAST_CUSTOMERS = [f"+1646555{n:04d}" for n in range(100, 120)]
#: The reply example's trigger logs where its first run starts (``since="first-run"``).
FIRST_RUN = re.compile(r"First run: handing on inbound messages created from (\S+) \(server clock\)")
NEW_CUSTOMER = "+16465550199"
# dags/campaign_recipients.csv: the eight sendable rows.
CAMPAIGN = [f"+1212555{n:04d}" for n in (130, 131, 132, 133, 134, 135, 136, 137)]
ON_CALL = ["+12125550150", "+12125550151"]
# The rows of partition 0 of 2, worked out by hand from the documented rule (SHA-256 of the number, first
# 8 bytes big-endian, modulo 2): every number but +12125550136.
PARTITION_0 = [number for number in CAMPAIGN if number != "+12125550136"]
#: Longer than the test needs to see a send inside the server and kill its client on a loaded machine; shorter
#: than the connection's 30 s read timeout, so the other partition's held sends are answered, not timed out.
SEND_HOLD_MS = 15_000


def created(message: dict) -> datetime:
    return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_every_example_dag_runs_when_triggered_from_the_cli_on_a_local_executor_deployment(
    tmp_path, processes, database
):
    emulator = EmulatorProcess(processes, *QUICK_LIFECYCLE, "--random-seed", "7")
    admin = emulator.admin
    now = datetime.now(timezone.utc)
    admin.seed_messages(150, start=now - timedelta(hours=3), end=now - timedelta(minutes=1))
    admin.seed_messages(50, random_seed=1, start=now - timedelta(days=60), end=now - timedelta(days=30))
    for number in PAST_CUSTOMERS:  # the last moments before the deployment, as close as history gets
        admin.add_inbound(number, OUR_NUMBER, "Is my order ready?")
    deployed_at = datetime.now(timezone.utc)
    exports = tmp_path / "exports"
    airflow = Airflow(
        tmp_path / "airflow",
        processes,
        database,
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW_CONN_SMSNEXUS_DEFAULT": emulator.connection_json(retry_backoff=0.2, retry_backoff_max=1),
            "SMSNEXUS_EXPORT_DIR": str(exports),
        },
    )
    airflow.start("api-server", "scheduler", "dag-processor", "triggerer")
    airflow.wait_for_dags(EXAMPLE_DAG_IDS)
    # As a user starts: unpausing every example makes the scheduled runs (the hourly alert, last night's
    # export) and starts the reply example's watcher; the others run when triggered.
    airflow.cli(
        "dags", "unpause", "--treat-dag-id-as-regex", "--yes", "^(" + "|".join(sorted(EXAMPLE_DAG_IDS)) + ")$"
    )
    processes.remember_descendants()
    # The reply example runs as documented, with SMSNEXUS_INBOUND_SINCE unset: since="first-run", the listed
    # horizon (server clock) when the triggerer first runs its watcher, which the trigger logs.
    first_run = wait_for(
        "the reply watcher's first run",
        lambda: FIRST_RUN.search(airflow.processes.log_text("triggerer")),
        timeout=180,
        logs=airflow.processes,
    )
    watched_from = moment(first_run.group(1))
    assert watched_from > deployed_at  # its first run came after the deployment started
    # A customer writes after the watcher started (created_at has whole seconds: check it is after the start).
    question = admin.add_inbound(NEW_CUSTOMER, OUR_NUMBER, "Hi, is my order ready?")
    assert created(question) >= watched_from, "the customer's text must be created after the watcher started"

    # -- the campaign: SIGKILL one partition's task process while its send is inside the server ------------
    # Every send is processed, then its answer held for SEND_HOLD_MS: until the kill, partition 0 cannot
    # finish (it needs four answers), however slowly this machine runs, and the kill lands mid-send.
    # The alert is triggered first, right after unpausing: the DAG allows two active runs, and a run created
    # later could wait behind two hourly runs when the test crosses the hour.
    admin.configure(send_hold_ms=SEND_HOLD_MS)
    alert_run = airflow.trigger("low_credit_alert", {"threshold": 5000})
    export_run = airflow.trigger("nightly_export")
    campaign_run = airflow.trigger("smsnexus_campaign_send", {"report_dir": str(tmp_path / "reports")})
    running = airflow.wait_for_task_state(
        "smsnexus_campaign_send", campaign_run, "send_campaign", {"running"}, map_index=0
    )

    def mid_send():
        sent = [m for m in admin.sent_messages() if m["to"] in PARTITION_0]
        process = task_process(running["id"])
        return process if process is not None and 0 < len(sent) < len(PARTITION_0) else None

    victim = wait_for("send_campaign[0]'s process mid-send", mid_send, timeout=120, interval=0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    # What the victim's lost answer covered is in the emulator's record; the rest goes out at normal speed.
    admin.configure(send_hold_ms=0)

    # -- the alert: deferred (on the triggerer, no worker slot), then fired once the balance is low -------
    airflow.wait_for_task_state("low_credit_alert", alert_run, "check_balance", {"deferred"}, timeout=240)
    admin.set_balance(2000)  # below this run's threshold (5000), above the hourly run's (1000)

    # -- outcomes -------------------------------------------------------------------------------------------
    campaign = airflow.wait_for_run("smsnexus_campaign_send", campaign_run, timeout=300)
    alert = airflow.wait_for_run("low_credit_alert", alert_run, timeout=240)
    hourly_alerts = [r for r in airflow.runs("low_credit_alert") if r["run_type"] == "scheduled"]
    export = airflow.wait_for_run("nightly_export", export_run, timeout=300)
    (scheduled_export,) = [r for r in airflow.runs("nightly_export") if r["run_type"] == "scheduled"]
    scheduled_export = airflow.wait_for_run("nightly_export", scheduled_export["dag_run_id"], timeout=120)
    # The reply example: the customer's answer in the emulator's record, then every run of the DAG ended.
    answer_text = f"Thanks, we got your message #{question['id']}."
    wait_for(
        "the answer to the customer who wrote after the deployment",
        lambda: [m for m in admin.sent_messages() if m["to"] == NEW_CUSTOMER],
        timeout=240,
        logs=airflow.processes,
    )
    replies_runs = [
        airflow.wait_for_run("smsnexus_inbound_replies", r["dag_run_id"], timeout=120)
        for r in airflow.runs("smsnexus_inbound_replies")
    ]
    api_sent = admin.sent_messages()

    for run in (campaign, alert, export):
        assert run["run_type"] == "manual"
        assert run["logical_date"] is None, "triggered as a user triggers: no logical date"
        assert run["state"] == "success", airflow.processes.tails()
    assert scheduled_export["state"] == "success"

    # The kill landed, the scheduler retried, and nobody was texted twice or left out.
    tries = {
        (ti["task_id"], ti["map_index"]): (ti["state"], ti["try_number"])
        for ti in airflow.task_instances("smsnexus_campaign_send", campaign_run)
    }
    assert tries[("send_campaign", 0)] == ("success", 2)
    assert {state for state, _ in tries.values()} == {"success"}
    assert Counter(m["to"] for m in api_sent if m["to"] in CAMPAIGN) == dict.fromkeys(CAMPAIGN, 1)

    # The rule: beside the campaign's rows and the on-call (the test asked for those by triggering), only the
    # customer who wrote after the deployment was texted, once, from the number written to; nobody of the
    # history (written before the deployment, in the emulator's record) was, though every example is unpaused.
    history_senders = {m["from"] for m in admin.messages(direction="inbound") if created(m) < watched_from}
    assert set(PAST_CUSTOMERS) <= history_senders
    assert NEW_CUSTOMER not in history_senders
    unasked = [m for m in api_sent if m["to"] not in set(CAMPAIGN) | set(ON_CALL)]
    assert [(m["from"], m["to"], m["body"]) for m in unasked] == [(OUR_NUMBER, NEW_CUSTOMER, answer_text)]
    assert {r["state"] for r in replies_runs} == {"success"}, airflow.processes.tails()
    assert {r["run_type"] for r in replies_runs} == {"asset_triggered"}
    (replies_asset,) = airflow.get("/assets", name_pattern="smsnexus_inbound_replies")["assets"]
    events = airflow.get("/assets/events", asset_id=replies_asset["id"], limit=100)["asset_events"]
    assert [e["extra"]["payload"]["message"]["id"] for e in events] == [question["id"]]
    # Unpausing the examples without a schedule ran nothing.
    assert airflow.runs("smsnexus_sms_approval") == []

    # The alert: one text per on-call number, from this run (its threshold); the hourly run (threshold 1000)
    # did not hold it back: it was still waiting when the manual run ended.
    pages = [m for m in api_sent if m["to"] in ON_CALL]
    assert sorted(m["to"] for m in pages) == ON_CALL
    assert all(re.search(r"credits low: \d+ left \(threshold 5000\)", m["body"]) for m in pages)
    assert hourly_alerts
    assert hourly_alerts[0]["start_date"] < alert["end_date"]
    assert hourly_alerts[0]["state"] == "running" or hourly_alerts[0]["end_date"] > alert["end_date"]

    # The export: what the files and the warehouse hold equals the emulator's record: every id once, none
    # invented, and every message of the window the task reports (the README's window table says which
    # window a run without a logical date gets) -- at least all that were created in the hours before.
    messages = {m["id"]: created(m) for m in admin.messages()}
    seeded = {m["id"] for m in admin.messages(origin="seed")}  # not the texts written before the deployment
    recent = {i for i, at in messages.items() if i in seeded and now - timedelta(hours=3) <= at < now}
    assert len(recent) == 150
    import pyarrow.dataset as ds

    in_files = ds.dataset(exports / "messages", partitioning="hive").to_table().column("id").to_pylist()
    with sqlite3.connect(tmp_path / "airflow" / "smsnexus_warehouse.db") as warehouse:
        in_table = [row[0] for row in warehouse.execute("SELECT id FROM smsnexus_messages")]
    for task_id, ids in (("messages_to_parquet", in_files), ("messages_to_sql", in_table)):
        assert len(ids) == len(set(ids)), task_id
        assert set(ids) <= set(messages), task_id
        assert recent <= set(ids), task_id
        figures = airflow.xcom("nightly_export", export_run, task_id)
        start = (
            moment(figures["window_start"])
            if figures["window_start"]
            else datetime.min.replace(tzinfo=timezone.utc)
        )
        end = moment(figures["window_end"])
        # The window ends at the listed horizon: the server's present (the machine's clock here) when the task
        # ran, minus listing_delay (5 s by default) and the clock estimate's uncertainty (a second or two).
        assert moment(export["run_after"]) - timedelta(seconds=5 + 3) <= end, task_id
        window = {i for i, at in messages.items() if start <= at < end}
        assert window <= set(ids), task_id
