"""Tests of the bulk operator's steps: callables kept verbatim, planning, suppression, dry runs, reports."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq

from airflow_provider_smsnexus.campaign.bulk import (
    Verbatim,
    keep_callable,
    plan_table,
    settle_dry_run,
    suppress_rows,
    unwrap,
    write_campaign_report,
)
from airflow_provider_smsnexus.campaign.model import DRY_RUN, SUPPRESSED, CampaignRow
from airflow_provider_smsnexus.campaign.plan import RowSpec
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

LOG = logging.getLogger(__name__)


def test_a_plain_callable_is_kept_verbatim_and_called_on_unwrap() -> None:
    def rows():
        return [{"to": "+12125550150"}]

    kept = keep_callable(rows)
    assert isinstance(kept, Verbatim)
    assert unwrap(kept) == [{"to": "+12125550150"}]
    assert keep_callable("x.csv") == "x.csv" == unwrap("x.csv")


def test_plan_table_renders_each_row_and_marks_the_bad_ones() -> None:
    recipients = [
        {"to": "+12125550150", "name": "Ann"},
        {"to": "not a number", "name": "Bob"},
        {"to": "+1 212 555 0150", "name": "Ann again"},
    ]
    spec = RowSpec(from_number="+12125550100")
    rows = plan_table(recipients, "Hi {{ row.name }}", spec, {}, log=LOG)
    assert [(r.row_number, r.recipient, r.body, r.outcome) for r in rows] == [
        (1, "+12125550150", "Hi Ann", None),
        (2, None, None, "invalid"),
        (3, "+12125550150", "Hi Ann again", "duplicate"),
    ]


def test_suppress_rows_honours_stop_texts_and_the_list(smsnexus_emulator, smsnexus_conn) -> None:
    smsnexus_emulator.admin.add_inbound("+12125550150", "+12125550100", "STOP")
    rows = [CampaignRow(i, recipient=f"+1212555015{i}") for i in range(3)]
    suppress_rows(
        SMSNexusHook(smsnexus_conn_id=smsnexus_conn),
        rows,
        honor_opt_outs=True,
        suppression_list=["+12125550151"],
        column="to",
        default_region=None,
    )
    assert [r.outcome for r in rows] == [SUPPRESSED, SUPPRESSED, None]
    assert rows[0].reason.startswith("opted out: STOP at ")
    assert rows[1].reason == "on the suppression list: entry 1 (1-based) of the suppression_list argument"


def test_a_dry_run_settles_every_row_as_dry_run_and_the_report_lists_them(tmp_path) -> None:
    rows = [CampaignRow(1, recipient="+12125550150"), CampaignRow(2, recipient="+12125550151")]
    settle_dry_run(rows)
    write_campaign_report(rows, str(tmp_path / "r.parquet"), LOG)
    assert pq.read_table(tmp_path / "r.parquet").column("outcome").to_pylist() == [DRY_RUN, DRY_RUN]
