"""dags/sms_approval.py under ``dag.test()`` against the emulator: YES deploys, NO stands down, no answer
fails the run; every run without a logical date, as the CLI and the REST API trigger it.

The test plays the on-call engineer: a thread waits until the emulator's inspection API shows the
question sent, then adds the answer as an inbound message (or, for "no answer", adds nothing).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "sms_approval.py"
ON_CALL = "+12125550142"
OUR_NUMBER = "+12125550100"


@pytest.fixture
def dags_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGs folder holding only this DAG, used by ``dag.test()``'s bundle sync."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(DAG_FILE, folder / DAG_FILE.name)
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder)},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    return folder


def load_dag(folder: Path, *, timeout: float = 30):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    dag = bag.get_dag("smsnexus_sms_approval")
    sensor = dag.get_task("wait_for_answer")
    sensor.poke_interval = 0.05
    sensor.timeout = timeout
    return dag


def answer_once_asked(admin, body: str | None) -> threading.Thread:
    """Once the question shows in the emulator's record, text ``body`` back (None: stay silent)."""

    def play_the_engineer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(m["to"] == ON_CALL for m in admin.sent_messages()):
                break
            time.sleep(0.05)
        else:
            return  # never asked: the test's assertions say so
        admin.add_inbound(ON_CALL, OUR_NUMBER, "what release?")  # not an answer: the wait goes on
        if body is not None:
            admin.add_inbound(ON_CALL, OUR_NUMBER, body)

    thread = threading.Thread(target=play_the_engineer, daemon=True)
    thread.start()
    return thread


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def the_question(admin) -> dict:
    (question,) = admin.sent_messages()
    assert question["to"] == ON_CALL
    assert question["from"] == OUR_NUMBER
    assert question["body"].startswith("Deploy smsnexus_sms_approval run manual__")
    assert question["body"].endswith("Reply YES or NO.")
    return question


def test_yes_deploys_on_a_run_without_a_logical_date(
    airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    engineer = answer_once_asked(admin, "yes")

    dag_run = load_dag(dags_folder).test(logical_date=None)
    engineer.join(5)

    assert dag_run.logical_date is None
    assert states(dag_run) == {
        "ask": "success",
        "wait_for_answer": "success",
        "decide": "success",
        "deploy": "success",
        "stand_down": "skipped",
    }
    the_question(admin)
    assert dag_run.state == "success"


def test_no_stands_down_and_the_question_is_sent_once(
    airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    engineer = answer_once_asked(admin, "No.")

    dag_run = load_dag(dags_folder).test(logical_date=None)
    engineer.join(5)

    assert states(dag_run) == {
        "ask": "success",
        "wait_for_answer": "success",
        "decide": "success",
        "deploy": "skipped",
        "stand_down": "success",
    }
    the_question(admin)
    assert dag_run.state == "success"


def test_no_answer_fails_the_run_and_deploys_nothing(
    airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    engineer = answer_once_asked(admin, None)

    dag_run = load_dag(dags_folder, timeout=1).test(logical_date=None)
    engineer.join(5)

    assert dag_run.state == "failed"
    result = states(dag_run)
    assert result["wait_for_answer"] == "failed"
    assert result["deploy"] != "success"
    assert result["stand_down"] != "success"
    the_question(admin)
    # The only inbound message is the non-answer: nothing the DAG could have taken for a YES.
    assert [m["body"] for m in admin.messages(direction="inbound")] == ["what release?"]
