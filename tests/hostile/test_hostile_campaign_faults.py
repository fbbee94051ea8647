"""A 2,000-recipient campaign through an emulator that loses answers: 10 % of sends answered 500 after
processing, 5 % dropped after processing, 5 % of all requests 500 before processing, random latency.
Rerun until the task succeeds; the emulator's own record then shows every valid recipient texted exactly
once, and no invalid, duplicate or opted-out one."""

from __future__ import annotations

from functools import partial

import pandas as pd
import pytest

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from tests.hostile.hostile_support import (
    SENDER,
    attempt,
    campaign_table,
    exactly_once,
    no_token,
    task_context,
    valid_numbers,
)

RECIPIENTS = 2_000
INVALID_ROWS = 100
DUPLICATE_ROWS = 50
MAX_RUNS = 6


@pytest.mark.slow
def test_a_2000_recipient_campaign_through_faults_texts_each_valid_recipient_exactly_once(
    smsnexus_conn, smsnexus_emulator, tmp_path, figures
):
    admin = smsnexus_emulator.admin
    valid = valid_numbers(RECIPIENTS)
    table = campaign_table(valid, invalid=INVALID_ROWS, duplicates=DUPLICATE_ROWS, seed=8)
    # Ten contacts opted out by texting STOP; two of them opted back in with START afterwards.
    stopped, restarted = valid[100:110], valid[100:102]
    for number in stopped:
        admin.add_inbound(number, SENDER, " stop ")
    for number in restarted:
        admin.add_inbound(number, SENDER, "START")
    admin.set_faults(
        fail_after_share=0.10,
        drop_after_share=0.05,
        fail_before_share=0.05,
        latency_jitter_ms=6,
        random_seed=2026,
    )

    errors = []
    for run in range(1, MAX_RUNS + 1):
        report = tmp_path / f"report-{run}.parquet"
        operator = SMSNexusBulkSendOperator(
            task_id="send",
            recipients=table,
            message_template="Hi {{ row.name }}, your order is ready.",
            from_number=SENDER,
            default_region="US",
            campaign_id="hostile-faults-2000",
            max_concurrency=4,
            report_path=str(report),
            max_failure_rate=0,  # any row that failed fails the task, so that a rerun resends it
        )
        figures.add("campaign_runs_through_faults")
        summary, error = attempt(partial(operator.execute, task_context()))
        assert no_token(figures, str(error))
        if error is None:
            break
        # Unknown outcomes or failed rows: the task fails, and Airflow would retry it.
        errors.append(type(error).__name__)
        failed = pd.read_parquet(report).query("outcome in ('failed', 'unknown', 'not_attempted')")
        figures.note("campaign_rows_left_for_a_rerun", failed["reason"].str[:80].value_counts().to_dict())
    else:
        pytest.fail(f"the campaign did not succeed in {MAX_RUNS} runs: {errors}")
    assert no_token(figures, summary, report.read_bytes().decode("latin-1"))

    expected = set(valid) - (set(stopped) - set(restarted))
    texted = [message["to"] for message in admin.sent_messages()]
    figures.add("campaigns_through_faults")
    figures.add("messages_through_faults", len(texted))
    faults = admin.stats()["faults"]
    figures.add("faults_injected_campaign", sum(faults.values()))
    assert exactly_once(figures, texted, expected) == (0, 0, 0)
    assert all(message["from"] == SENDER for message in admin.sent_messages())

    rows = pd.read_parquet(report)
    outcomes = rows["outcome"].value_counts().to_dict()
    assert outcomes.get("invalid") == INVALID_ROWS
    assert outcomes.get("duplicate") == DUPLICATE_ROWS
    assert outcomes.get("suppressed") == len(stopped) - len(restarted)
    assert outcomes.get("sent", 0) + outcomes.get("already_sent", 0) == len(expected)
    assert faults["fail_after"] > 100
    assert faults["drop_after"] > 50
    assert faults["fail_before"] > 50
    figures.note("campaign_faults", {**faults, "runs": run, "failed_runs": errors})
