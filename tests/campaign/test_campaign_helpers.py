"""The pure campaign helpers: templates, opt-outs, hashes, partitions, tables and the report."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_provider_smsnexus.campaign.plan import opted_out_numbers, partition_of
from airflow_provider_smsnexus.campaign.render import (
    MessageTemplate,
    TemplateRow,
    message_hash,
    message_problem,
    raw_text,
)
from airflow_provider_smsnexus.campaign.report import REPORT_COLUMNS, write_report
from airflow_provider_smsnexus.campaign.sources import load_numbers, load_table
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError


def test_template_rows_read_columns_by_attribute_or_key_and_no_method_shadows_one():
    row = TemplateRow({"items": 3, "first name": "Ada", "missing": float("nan"), 7: "seven"})
    template = MessageTemplate("{{ row.items }} {{ row['first name'] }} [{{ row.missing }}] {{ row['7'] }}")
    assert template.render({}, row) == "3 Ada [] seven"
    assert MessageTemplate("{{ row.missing or 'there' }}").render({}, row) == "there"


def test_template_lists_the_columns_it_needs():
    template = MessageTemplate("{{ row.a }} {{ row['b c'] }} {% if row.d %}{{ ds }}{% endif %} {{ other.x }}")
    assert template.row_columns == {"a", "b c", "d"}
    assert template.missing_columns(["a", "d"]) == ["b c"]


def test_template_sees_the_context_macros_and_filters():
    template = MessageTemplate(
        "{{ greet }} {{ ds }} {{ row.name | shout }}", macros={"greet": "Hi"}, filters={"shout": str.upper}
    )
    assert template.render({"ds": "2026-03-08"}, TemplateRow({"name": "ada"})) == "Hi 2026-03-08 ADA"
    with pytest.raises(SMSNexusCampaignError, match="undefined"):
        template.render({}, TemplateRow({"name": "ada"}))  # no ds
    with pytest.raises(SMSNexusCampaignError, match="not valid Jinja: No filter named 'shout'"):
        MessageTemplate("{{ row.name | shout }}")


def test_opt_outs_take_the_latest_keyword_per_number():
    messages = [
        {"id": 1, "from": "+12125550110", "body": " Stop ", "created_at": "2026-03-01T10:00:00Z"},
        {"id": 2, "from": "+12125550111", "body": "STOP", "created_at": "2026-03-01T10:00:00Z"},
        {"id": 3, "from": "+12125550111", "body": "start", "created_at": "2026-03-02T10:00:00Z"},
        {"id": 5, "from": "+12125550112", "body": "UNSTOP", "created_at": "2026-03-01T10:00:00Z"},
        {"id": 4, "from": "+12125550112", "body": "quit", "created_at": "2026-03-03T10:00:00Z"},
        {"id": 6, "from": "+12125550113", "body": "stop please", "created_at": "2026-03-01T10:00:00Z"},
        {"id": 7, "from": "not a number", "body": "STOP", "created_at": "2026-03-01T10:00:00Z"},
        {"id": 8, "from": "+12125550114", "body": None},
    ]
    assert opted_out_numbers(messages) == {
        "+12125550110": "opted out: STOP at 2026-03-01T10:00:00Z",
        "+12125550112": "opted out: QUIT at 2026-03-03T10:00:00Z",
    }


def test_message_hash_ignores_line_endings_normalisation_and_surrounding_space():
    assert message_hash("+1", "Caf\u00e9\r\nok ") == message_hash("+1", " Cafe\u0301\nok")
    assert message_hash("+1", "a") != message_hash("+2", "a")
    assert message_hash("+1", "a") != message_hash("+1", "b")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "empty message"),
        ("x" * 1601, "message too long: 1601 characters (at most 1600)"),
        ("bad \x00", "message contains control characters"),
        ("\ud800", "message is not valid Unicode text (lone surrogate)"),
        ("x" * 1600, None),
        ("tab\tnew\nline \u202eRTL 😀", None),
    ],
)
def test_message_problems(body, problem):
    assert message_problem(body) == problem


def test_partitions_are_stable_and_spread():
    numbers = [f"+1212555{n:04d}" for n in range(100, 200)]
    assert [partition_of(n, 4) for n in numbers] == [partition_of(n, 4) for n in numbers]
    assert partition_of("+12125550100", 4) == 3  # fixed forever: workers of different versions must agree
    counts = pd.Series([partition_of(n, 4) for n in numbers]).value_counts()
    assert set(counts.index) == {0, 1, 2, 3}
    assert counts.min() >= 15


def test_load_table_sources(tmp_path):
    csv = tmp_path / "r.csv.gz"
    pd.DataFrame({"to": ["+12125550110"], "name": ["NA"]}).to_csv(csv, index=False)
    frame = load_table(str(csv), text_columns=["to"])
    assert frame.to_dict("records") == [{"to": "+12125550110", "name": "NA"}]
    assert load_table({"to": ["a"]}).columns.tolist() == ["to"]
    assert load_table(lambda: [{"to": "a"}]).to_dict("records") == [{"to": "a"}]
    assert load_table([]).empty
    with pytest.raises(SMSNexusCampaignError, match="got int"):
        load_table(5)


def test_suppression_lists_in_every_shape(tmp_path):
    text = tmp_path / "stop.txt"
    text.write_text("+12125550110\n(212) 555-0111\n\n")
    assert load_numbers(str(text), column="to", default_region="US") == {"+12125550110", "+12125550111"}
    text.write_text("+12125550110\nnonsense\n")
    with pytest.raises(SMSNexusCampaignError, match=r"line 2 of .*stop.txt: 'nonsense'"):
        load_numbers(str(text), column="to", default_region="US")
    table = tmp_path / "stop.parquet"
    pd.DataFrame({"phone": [12125550112.0, None]}).to_parquet(table)  # a float column: the "+" is lost
    assert load_numbers(str(table), column="to", default_region="US") == {"+12125550112"}
    with pytest.raises(
        SMSNexusCampaignError, match=r"row 1 of .*stop.parquet: '12125550112.0': .*default_region"
    ):
        load_numbers(str(table), column="to", default_region=None)
    with pytest.raises(SMSNexusCampaignError, match="no column 'to'"):
        load_numbers(pd.DataFrame({"a": [1], "b": [2]}), column="to", default_region=None)
    assert load_numbers(None, column="to", default_region=None) == set()


def test_the_report_has_a_fixed_schema_and_survives_odd_text(tmp_path):
    path = tmp_path / "deep" / "report.parquet"
    rows = [
        {"row_number": 1, "recipient": "+12125550110", "outcome": "sent", "message_id": "7", "credits": 1},
        {"row_number": 2, "recipient": raw_text("\ud800" + "x" * 200), "outcome": "invalid", "reason": "r"},
    ]
    assert write_report(rows, str(path)) == str(path)
    table = pq.read_table(path)
    assert [(f.name, str(f.type)) for f in table.schema] == [
        (name, "int64" if kind == "int64" else "string") for name, kind in REPORT_COLUMNS
    ]
    assert table.column("recipient")[1].as_py().startswith("\\ud800x")
    assert len(table.column("recipient")[1].as_py()) == 103
    assert not list(path.parent.glob(".*.tmp"))
    empty = tmp_path / "empty.parquet"
    write_report([], f"file://{empty}")
    assert pq.read_table(empty).num_rows == 0
