"""The example campaign DAG: it imports cleanly, and it runs against the emulator with dag.test()."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILE = DAGS_FOLDER / "campaign_send.py"
# campaign_recipients.csv: rows 1-5 and 10-12 are sendable; 6 repeats row 1; 7, 8 and 9 are invalid.
EXPECTED = [f"+1212555{n:04d}" for n in (130, 131, 132, 133, 134, 135, 136, 137)]


@pytest.fixture
def dags_folder(monkeypatch):
    """Airflow 3's dag.test() loads the DAG from its DAG bundle: point the bundle at the repository's dags/.

    ``[core] dags_folder`` alone is not enough once anything imported Airflow earlier in the session: the
    default bundle's path is fixed when Airflow's settings load. The bundle list is read when used.
    """
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    # The emulator's manual lifecycle keeps the texts queued: the delivery report waits 3 s, not 600.
    monkeypatch.setenv("SMSNEXUS_DELIVERY_WAIT_SECONDS", "3")
    # Any hour: the send window (US federal by default) would defer the campaign through New York's night;
    # test_the_example_campaign_keeps_to_new_yorks_daytime runs it with the window.
    monkeypatch.setenv("SMSNEXUS_SEND_WINDOW", "")
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(DAGS_FOLDER)},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    return DAGS_FOLDER


def test_the_dag_imports_cleanly(airflow_db, dags_folder):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dag = bag.get_dag("smsnexus_campaign_send")
    assert set(dag.task_ids) == {"check_campaign", "send_campaign", "summarise", "delivery_report"}


def test_the_dag_runs_and_texts_each_valid_recipient_once(
    airflow_db, dags_folder, smsnexus_conn, smsnexus_emulator, tmp_path
):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAG_FILE)).get_dag("smsnexus_campaign_send")
    run = dag.test(run_conf={"report_dir": str(tmp_path)})
    assert run.state == "success"
    sent = smsnexus_emulator.admin.sent_messages()
    assert Counter(m["to"] for m in sent) == dict.fromkeys(EXPECTED, 1)
    assert all(m["body"].startswith("Hi ") and "Corner Shop" in m["body"] for m in sent)
    (dry_run,) = tmp_path.rglob("dry-run.parquet")
    assert Counter(pd.read_parquet(dry_run)["outcome"]) == {"dry_run": 8, "invalid": 3, "duplicate": 1}
    reports = pd.concat(pd.read_parquet(p) for p in sorted(tmp_path.rglob("partition-*.parquet")))
    assert sorted(reports["row_number"]) == list(range(1, 13))
    assert Counter(reports["outcome"]) == {"sent": 8, "invalid": 3, "duplicate": 1}


def test_the_dag_runs_without_a_logical_date_as_the_cli_triggers_it(
    airflow_db, dags_folder, smsnexus_conn, smsnexus_emulator, tmp_path
):
    # `airflow dags trigger` and the REST API leave the logical date unset in Airflow 3: no ds, ds_nodash or
    # logical_date in the context. The dates in the text and the report paths come from the run's run_after.
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAG_FILE)).get_dag("smsnexus_campaign_send")
    run = dag.test(logical_date=None, run_conf={"report_dir": str(tmp_path)})
    assert run.state == "success"
    assert run.logical_date is None
    opening_day = (run.run_after + timedelta(days=7)).strftime("%Y-%m-%d")
    sent = smsnexus_emulator.admin.sent_messages()
    assert Counter(m["to"] for m in sent) == dict.fromkeys(EXPECTED, 1)
    assert all(f" on {opening_day}. Reply STOP" in m["body"] for m in sent)
    run_folder = tmp_path / run.run_after.strftime("%Y%m%d") / run.run_id.replace(":", "_")
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "dry-run.parquet",
        "partition-0.parquet",
        "partition-1.parquet",
    ]


def test_the_example_campaign_keeps_to_new_yorks_daytime(
    airflow_db, dags_folder, smsnexus_conn, smsnexus_emulator, tmp_path, monkeypatch
):
    # The example's default window, on a server clock set to 10:00 in New York (the CSV's numbers are all 212)
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SMSNEXUS_SEND_WINDOW", "us_federal")
    now = datetime.now(timezone.utc)
    ten_am = now.astimezone(ZoneInfo("America/New_York")).replace(hour=10, minute=0, second=0, microsecond=0)
    admin = smsnexus_emulator.admin
    admin.configure(clock_offset_seconds=(ten_am - now).total_seconds())
    dag = DagBag(dag_folder=str(DAG_FILE)).get_dag("smsnexus_campaign_send")
    assert dag.params["send_window"] == "us_federal"

    run = dag.test(run_conf={"report_dir": str(tmp_path)})

    assert run.state == "success"
    sent = admin.sent_messages()
    assert Counter(m["to"] for m in sent) == dict.fromkeys(EXPECTED, 1)
    for message in sent:
        created = datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))
        local = created.astimezone(ZoneInfo("America/New_York"))
        assert ten_am <= local < ten_am + timedelta(minutes=5)
    reports = pd.concat(pd.read_parquet(p) for p in sorted(tmp_path.rglob("partition-*.parquet")))
    sent_rows = reports[reports["outcome"] == "sent"]
    assert set(sent_rows["zones"]) == {"America/New_York"}
    assert all(text.startswith(ten_am.strftime("%Y-%m-%dT10:0")) for text in sent_rows["local_time"])
