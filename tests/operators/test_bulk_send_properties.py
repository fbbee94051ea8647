"""Random recipient tables: every row ends with an outcome and a reason, nothing invalid is sent, nothing twice."""

from __future__ import annotations

import itertools
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusCampaignError
from airflow_provider_smsnexus.utils.phone import normalise_phone

VALID = [f"+1212555{n:04d}" for n in range(110, 200)]
OUTCOMES = {"sent", "failed", "invalid", "duplicate", "suppressed", "already_sent", "unknown"}

phone_values = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(VALID).map(lambda n: float(n[1:])),  # pandas' float column
    st.sampled_from(VALID).map(lambda n: f"({n[2:5]}) {n[5:8]}-{n[8:]}"),  # national
    st.sampled_from(VALID).map(lambda n: n + "\u202e"),  # a right-to-left override
    st.none(),
    st.just(float("nan")),
    st.just(""),
    st.text(max_size=20),
    st.integers(),
    st.floats(),
)
name_values = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=30),
    st.text(min_size=1590, max_size=1700, alphabet="ab"),  # around the 1600-character limit
    st.sampled_from(["😀", "مرحبا", "{{ ds }}", "\x00\x07", "\ud800", "a\r\nb"]),
    st.integers(),
)
tables = st.lists(st.tuples(phone_values, name_values), max_size=12).map(
    lambda rows: pd.DataFrame(rows, columns=["to", "name"], dtype=object)
)


@pytest.fixture
def admin(smsnexus_emulator):
    """The emulator's inspection client alone: Hypothesis prints a failing example's arguments, and it prints
    dataclasses field by field (the emulator handle's token too, despite ``repr=False``)."""
    return smsnexus_emulator.admin


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables, template=st.sampled_from(["{{ row.name }}", "Hi {{ row.name }}!", "{{ row.nope }}"]))
def test_random_tables_end_in_outcomes_or_a_typed_error(smsnexus_conn, admin, make_context, table, template):
    before = len(admin.sent_messages())
    campaign = f"property-{next(_campaigns)}"
    operator = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=table,
        message_template=template,
        from_number="+12125550100",
        default_region="US",
        honor_opt_outs=False,
        campaign_id=campaign,
        max_failure_rate=1,
    )
    if "nope" in template:
        with pytest.raises(SMSNexusCampaignError, match="nope"):
            operator.execute(make_context())
        assert len(admin.sent_messages()) == before
        return
    summary = operator.execute(make_context())
    sent = [m["to"] for m in admin.sent_messages()[before:]]
    assert summary["total"] == len(table)
    assert sum(
        summary[key] for key in ("invalid", "duplicates", "suppressed", "sent", "failed", "unknown")
    ) == len(table)
    assert len(sent) == summary["sent"]
    assert max(Counter(sent).values(), default=1) == 1
    valid = {normalise_phone(value, "US").number for value in table["to"]}
    assert set(sent) <= valid - {None}


_campaigns = itertools.count()


def test_every_outcome_is_a_known_one(smsnexus_conn, make_context, tmp_path):
    report = tmp_path / "r.parquet"
    table = pd.DataFrame({"to": ["+12125550110", "x", "+12125550110", None], "name": ["a", "b", "c", "d"]})
    SMSNexusBulkSendOperator(
        task_id="send",
        recipients=table,
        message_template="{{ row.name }}",
        from_number="+12125550100",
        report_path=str(report),
    ).execute(make_context())
    rows = pd.read_parquet(report)
    assert set(rows["outcome"]) <= OUTCOMES
    assert rows.loc[rows["outcome"] != "sent", "reason"].notna().all()
