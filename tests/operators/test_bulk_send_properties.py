"""Random recipient tables: every valid number texted exactly once with its own text (completeness), nothing
invalid texted, nobody twice (safety); every row ends with an outcome and a reason.

Validity comes from the hand-checked oracle in ``recipient_oracle`` (forms of known numbers), never from the
provider's own ``normalise_phone``; what was texted comes from the emulator's record."""

from __future__ import annotations

import itertools
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from tests._hypothesis import deep_examples
from tests.operators.recipient_oracle import POOL_B, canonical, expected_sends, phones

OUTCOMES = {"sent", "failed", "invalid", "duplicate", "suppressed", "already_sent", "unknown"}
SENDER = "+12125550100"

name_values = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=30),
    st.text(min_size=1590, max_size=1700, alphabet="ab"),  # around the 1600-character limit
    st.sampled_from(["😀", "مرحبا", "{{ ds }}", "\x00\x07", "\ud800", "a\r\nb", "e\u0301", "  "]),
    st.integers(),
)
rows = st.lists(st.tuples(phones, name_values), max_size=12)


@pytest.fixture
def admin(smsnexus_emulator):
    """The emulator's inspection client alone: Hypothesis prints a failing example's arguments, and it prints
    dataclasses field by field (the emulator handle's token too, despite ``repr=False``)."""
    return smsnexus_emulator.admin


@settings(
    max_examples=deep_examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=rows,
    template=st.sampled_from(["{{ row.name }}", "Hi {{ row.name }}!", "{{ row.nope }}"]),
    region=st.sampled_from([None, "US"]),
)
def test_every_valid_number_is_texted_exactly_once_and_nothing_else(
    smsnexus_conn, admin, make_context, drawn, template, region
):
    before = len(admin.sent_messages())
    table = pd.DataFrame([(p.raw, name) for p, name in drawn], columns=["to", "name"], dtype=object)
    operator = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=table,
        message_template=template,
        from_number=SENDER,
        default_region=region,
        honor_opt_outs=False,
        campaign_id=f"property-{next(_campaigns)}",
        max_failure_rate=1,
    )
    if "nope" in template:
        with pytest.raises(SMSNexusCampaignError, match="'nope'"):
            operator.execute(make_context())
        assert len(admin.sent_messages()) == before
        return
    summary = operator.execute(make_context())
    sent = admin.sent_messages()[before:]
    expected = expected_sends(drawn, template, region)
    texted = Counter(m["to"] for m in sent)

    # Completeness and safety, from the emulator's record: each valid number of pool A exactly once, with the
    # text of its first sendable row; a number of pool B (forms the rules leave open) at most once; nothing else.
    assert {n: c for n, c in texted.items() if n not in POOL_B} == dict.fromkeys(expected, 1)
    assert max(texted.values(), default=1) == 1
    assert set(texted) <= set(expected) | {p.base for p, _ in drawn if p.open_form}
    bodies = {m["to"]: canonical(m["body"]) for m in sent}
    assert {n: bodies[n] for n in expected} == {n: canonical(t) for n, t in expected.items()}
    assert all(m["from"] == SENDER for m in sent)
    # Every row is accounted for.
    assert summary["total"] == len(table)
    assert sum(
        summary[key] for key in ("invalid", "duplicates", "suppressed", "sent", "failed", "unknown")
    ) == len(table)
    assert (summary["sent"], summary["failed"], summary["unknown"]) == (len(sent), 0, 0)


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
