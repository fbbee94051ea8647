"""Four mapped partitions of one campaign as parallel worker processes, one PostgreSQL send ledger, an
emulator that allows 20 sends per 1-second window and loses some answers: every valid recipient is texted
exactly once, and the account's limit held with at most a handful of 429s."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from tests.hostile.hostile_support import SENDER, Worker, exactly_once, national, no_token, valid_numbers

PARTITIONS = 4
RECIPIENTS = 300
SEND_LIMIT = 20
#: 429s the four workers may meet in all. Each worker is given its share of the account's limit
#: (``send_rate_limit`` = 20 / 4 per 1-second period), which keeps the four inside the limit together.
HANDFUL = 5


@pytest.mark.slow
def test_four_parallel_partitions_with_one_postgres_ledger_text_everyone_once_within_the_limit(
    smsnexus_emulator, postgres_conn_id, monkeypatch, ledger_home, tmp_path, figures
):
    import sqlalchemy as sa

    from airflow_provider_smsnexus.campaign.ledger import SendLedger

    admin = smsnexus_emulator.admin
    valid = valid_numbers(RECIPIENTS)
    rows = [national(n) if i % 4 == 0 else n for i, n in enumerate(valid)] + valid[:10] + ["+1555", "x"]
    recipients = tmp_path / "recipients.csv"
    pd.DataFrame({"to": rows, "name": [f"N{i}" for i in range(len(rows))]}).to_csv(recipients, index=False)

    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(
            retry_backoff=0.01,
            retry_backoff_max=0.05,
            timeout=10,
            rate_limit_period=1,
            send_rate_limit=SEND_LIMIT // PARTITIONS,  # each worker's share of the account's limit
            read_rate_limit=100,
        ),
    )
    admin.set_limits(send_limit=SEND_LIMIT, read_limit=100, window_seconds=1)
    admin.set_faults(fail_after_share=0.03, drop_after_share=0.02, latency_jitter_ms=5, random_seed=44)
    table = f"hostile_ledger_{uuid.uuid4().hex[:8]}"
    spec = {
        "kind": "campaign",
        "recipients": str(recipients),
        "message_template": "Hi {{ row.name }}",
        "from_number": SENDER,
        "default_region": "US",
        "honor_opt_outs": False,
        "campaign_id": "hostile-parallel",
        "ledger_conn_id": postgres_conn_id,
        "ledger_table": table,
        "num_partitions": PARTITIONS,
        "max_concurrency": 1,
        "max_failure_rate": 0,
    }
    try:
        for attempt in range(3):  # a partition that ends with failed rows is retried, as Airflow would
            workers = [Worker({**spec, "partition": p}, airflow_home=ledger_home) for p in range(PARTITIONS)]
            results = [worker.finish() for worker in workers]
            for worker in workers:
                assert no_token(figures, worker.stdout, worker.stderr)
                assert worker.process.returncode in (0, 3), worker.stderr[-3000:]  # 3: a typed error
            figures.add("parallel_partition_runs", PARTITIONS)
            figures.note(
                f"parallel_attempt_{attempt + 1}",
                [r["result"] if r["ok"] else r["error"] for r in results if r],
            )
            if all(result and result["ok"] for result in results):
                break
        else:
            pytest.fail(f"the partitions did not all succeed: {results}")
        assert sum(r["result"]["total"] for r in results) == len(rows)  # every row planned by one partition

        texted = [message["to"] for message in admin.sent_messages()]
        assert exactly_once(figures, texted, valid) == (0, 0, 0)
        stats = admin.stats()
        refused = stats["rate_limited"]["send"]
        figures.add("rate_limited_429s_parallel", refused)
        figures.add("messages_through_parallel_partitions", len(texted))
        figures.add("campaigns_through_faults")
        figures.add("faults_injected_parallel", sum(stats["faults"].values()))
        figures.note("parallel_max_sends_in_a_window", stats["max_in_window"]["send"])
        assert stats["max_in_window"]["send"] <= SEND_LIMIT
        assert refused <= HANDFUL, f"{refused} sends were refused with 429"
    finally:
        ledger = SendLedger.for_connection(postgres_conn_id, table_name=table)
        ledger.table.drop(ledger.engine, checkfirst=True)
        assert not sa.inspect(ledger.engine).has_table(table)
        ledger.close()
