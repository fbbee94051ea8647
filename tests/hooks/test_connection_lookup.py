"""Connection lookup from an event loop: a trigger run inline by ``dag.test()`` (as ``airflow dags test`` runs
it) finds a connection stored with ``airflow connections add``; a connection defined nowhere fails saying
where to define it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusConnectionNotFoundError
from airflow_provider_smsnexus.hooks._config import aget_connection
from airflow_provider_smsnexus.triggers.balance import SMSNexusBalanceTrigger

# A deferrable balance sensor: its first check runs in the task, then it defers. The trigger checks once more
# (the poke interval is longer than the timeout) and ends at the deadline; soft_fail makes that a skip.
SENSOR_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    SMSNexusBalanceSensor(
        task_id="check_balance",
        threshold=1,
        smsnexus_conn_id="{conn_id}",
        deferrable=True,
        poke_interval=60,
        timeout=2,
        soft_fail=True,
    )
"""

TOKEN_PREFIX = "SMSNEXUS-TEST-TOKEN-db-"


def add_connection_with_the_cli(conn_id: str, host: str, token: str) -> None:
    """``airflow connections add``, as a user runs it, into the suite's metadata database."""
    from airflow.configuration import conf

    conn = {"conn_type": "smsnexus", "host": host, "password": token}
    # Airflow's unit-test mode makes a Fernet key per process: the CLI must encrypt with this process's key.
    env = {**os.environ, "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key")}
    added = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "add", conn_id, "--conn-json", json.dumps(conn)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert added.returncode == 0, "airflow connections add failed"


def test_a_trigger_run_inline_by_dag_test_reads_a_connection_added_with_the_cli(
    airflow_db, smsnexus_emulator, dags_folder_of, parse_dag, monkeypatch
):
    suffix = uuid.uuid4().hex[:8]
    conn_id, dag_id = f"smsnexus_db_{suffix}", f"connection_lookup_{suffix}"
    account = smsnexus_emulator.admin.add_account(TOKEN_PREFIX + suffix)
    monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    add_connection_with_the_cli(conn_id, smsnexus_emulator.base_url, TOKEN_PREFIX + suffix)

    folder = dags_folder_of(sources={"sensor_dag.py": SENSOR_DAG.format(dag_id=dag_id, conn_id=conn_id)})
    run = parse_dag(folder, dag_id).test()

    (ti,) = run.get_task_instances()
    # Skipped at the trigger's deadline; a trigger that could not read the connection fails the task.
    assert ti.state == "skipped"
    # The emulator's record: the account of the stored connection answered the task's check and the trigger's
    # (one or two of those: at its start, and at the deadline if it started before it).
    assert smsnexus_emulator.admin.stats()["accounts"][str(account)]["other"]["requests"] in {2, 3}


def test_a_connection_defined_nowhere_fails_naming_where_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMSNEXUS_NOWHERE", raising=False)

    with pytest.raises(SMSNexusConnectionNotFoundError) as caught:
        asyncio.run(aget_connection("smsnexus_nowhere"))

    from airflow.sdk.exceptions import AirflowNotFoundException

    assert isinstance(caught.value, AirflowNotFoundException)
    assert caught.value.conn_id == "smsnexus_nowhere"
    text = str(caught.value)
    assert "airflow connections add smsnexus_nowhere --conn-type smsnexus" in text
    assert "AIRFLOW_CONN_SMSNEXUS_NOWHERE" in text


def test_a_trigger_without_its_connection_ends_with_an_error_event_that_says_what_to_do(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMSNEXUS_NOWHERE", raising=False)
    trigger = SMSNexusBalanceTrigger(threshold=1, smsnexus_conn_id="smsnexus_nowhere", poke_interval=60)

    event = asyncio.run(asyncio.wait_for(anext(trigger.run()), 60))

    assert event.payload["status"] == "error"
    assert "AIRFLOW_CONN_SMSNEXUS_NOWHERE" in event.payload["message"]
