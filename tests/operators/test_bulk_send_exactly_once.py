"""Each valid recipient texted exactly once: lost answers, killed workers, partitions, pacing, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

import pandas as pd
import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

SENDER = "+12125550100"
#: A rerun looks a killed or unanswered attempt's pending rows up after their fence (the mark plus the lease),
#: the request's longest time (twice the connection's timeout) and the listing delay: short ones here.
QUICK_LEASE = 5
QUICK_TIMEOUT = 3


@pytest.fixture
def smsnexus_conn(smsnexus_emulator, monkeypatch) -> str:
    """The emulator's test connection with a short request timeout."""
    from airflow_provider_smsnexus.emulator.testing import TEST_CONNECTION_EXTRAS

    extras = {**TEST_CONNECTION_EXTRAS, "timeout": QUICK_TIMEOUT}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**extras))
    return "smsnexus_default"


# Runs one campaign task in a fresh interpreter (a worker process that can be killed) and prints its result.
RUNNER = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

    spec = json.loads(sys.argv[1])
    run_id = spec.pop("run_id")
    spec.setdefault("lease_seconds", 5)  # QUICK_LEASE
    operator = SMSNexusBulkSendOperator(task_id="send", from_number="+12125550100", honor_opt_outs=False, **spec)
    print(json.dumps(operator.execute({"run_id": run_id})), flush=True)
    """
)


def numbers(count: int, start: int = 110) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(start, start + count)]


def write_recipients(path, count: int, start: int = 110) -> str:
    pd.DataFrame({"to": numbers(count, start), "name": [f"N{i}" for i in range(count)]}).to_csv(
        path, index=False
    )
    return str(path)


def start_worker(spec: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(spec)],
        env={**os.environ, "AIRFLOW_HOME": os.environ["SMSNEXUS_LEDGER_HOME"]},  # the test's ledger
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def bulk(recipients, **kwargs) -> SMSNexusBulkSendOperator:
    kwargs.setdefault("from_number", SENDER)
    kwargs.setdefault("honor_opt_outs", False)
    kwargs.setdefault("lease_seconds", QUICK_LEASE)
    return SMSNexusBulkSendOperator(
        task_id="send", recipients=recipients, message_template="Hi {{ row.name }}", **kwargs
    )


def recipients_frame(count: int) -> pd.DataFrame:
    return pd.DataFrame({"to": numbers(count), "name": [f"N{i}" for i in range(count)]})


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"fail_after_share": 0.3}, id="500-after-processing"),
        pytest.param({"drop_after_share": 0.3}, id="dropped-after-processing"),
        pytest.param({"fail_before_share": 0.2}, id="500-before-processing"),
    ],
)
def test_lost_answers_are_looked_up_and_every_recipient_is_texted_once(
    smsnexus_conn, smsnexus_emulator, make_context, texted, faults
):
    smsnexus_emulator.admin.set_faults(random_seed=7, **faults)
    summary = bulk(recipients_frame(30)).execute(make_context())
    assert (summary["sent"], summary["failed"], summary["unknown"]) == (30, 0, 0)
    assert Counter(texted()) == dict.fromkeys(numbers(30), 1)
    assert smsnexus_emulator.admin.stats()["faults"] != {"fail_before": 0, "fail_after": 0, "drop_after": 0}


def test_mixed_faults_with_concurrent_sends(smsnexus_conn, smsnexus_emulator, make_context, texted):
    smsnexus_emulator.admin.set_faults(
        fail_after_share=0.1, drop_after_share=0.05, fail_before_share=0.05, latency_ms=5, random_seed=3
    )
    summary = bulk(recipients_frame(60), max_concurrency=4).execute(make_context())
    assert summary["sent"] + summary["failed"] == 60
    assert summary["unknown"] == 0
    assert len(texted()) == len(set(texted())) == summary["sent"]
    # Whatever failed (a send refused before processing three times running) goes out on the retry.
    bulk(recipients_frame(60), max_concurrency=4).execute(make_context())
    assert Counter(texted()) == dict.fromkeys(numbers(60), 1)


def test_a_failed_lookup_never_resends_and_the_rerun_settles(
    smsnexus_conn, smsnexus_emulator, make_context, texted, tmp_path
):
    admin = smsnexus_emulator.admin
    report = tmp_path / "r.parquet"
    operator = bulk(recipients_frame(3), report_path=str(report))
    send = operator.hook.send_sms_attempts

    def send_then_break_reads(*args, **kwargs):
        admin.set_faults(fail_after_share=1.0)  # the server sends it, the answer is lost...
        try:
            return (yield from send(*args, **kwargs))
        finally:
            admin.set_faults(fail_before_share=1.0)  # ... and every lookup fails too

    operator.hook.send_sms_attempts = send_then_break_reads
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="3 of 3 messages have an unknown outcome"):
        operator.execute(make_context())
    assert texted() == numbers(3)
    assert pd.read_parquet(report)["outcome"].tolist() == ["unknown"] * 3

    admin.set_faults()
    summary = bulk(recipients_frame(3)).execute(make_context())
    assert (summary["already_sent"], summary["sent"]) == (3, 0)
    assert texted() == numbers(3)


def test_a_send_refused_before_processing_is_resent_by_the_rerun(
    smsnexus_conn, smsnexus_emulator, make_context, texted
):
    admin = smsnexus_emulator.admin
    operator = bulk(recipients_frame(2))
    send = operator.hook.send_sms_attempts

    def send_while_down(*args, **kwargs):
        admin.set_faults(fail_before_share=1.0)
        return send(*args, **kwargs)

    operator.hook.send_sms_attempts = send_while_down
    with pytest.raises(SMSNexusSendOutcomeUnknownError):
        operator.execute(make_context())
    assert texted() == []
    admin.set_faults()
    summary = bulk(recipients_frame(2)).execute(make_context())
    assert summary["sent"] == 2
    assert texted() == numbers(2)


@pytest.mark.slow
def test_a_worker_killed_mid_campaign_resumes_without_texting_anyone_twice(
    smsnexus_conn, smsnexus_emulator, make_context, texted, tmp_path
):
    admin = smsnexus_emulator.admin
    admin.set_faults(latency_ms=25)
    spec = {
        "recipients": write_recipients(tmp_path / "r.csv", 40),
        "message_template": "Hi {{ row.name }}",
        "campaign_id": "killed-campaign",
    }
    kills = 0
    for kill_after in (4, 15, 27):
        worker = start_worker({**spec, "run_id": "manual__kill"})
        deadline = time.monotonic() + 60
        while len(texted()) < kill_after and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.communicate(timeout=60)
    assert kills >= 2
    assert len(texted()) < 40  # the kills did interrupt the campaign

    admin.set_faults()
    summary = bulk(spec["recipients"], campaign_id="killed-campaign", max_concurrency=2).execute(
        make_context()
    )
    assert summary["already_sent"] + summary["sent"] == 40
    assert summary["unknown"] == summary["failed"] == 0
    assert Counter(texted()) == dict.fromkeys(numbers(40), 1)


def test_partitions_split_the_campaign_and_together_cover_it(smsnexus_conn, make_context, texted):
    results = [
        bulk(recipients_frame(40), num_partitions=4, partition=p).execute(make_context(map_index=p))
        for p in range(4)
    ]
    assert {r["campaign_id"] for r in results} == {"campaigns.send.manual__2026-03-08"}
    assert sum(r["total"] for r in results) == 40
    assert all(r["total"] < 40 for r in results)
    assert Counter(texted()) == dict.fromkeys(numbers(40), 1)
    # Rerunning any partition finds its rows sent.
    assert bulk(recipients_frame(40), num_partitions=4, partition=2).execute(make_context())["sent"] == 0


def test_invalid_rows_belong_to_exactly_one_partition(smsnexus_conn, make_context, tmp_path):
    recipients = pd.DataFrame({"to": ["bad", None, "+12125550110", "x"], "name": list("abcd")})
    reports = []
    for p in range(3):
        path = tmp_path / f"r{p}.parquet"
        bulk(recipients, num_partitions=3, partition=p, report_path=str(path)).execute(make_context())
        reports.append(pd.read_parquet(path))
    rows = pd.concat(reports)
    assert sorted(rows["row_number"]) == [1, 2, 3, 4]


def test_partitions_as_parallel_processes_with_a_postgres_ledger(
    smsnexus_conn, smsnexus_emulator, postgres_conn_id, tmp_path, texted, monkeypatch
):
    import sqlalchemy as sa

    from airflow_provider_smsnexus.campaign.ledger import SendLedger

    table = f"ledger_{uuid.uuid4().hex[:12]}"  # unique across copies of the suite sharing the database
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            retry_backoff=0.01, retry_backoff_max=0.05, rate_limit_period=1, send_rate_limit=10
        ),
    )
    smsnexus_emulator.admin.set_limits(send_limit=10, window_seconds=1)
    spec = {
        "recipients": write_recipients(tmp_path / "r.csv", 40),
        "message_template": "Hi {{ row.name }}",
        "ledger_conn_id": postgres_conn_id,
        "ledger_table": table,
        "num_partitions": 2,
        "run_id": "manual__pg",
    }
    try:
        # Two worker processes keep the test quick; tests/hostile runs four.
        workers = [start_worker({**spec, "partition": p}) for p in range(2)]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
        summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert sum(s["sent"] for s in summaries) == 40
        assert Counter(texted()) == dict.fromkeys(numbers(40), 1)
        stats = smsnexus_emulator.admin.stats()
        assert stats["max_in_window"]["send"] <= 10
    finally:
        ledger = SendLedger.for_connection(postgres_conn_id, table_name=table)
        ledger.table.drop(ledger.engine, checkfirst=True)
        ledger.close()
        assert not sa.inspect(ledger.engine).has_table(table)


@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_sends_keep_to_the_announced_limit_without_429s(
    smsnexus_emulator, monkeypatch, make_context, texted, max_concurrency
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            retry_backoff=0.01, retry_backoff_max=0.05, rate_limit_period=1, send_rate_limit=8
        ),
    )
    smsnexus_emulator.admin.set_limits(send_limit=8, window_seconds=1)
    operator = bulk(recipients_frame(20), max_concurrency=max_concurrency)
    summary = operator.execute(make_context())
    assert summary["sent"] == 20
    stats = smsnexus_emulator.admin.stats()
    assert stats["rate_limited"]["send"] == 0
    assert operator.hook.stats["rate_limited"] == 0
    assert Counter(texted()) == dict.fromkeys(numbers(20), 1)


def test_concurrent_sends_text_each_recipient_once(smsnexus_conn, smsnexus_emulator, make_context, texted):
    smsnexus_emulator.admin.set_faults(latency_ms=5)
    summary = bulk(recipients_frame(50), max_concurrency=8).execute(make_context())
    assert summary["sent"] == 50
    assert Counter(texted()) == dict.fromkeys(numbers(50), 1)
