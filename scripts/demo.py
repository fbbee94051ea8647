"""The demo: the example DAGs end to end (campaign, a customer reply and the DAG it starts, the delivery
report, export, alert) against a local SMS Nexus emulator.

Run by ``make demo``. Everything lives under ``.demo/`` in the repository (an embedded SQLite metadata
database, the send ledger, the exports and the warehouse) and is laid anew on every run, so running it twice
in a row gives the same result. The emulator is stopped on the way out, whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
BIN = Path(sys.executable).parent
TOKEN = "demo-account-token"
CAMPAIGN_DAG = "smsnexus_campaign_send"
# Recipients of the campaign CSV who have already answered STOP: the campaign must skip them.
OPTED_OUT = ("+12125550135", "+12125550136")
ALERT_THRESHOLD = 2000  # above the account's 1,500 credits, so that the alert fires
LOGICAL_DATE = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which."""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


@contextmanager
def emulator() -> Iterator[str]:
    """Start the emulator on a free loopback port with a seeded account; yield its base URL."""
    command = [
        str(BIN / "smsnexus-emulator"),
        *("--host", "127.0.0.1", "--port", "0", "--token", TOKEN),
        *("--seed-messages", "3000", "--random-seed", "42", "--initial-credits", "1500"),
        *("--sent-delay", "0.2", "--final-delay", "0.5", "--reply-delay", "0.5"),
    ]
    log = (DEMO / "emulator.log").open("w")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        base_url = _wait_for_start_line(process)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for_start_line(process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise DemoError(f"the emulator exited early; see {DEMO / 'emulator.log'}")
        found = re.search(r"(http://127\.0\.0\.1:\d+/api)", line)
        if found:
            return found.group(1)
    raise DemoError("the emulator did not start within 60 s")


def airflow_env(base_url: str) -> dict[str, str]:
    connection = {"conn_type": "smsnexus", "host": base_url, "password": TOKEN}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT": json.dumps(connection),
        "SMSNEXUS_EXPORT_DIR": str(DEMO / "exports"),
        # The example campaign texts each recipient only at 08:00-21:00 of their own time (its send_window);
        # at night in New York it would wait for morning. The demo runs at any hour, so it sends at once.
        "SMSNEXUS_SEND_WINDOW": "",
    }


def airflow(env: dict[str, str], *args: str, name: str) -> None:
    """Run one ``airflow`` command, its output kept in ``.demo/<name>.log``."""
    log_path = DEMO / f"{name}.log"
    with log_path.open("w") as log:
        result = subprocess.run([str(BIN / "airflow"), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise DemoError(
            f"`airflow {' '.join(args)}` failed (exit {result.returncode}); log: {log_path}\n{tail}"
        )


def return_values(dag_id: str) -> dict[str, Any]:
    """The XCom return values of the latest run of ``dag_id``, by task id."""
    with sqlite3.connect(DEMO / "airflow" / "airflow.db") as db:
        rows = db.execute(
            "select task_id, value from xcom where dag_id = ? and key = 'return_value' order by timestamp",
            (dag_id,),
        ).fetchall()
    values: dict[str, Any] = {}
    for task_id, value in rows:
        values[task_id] = json.loads(value) if isinstance(value, str | bytes) else value
    return values


def task_states(dag_id: str) -> dict[str, str]:
    with sqlite3.connect(DEMO / "airflow" / "airflow.db") as db:
        return dict(
            db.execute("select task_id, state from task_instance where dag_id = ?", (dag_id,)).fetchall()
        )


def opt_out_two_recipients(base_url: str) -> None:
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    admin = EmulatorAdmin(base_url.removesuffix("/api"))
    for number in OPTED_OUT:
        admin.add_inbound(from_number=number, to_number="+12125550100", body="STOP")


def summarise_campaign() -> list[str]:
    result = next((v for k, v in return_values(CAMPAIGN_DAG).items() if k == "summarise"), None)
    if result is None:
        raise DemoError("campaign_send left no result")
    lines = [
        f"Campaign {result['campaign_id']}: {result['sent']} texts sent of {result['total']} rows "
        f"({result['credits_used']} credits; {result['credits_estimated']} estimated).",
        f"  skipped: {result['invalid']} invalid, {result['duplicates']} duplicates, "
        f"{result['suppressed']} opted out or suppressed; {result['failed']} failed, {result['unknown']} unknown.",
    ]
    reports = sorted((DEMO / "reports").rglob("partition-*.parquet"))
    if reports:
        import pyarrow.parquet as pq

        rows = sorted(
            (r for path in reports for r in pq.read_table(path).to_pylist()), key=lambda r: r["row_number"]
        )
        lines.append(f"  reports: {reports[0].parent.relative_to(REPO)}/partition-*.parquet")
        lines.extend(
            f"    row {r['row_number']}: {r['outcome']} ({r['reason']})"
            for r in rows
            if r["outcome"] != "sent"
        )
    return lines


def summarise_export() -> list[str]:
    lines = []
    for task_id, value in sorted(return_values("nightly_export").items()):
        if isinstance(value, dict) and "rows" in value:
            lines.append(
                f"Export {task_id}: {value['rows']} {value['resource']} rows in {value['pages']} pages "
                f"-> {value['destination']}"
            )
    if not lines:
        raise DemoError("nightly_export left no result")
    return lines


def summarise_alert() -> list[str]:
    states = task_states("low_credit_alert")
    fired = states.get("page_on_call") == "success"
    texted = return_values("low_credit_alert").get("page_on_call")
    if fired:
        return [f"Low-credit alert fired: {texted} on-call numbers texted."]
    return [f"Low-credit alert did not fire (task states: {states})."]


CUSTOMER = "+12125550130"  # a recipient of the campaign
CUSTOMER_REPLY = "YES please! What time do you open on Saturday?"


def customer_replies(base_url: str) -> dict[str, Any]:
    """The customer answers the campaign: typed through the emulator's inspection API, as the inbox
    page's reply box does; the API sees it as any inbound message."""
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    admin = EmulatorAdmin(base_url.removesuffix("/api"))
    return admin.add_inbound(from_number=CUSTOMER, to_number="+12125550100", body=CUSTOMER_REPLY)


def run_inbound_dag(env: dict[str, str], reply: dict[str, Any]) -> dict[str, Any]:
    """scripts/demo_two_way.py: the watcher's trigger polls, Airflow records the asset events, and
    dag.test() runs smsnexus_inbound_replies for them."""
    env = {**env, "SMSNEXUS_INBOUND_SINCE": reply["created_at"]}  # only replies from the campaign on
    log_path = DEMO / "inbound_replies.log"
    with log_path.open("w") as log:
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "demo_two_way.py"), str(reply["id"])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise DemoError(f"the inbound DAG did not succeed (exit {result.returncode}); log: {log_path}")
    return json.loads(lines[-1])


def summarise_two_way(base_url: str, reply: dict[str, Any], inbound: dict[str, Any]) -> list[str]:
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

    admin = EmulatorAdmin(base_url.removesuffix("/api"))
    answers = [m for m in admin.sent_messages() if m["body"].startswith("Thanks, we got your message")]
    mine = [m for m in answers if m["to"] == CUSTOMER]
    lines = [
        f"Customer {CUSTOMER} replied {reply['body']!r} (message {reply['id']}, typed through the "
        "emulator's inspection API).",
        f"  smsnexus_inbound_replies run {inbound['run_id']}: {inbound['state']}, for "
        f"{len(inbound['events'])} asset event(s) (messages {', '.join(map(str, inbound['events']))}).",
        "  What drove it: the DAG's AssetWatcher trigger, polled in the demo's process (no triggerer runs "
        "here); its events recorded by Airflow's AssetManager and consumed by a dag.test() run.",
        f"  Answer texted back to {CUSTOMER}: {mine[0]['body']!r}" if mine else "  No answer texted back!",
    ]
    delivery = return_values(CAMPAIGN_DAG).get("delivery_report")
    if isinstance(delivery, dict):
        rate = delivery.get("delivery_rate")
        lines.append(
            f"Delivery report of campaign {delivery.get('campaign_id')}: {delivery.get('delivered')} delivered, "
            f"{delivery.get('failed')} failed, {delivery.get('pending')} pending of {delivery.get('total')} "
            f"(delivery rate {'n/a' if rate is None else f'{rate:.0%}'}; "
            f"{'final' if delivery.get('complete') else 'not final at the timeout'})."
        )
    else:
        lines.append(f"Delivery report: none (task states: {task_states(CAMPAIGN_DAG)}).")
    return lines


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    started = time.monotonic()
    try:
        with emulator() as base_url:
            step(f"Emulator up at {base_url} with 3,000 messages of history and 1,500 credits")
            opt_out_two_recipients(base_url)
            env = airflow_env(base_url)
            step("Preparing an embedded SQLite metadata database in .demo/airflow")
            airflow(env, "db", "migrate", name="db-migrate")
            step(
                "Running smsnexus_campaign_send (recipients from dags/campaign_recipients.csv; send window off)"
            )
            conf = json.dumps({"report_dir": str(DEMO / "reports")})
            airflow(env, "dags", "test", CAMPAIGN_DAG, LOGICAL_DATE, "-c", conf, name="campaign_send")
            step(f"Customer {CUSTOMER} replies to the campaign (through the emulator's inspection API)")
            reply = customer_replies(base_url)
            step("The reply starts smsnexus_inbound_replies (its asset watcher's trigger, polled here)")
            inbound = run_inbound_dag(env, reply)
            two_way = summarise_two_way(base_url, reply, inbound)
            step("Running nightly_export (Parquet and the embedded SQLite warehouse)")
            airflow(env, "dags", "test", "nightly_export", LOGICAL_DATE, name="nightly_export")
            step(f"Running low_credit_alert with a threshold of {ALERT_THRESHOLD} credits")
            conf = json.dumps({"threshold": ALERT_THRESHOLD})
            airflow(
                env, "dags", "test", "low_credit_alert", LOGICAL_DATE, "-c", conf, name="low_credit_alert"
            )
            summary = [*summarise_campaign(), *two_way, *summarise_export(), *summarise_alert()]
    except DemoError as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
        return 1
    print("\n" + "\n".join(summary))
    print(f"\nDone in {time.monotonic() - started:.0f} s. Logs and outputs: {DEMO.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
