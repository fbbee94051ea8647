"""Tests of what the send operators share: argument checks, the hook, and templating that leaves data alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_smsnexus.operators._send_base import SendOperatorBase


def test_clock_skew_in_seconds_becomes_a_timedelta() -> None:
    operator = SendOperatorBase(task_id="t", clock_skew=5, lease_seconds=10)
    assert operator.clock_skew == timedelta(seconds=5)
    assert operator.lease_seconds == 10.0


@pytest.mark.parametrize(("skew", "lease"), [(-1, 30), (60, 0)])
def test_negative_skew_or_non_positive_lease_is_refused(skew: float, lease: float) -> None:
    with pytest.raises(ValueError, match="clock_skew must not be negative"):
        SendOperatorBase(task_id="t", clock_skew=skew, lease_seconds=lease)


def test_hook_uses_the_operators_connection() -> None:
    assert SendOperatorBase(task_id="t", smsnexus_conn_id="other").hook.smsnexus_conn_id == "other"


def test_strings_are_templates_but_recipient_data_is_left_alone() -> None:
    operator = SendOperatorBase(task_id="t")
    context = {"ds": "2026-03-08"}
    assert operator.render_template("day {{ ds }}", context) == "day 2026-03-08"
    rows = [{"to": "+12125550101", "name": "{{ ds }}"}]
    assert operator.render_template(rows, context) is rows
    assert rows == [{"to": "+12125550101", "name": "{{ ds }}"}]
