"""dags/sms_approval.py under ``dag.test()`` against the emulator: YES deploys, NO stands down, no answer
fails the run; every run without a logical date, as the CLI and the REST API trigger it.

The test plays the on-call engineer: a thread waits until the emulator's inspection API shows the
question sent, then adds the answer as an inbound message (or, for "no answer", adds nothing).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "sms_approval.py"
ON_CALL = "+12125550142"
OUR_NUMBER = "+12125550100"


@pytest.fixture
def dags_folder(dags_folder_of) -> Path:
    """A DAGs folder holding only this DAG."""
    return dags_folder_of(DAG_FILE)


@pytest.fixture
def load_dag(dags_folder, parse_dag):
    """The DAG, parsed from its folder, its reply sensor quick (``timeout`` seconds, default 30)."""

    def load(*, timeout: float = 30):
        dag = parse_dag(dags_folder, "smsnexus_sms_approval")
        sensor = dag.get_task("wait_for_answer")
        sensor.poke_interval = 0.05
        sensor.timeout = timeout
        return dag

    return load


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


@pytest.mark.parametrize(
    ("answer", "taken", "skipped"),
    [("yes", "deploy", "stand_down"), ("No.", "stand_down", "deploy")],
    ids=["yes_deploys", "no_stands_down"],
)
def test_the_answer_picks_the_branch_on_a_run_without_a_logical_date_and_the_question_is_sent_once(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn, answer, taken, skipped
):
    admin = smsnexus_emulator.admin
    engineer = answer_once_asked(admin, answer)

    dag_run = load_dag().test(logical_date=None)
    engineer.join(5)

    assert dag_run.logical_date is None
    assert states(dag_run) == {
        "ask": "success",
        "wait_for_answer": "success",
        "decide": "success",
        taken: "success",
        skipped: "skipped",
    }
    the_question(admin)
    assert dag_run.state == "success"


def test_no_answer_fails_the_run_and_deploys_nothing(
    load_dag, airflow_db, dags_folder, smsnexus_emulator, smsnexus_conn
):
    admin = smsnexus_emulator.admin
    engineer = answer_once_asked(admin, None)

    dag_run = load_dag(timeout=1).test(logical_date=None)
    engineer.join(5)

    assert dag_run.state == "failed"
    result = states(dag_run)
    assert result["wait_for_answer"] == "failed"
    assert result["deploy"] != "success"
    assert result["stand_down"] != "success"
    the_question(admin)
    # The only inbound message is the non-answer: nothing the DAG could have taken for a YES.
    assert [m["body"] for m in admin.messages(direction="inbound")] == ["what release?"]
