"""SIGKILL at chosen points: a campaign task killed at eight distinct points (and at random moments) and
rerun texts every recipient exactly once; an export killed mid-run leaves its destination as it was."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from tests.hostile.hostile_support import (
    SENDER,
    Worker,
    attempt,
    exactly_once,
    national,
    no_token,
    task_context,
    valid_numbers,
    wait_for,
    wait_for_file,
)

if TYPE_CHECKING:
    from pathlib import Path

RECIPIENTS = 80
CAMPAIGN = "hostile-kills"
#: The campaign's connection extras: quick retries, and a client timeout of 3 s (longer than any delay the
#: tests give the server: the slowest is 2.5 s), and a listing delay of 1 s (the emulator lists at once).
QUICK_RETRIES = {"retry_backoff": 0.01, "retry_backoff_max": 0.05, "timeout": 3, "listing_delay": 1}
#: A short lease: a rerun takes a killed attempt's rows over, and looks them up, after its fence (the mark plus
#: the lease), the request's longest time (twice the timeout) and the listing delay.
QUICK_LEASE = 4


class KillLog:
    """The kills of one test: each one at a named point, counted in the figures."""

    def __init__(self, figures: Any) -> None:
        self.figures = figures
        self.points: list[str] = []

    def kill(self, worker: Worker, point: str) -> None:
        assert worker.kill(), f"the worker had ended before the kill at {point!r}: {worker.stderr[-3000:]}"
        assert no_token(self.figures, worker.stdout, worker.stderr)
        self.points.append(point)
        self.figures.add("kills")


def recipients_csv(path: Path) -> tuple[str, list[str]]:
    valid = valid_numbers(RECIPIENTS)
    rows = [national(n) if i % 5 == 0 else n for i, n in enumerate(valid)] + ["+1555", "", "not a number"]
    pd.DataFrame({"to": rows, "name": [f"N{i}" for i in range(len(rows))]}).to_csv(path, index=False)
    return str(path), valid


@pytest.mark.slow
def test_a_campaign_killed_at_eight_points_and_at_random_is_sent_exactly_once(
    smsnexus_conn, smsnexus_emulator, ledger_home, tmp_path, figures, monkeypatch
):
    admin = smsnexus_emulator.admin
    # A short client timeout: a rerun waits that long (plus the settle time) for the killed attempt's
    # requests that may still be in flight before it looks them up.
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**QUICK_RETRIES))
    recipients, valid = recipients_csv(tmp_path / "recipients.csv")
    base = {
        "kind": "campaign",
        "recipients": recipients,
        "message_template": "Hi {{ row.name }}",
        "from_number": SENDER,
        "default_region": "US",
        "honor_opt_outs": False,
        "campaign_id": CAMPAIGN,
        "max_failure_rate": 1,
        "lease_seconds": QUICK_LEASE,
    }
    kills = KillLog(figures)
    rng = random.Random(8)
    flags = iter(tmp_path / f"flag-{n}" for n in range(100))

    def sent() -> int:
        return len(admin.sent_messages())

    def start(pause: dict[str, Any] | None = None, **faults: Any) -> tuple[Worker, Path]:
        admin.set_faults(**faults)
        flag = next(flags)
        spec = {**base, "report_path": str(tmp_path / f"{flag.name}.parquet")}
        if pause:
            spec["pause"] = {**pause, "flag": str(flag)}
        figures.add("campaign_runs_through_kills")
        return Worker(spec, airflow_home=ledger_home), flag

    def kill_at_pause(point: str, pause: dict[str, Any], **faults: Any) -> None:
        worker, flag = start(pause, **faults)
        assert wait_for_file(worker, flag), worker.stderr[-3000:]
        kills.kill(worker, point)

    def kill_after_sends(point: str, count: int, **faults: Any) -> None:
        worker, _ = start(**faults)
        target = sent() + count
        assert worker.wait_until(lambda: sent() >= target), worker.stderr[-3000:]
        kills.kill(worker, point)

    # 1. Before any send: the recipients are read and checked, the ledger is opened.
    kill_at_pause("during the pre-flight check", {"at": "preflight"})
    # 2. In the middle of sending, at a random row.
    kill_after_sends("mid-campaign, at a random row", rng.randint(3, 10), latency_ms=10)
    # 3. The ledger holds the row as pending; the request has not left.
    kill_at_pause("after the pending mark, before the request", {"at": "before_request", "after": 3})
    # 4. The request's bytes are written to the socket; the slow server has not processed it yet (and
    # will, after the kill). The flag is written once the request is on the wire: no guessing by a sleep.
    before = sent()
    worker, flag = start({"at": "request_written", "method": "POST", "sleep": False}, latency_ms=1500)
    assert wait_for_file(worker, flag), worker.stderr[-3000:]
    kills.kill(worker, "request sent, server not yet done")
    assert sent() == before, "the server had already processed it: not the scenario of this step"
    assert wait_for(lambda: sent() > before, timeout=10)  # the server went on with it
    # 5. The server processed the send; its answer is held back: the client dies before it hears.
    before = sent()
    worker, flag = start({"at": "before_request", "sleep": False}, send_hold_ms=2500)
    assert wait_for_file(worker, flag), worker.stderr[-3000:]
    assert worker.wait_until(lambda: sent() > before, timeout=20), worker.stderr[-3000:]
    kills.kill(worker, "processed by the server, answer not yet received")
    held = admin.sent_messages()[-1]["to"]
    assert ledger_states(ledger_home, admin, held) == ["pending"], "the answer was recorded before the kill"
    # 6. The answers arrived; the ledger's group commit of 'sent' has not happened.
    kill_at_pause(
        "answers received, before the ledger records them",
        {"at": "before_ledger_sent", "caller": "_record_sent"},
        latency_ms=400,  # a few answers in the group's first second: rows are left for the kills below
    )
    # 7. Two more kills at random rows.
    for _ in range(2):
        kill_after_sends("mid-campaign, at a random row", rng.randint(2, 8), latency_ms=10)
    # 8. Answers lost (500 after processing): killed while waiting to look them up.
    kill_at_pause(
        "waiting to look up lost answers", {"at": "settle_unknown"}, fail_after_share=0.5, random_seed=9
    )
    # 9. The rerun is looking up what the killed runs left pending: killed during that lookup.
    kill_at_pause("the rerun's lookup of pending sends", {"at": "lookup"})

    admin.set_faults()
    so_far = [m["to"] for m in admin.sent_messages()]
    assert len(so_far) == len(set(so_far)), "a killed attempt's rerun texted someone twice"
    # The last kill came inside a lookup of rows left pending: the ledger must show unfinished rows.
    states = Counter(ledger_states(ledger_home, admin, None))
    assert states["sent"] < RECIPIENTS, f"the kills left nothing for the rerun to settle: {states}"
    final = {k: v for k, v in base.items() if k != "kind"}
    for _ in range(3):  # reruns until the task succeeds, as Airflow's retries would
        figures.add("campaign_runs_through_kills")
        summary, error = attempt(
            lambda: SMSNexusBulkSendOperator(task_id="send", **final).execute(task_context())
        )
        assert no_token(figures, str(error))
        if error is None:
            break
    assert error is None, error
    assert summary["unknown"] == summary["failed"] == 0
    texted = [m["to"] for m in admin.sent_messages()]
    assert exactly_once(figures, texted, valid) == (0, 0, 0)
    assert len(set(kills.points)) >= 8
    figures.add("kills_survived", len(kills.points))
    figures.add("campaigns_through_kills")
    figures.add("messages_through_kills", len(texted))
    figures.note("kill_points", sorted(set(kills.points)))


@pytest.mark.slow
def test_a_rerun_at_once_after_a_kill_waits_for_a_send_the_server_is_still_processing(
    smsnexus_conn, smsnexus_emulator, ledger_home, tmp_path, figures, monkeypatch
):
    # The worker died while its request sat in a slow server; the scheduler reruns the task at once and the
    # server has recovered. The pending row is younger than the request timeout: its message may still
    # appear, so the rerun must not take 'not found yet' for 'not sent'.
    admin = smsnexus_emulator.admin
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**QUICK_RETRIES))
    recipients, valid = recipients_csv(tmp_path / "recipients.csv")
    spec = {
        "kind": "campaign",
        "recipients": recipients,
        "message_template": "Hi {{ row.name }}",
        "from_number": SENDER,
        "default_region": "US",
        "honor_opt_outs": False,
        "campaign_id": "hostile-quick-rerun",
        "lease_seconds": QUICK_LEASE,
        "pause": {
            "at": "request_written",
            "method": "POST",
            "after": 2,
            "sleep": False,
            "flag": str(tmp_path / "flag"),
        },
    }
    admin.set_faults(latency_ms=2500)  # the server is slow (each request waits 2.5 s on arrival)...
    worker = Worker(spec, airflow_home=ledger_home)
    assert wait_for_file(worker, tmp_path / "flag"), worker.stderr[-3000:]  # the 2nd send is on the wire
    KillLog(figures).kill(worker, "request sent to a slow server")
    admin.set_faults()  # ... and recovers as the rerun starts
    in_flight = len(admin.sent_messages())
    assert in_flight == 1, "the second request was no longer inside the slow server at the kill"
    rerun = {k: v for k, v in spec.items() if k not in ("kind", "pause")}
    # Refusing to decide yet (a typed error) is fine: a later rerun settles it.
    _, error = attempt(lambda: SMSNexusBulkSendOperator(task_id="send", **rerun).execute(task_context()))
    assert no_token(figures, str(error))
    # The slow request reaches the front of the server's queue 2.5 s after it arrived, whatever the rerun did.
    assert wait_for(lambda: len(admin.sent_messages()) > in_flight, timeout=15)
    time.sleep(3)
    for _ in range(4):  # reruns until the task succeeds, as Airflow's retries would
        _, error = attempt(lambda: SMSNexusBulkSendOperator(task_id="send", **rerun).execute(task_context()))
        assert no_token(figures, str(error))
        if error is None:
            break
        time.sleep(5)
    assert error is None, error
    texted = [m["to"] for m in admin.sent_messages()]
    assert exactly_once(figures, texted, valid) == (0, 0, 0)
    figures.add("kills_survived")


def ledger_states(ledger_home: Path, admin, recipient: str | None) -> list[str]:
    """The states of ``recipient``'s rows (None: every row) in the test's embedded ledger, read directly."""
    from airflow_provider_smsnexus.campaign.ledger import SendLedger

    campaign = admin.ledger_campaign(CAMPAIGN)  # scoped to this emulator run
    with SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db") as ledger:
        return [entry.state for entry in ledger.entries(campaign, None if recipient is None else [recipient])]


# -- exports ------------------------------------------------------------------------------------------------


def seed_history(admin) -> datetime:
    now = datetime.now(timezone.utc)
    first = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    admin.seed_messages(3_000, random_seed=5, start=first, end=now - timedelta(minutes=5))
    return first


def new_traffic(admin, count: int = 40) -> None:
    """Messages that arrived since the last export: a rerun would change today's partition / rows."""
    for n in range(count):
        admin.add_inbound(valid_numbers(count)[n], SENDER, f"new since the last export {n}")


def parquet_state(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_parquet_export_killed_mid_run_leaves_the_destination_as_it_was(
    smsnexus_conn, smsnexus_emulator, ledger_home, tmp_path, figures
):
    import pyarrow.dataset as ds

    from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator

    admin = smsnexus_emulator.admin
    first = seed_history(admin)
    destination = tmp_path / "export" / "messages"
    spec = {"kind": "parquet", "path": str(destination), "window_start": first.isoformat(), "per_page": 100}
    SMSNexusToParquetOperator(task_id="export", path=str(destination), window_start=first).execute({})
    earlier = parquet_state(destination)
    earlier_rows = ds.dataset(str(destination), partitioning="hive").to_table().sort_by("id").to_pylist()
    new_traffic(admin)
    kills = KillLog(figures)

    # While reading pages: nothing was written yet.
    worker = Worker(
        {**spec, "pause": {"at": "page", "after": 10, "flag": str(tmp_path / "f1")}}, airflow_home=ledger_home
    )
    assert wait_for_file(worker, tmp_path / "f1"), worker.stderr[-3000:]
    kills.kill(worker, "export: reading pages")
    assert parquet_state(destination) == earlier

    # Between two partitions' atomic replaces: the days already replaced hold the same rows (history does
    # not change), today's partition is still the earlier one; every file reads whole.
    worker = Worker(
        {**spec, "pause": {"at": "parquet_publish", "after": 1, "flag": str(tmp_path / "f2")}},
        airflow_home=ledger_home,
    )
    assert wait_for_file(worker, tmp_path / "f2"), worker.stderr[-3000:]
    kills.kill(worker, "export: between two partitions' replaces")
    rows = ds.dataset(str(destination), partitioning="hive").to_table().sort_by("id").to_pylist()
    assert rows == earlier_rows
    assert sorted(parquet_state(destination)) == sorted(earlier)  # no new, no half-written files
    assert not [p for p in destination.rglob("*") if "staging" in p.name or p.name.endswith(".tmp")]

    result = SMSNexusToParquetOperator(task_id="export", path=str(destination), window_start=first).execute(
        {}
    )
    ids = ds.dataset(str(destination), partitioning="hive").to_table(columns=["id"]).column("id").to_pylist()
    end = datetime.fromisoformat(result["window_end"].replace("Z", "+00:00"))
    expected = [
        m["id"]
        for m in admin.messages()
        if first <= datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")) < end
    ]
    assert exactly_once(figures, ids, expected) == (0, 0, 0)
    figures.add("kills_survived", len(kills.points))
    figures.add("exports_through_kills")


@pytest.mark.slow
def test_a_postgres_export_killed_mid_run_and_mid_transaction_leaves_the_table_as_it_was(
    smsnexus_conn, smsnexus_emulator, postgres_conn_id, ledger_home, tmp_path, figures
):
    import sqlalchemy as sa
    from airflow.sdk import BaseHook

    from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator

    admin = smsnexus_emulator.admin
    first = seed_history(admin)
    table = f"hostile_kill_{uuid.uuid4().hex[:8]}"
    engine = BaseHook.get_connection(postgres_conn_id).get_hook().get_sqlalchemy_engine()

    def rows() -> list[tuple]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id'))]

    operator_args = {"sql_conn_id": postgres_conn_id, "table": table, "mode": "replace"}
    spec = {"kind": "sql", "window_start": first.isoformat(), **operator_args}
    kills = KillLog(figures)
    try:
        SMSNexusToSqlOperator(task_id="export", window_start=first, **operator_args).execute({})
        earlier = rows()
        new_traffic(admin)
        for point, pause in (
            ("export: reading pages", {"at": "page", "after": 10}),
            ("export: inside the load transaction", {"at": "sql_load"}),
        ):
            flag = tmp_path / f"flag-{len(kills.points)}"
            worker = Worker({**spec, "pause": {**pause, "flag": str(flag)}}, airflow_home=ledger_home)
            assert wait_for_file(worker, flag), worker.stderr[-3000:]
            kills.kill(worker, point)
            assert rows() == earlier  # 'replace' had emptied the table inside the killed transaction
        result = SMSNexusToSqlOperator(task_id="export", window_start=first, **operator_args).execute({})
        end = datetime.fromisoformat(result["window_end"].replace("Z", "+00:00"))
        expected = [
            m["id"]
            for m in admin.messages()
            if first <= datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")) < end
        ]
        assert exactly_once(figures, [r[0] for r in rows()], expected) == (0, 0, 0)
        figures.add("kills_survived", len(kills.points))
        figures.add("exports_through_kills")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()
