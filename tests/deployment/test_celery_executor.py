"""A mapped campaign on two real Celery workers, with the send ledger in PostgreSQL.

Redis (Debian's ``redis-server``, on a free port) is the broker; the scheduler, the dag-processor, the
api-server and two ``airflow celery worker`` processes (one task at a time each) run from the installed
package, with their metadata and the Celery results in a fresh PostgreSQL database that also holds the
ledger the workers share. The emulator's send limit is one-second windows, and each worker gets its share
of it as the README's mapped example says.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.deployment.conftest import REQUIRED
from tests.deployment.deployment_support import (
    AIRFLOW,
    QUICK_LIFECYCLE,
    Airflow,
    EmulatorProcess,
    binary_missing,
    free_port,
    require,
    wait_for,
)

pytestmark = [pytest.mark.deployment, pytest.mark.slow, pytest.mark.timeout(600)]

#: Longer than the test needs to see both partitions running on a loaded machine; shorter than the
#: connection's 30 s read timeout.
SEND_HOLD_MS = 15_000
CAMPAIGN = [f"+1212555{n:04d}" for n in (130, 131, 132, 133, 134, 135, 136, 137)]
SEND_LIMIT = 4  # per second, for the account
PARTITIONS = 2  # dags/campaign_send.py


def celery_missing() -> str | None:
    try:
        import airflow.providers.celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as error:
        return f"the celery extra is not installed ({error.name}): pip install -e '.[celery]'"
    return None


def test_a_mapped_campaign_on_two_celery_workers_texts_everyone_once(tmp_path, processes, database):
    require(binary_missing("redis-server") or celery_missing(), REQUIRED, "the Celery deployment test")
    redis_port = free_port()
    processes.start(
        "redis",
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        os.environ,
    )
    wait_for("redis", lambda: "Ready to accept connections" in processes.log_text("redis"), timeout=30)
    emulator = EmulatorProcess(
        processes, *QUICK_LIFECYCLE, "--send-limit", str(SEND_LIMIT), "--window-seconds", "1"
    )
    admin = emulator.admin
    # Each worker its share of the account's send limit (the README's mapped example).
    connection = emulator.connection_json(
        send_rate_limit=SEND_LIMIT // PARTITIONS, rate_limit_period=1, retry_backoff=0.2, retry_backoff_max=1
    )
    airflow = Airflow(
        tmp_path / "airflow",
        processes,
        database,
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW_CONN_SMSNEXUS_DEFAULT": connection,
            # The ledger both workers share: a table in this deployment's PostgreSQL database.
            "AIRFLOW_CONN_SMSNEXUS_LEDGER": database.url,
            "SMSNEXUS_LEDGER_CONN_ID": "smsnexus_ledger",
        },
    )
    airflow.start("api-server", "scheduler", "dag-processor", "triggerer")
    for worker in ("worker-1", "worker-2"):
        # Each serves its logs on a port of its own: two workers on one machine.
        env = {**airflow.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        processes.start(
            f"celery-{worker}",
            [
                AIRFLOW,
                "celery",
                "worker",
                "-H",
                f"{worker}@%h",
                "-c",
                "1",
                "--without-mingle",
                "--without-gossip",
            ],
            env,
        )
    for worker in ("worker-1", "worker-2"):
        wait_for(
            f"Celery {worker}",
            lambda w=worker: " ready." in processes.log_text(f"celery-{w}"),
            timeout=120,
            logs=processes,
        )
    airflow.wait_for_dags({"smsnexus_campaign_send"})
    airflow.cli("dags", "unpause", "smsnexus_campaign_send")
    processes.remember_descendants()

    # Every send's answer is held until both partitions are running at once: each worker runs one task at a
    # time (concurrency 1), so two running partitions are on two workers.
    admin.configure(send_hold_ms=SEND_HOLD_MS)
    run_id = airflow.trigger("smsnexus_campaign_send", {"report_dir": str(tmp_path / "reports")})

    def both_partitions_running() -> bool:
        states = {
            ti["map_index"]: ti["state"]
            for ti in airflow.task_instances("smsnexus_campaign_send", run_id)
            if ti["task_id"] == "send_campaign"
        }
        return [states.get(p) for p in range(PARTITIONS)] == ["running"] * PARTITIONS

    wait_for("both partitions running at once", both_partitions_running, timeout=180, logs=processes)
    admin.configure(send_hold_ms=0)
    run = airflow.wait_for_run("smsnexus_campaign_send", run_id, timeout=300)

    assert run["state"] == "success", processes.tails()
    tries = {
        (ti["task_id"], ti["map_index"]): (ti["state"], ti["try_number"])
        for ti in airflow.task_instances("smsnexus_campaign_send", run_id)
    }
    # No task failed, from rate contention or anything else: every one succeeded at its first try.
    assert set(tries.values()) == {("success", 1)}
    assert Counter(m["to"] for m in admin.sent_messages()) == dict.fromkeys(CAMPAIGN, 1)
    # Each worker's own log shows it ran a partition.
    ran = {
        w: processes.log_text(f"celery-{w}").count("task_id='send_campaign'")
        for w in ("worker-1", "worker-2")
    }
    assert all(ran.values()), ran
    # The ledger the workers shared holds every recipient, sent.
    import psycopg

    with psycopg.connect(database.url) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE '%ledger%'")
        ]
        assert tables, "no ledger table in PostgreSQL"
        (count,) = conn.execute(f'SELECT count(DISTINCT recipient) FROM "{tables[0]}"').fetchone()
    assert count == len(CAMPAIGN)
