"""Tests of the campaign's input sources: recipient tables and suppression lists."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.sources import load_numbers, load_table
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError


def test_load_table_reads_rows_columns_callables_and_csv_numbers_as_text(tmp_path) -> None:
    assert load_table([{"to": "+12125550101"}]).to_dict("records") == [{"to": "+12125550101"}]
    assert load_table(lambda: {"to": ["a", "b"]})["to"].tolist() == ["a", "b"]
    path = tmp_path / "r.csv"
    path.write_text("to,name\n0012125550101,Ann\n")
    assert load_table(path, text_columns=["to"]).to_dict("records") == [
        {"to": "0012125550101", "name": "Ann"}
    ]


def test_load_table_names_what_it_cannot_read() -> None:
    with pytest.raises(SMSNexusCampaignError, match="found a str"):
        load_table(["+12125550101"])
    with pytest.raises(SMSNexusCampaignError, match="got int"):
        load_table(42)


def test_load_numbers_normalises_a_text_file_and_drops_unreadable_lines(tmp_path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("+1 212 555 0101\n\nnot a number\n(212) 555-0102\n")
    assert load_numbers(path, column="to", default_region="US") == {"+12125550101", "+12125550102"}


def test_load_numbers_reads_the_named_or_only_column_of_a_table() -> None:
    frame = pd.DataFrame({"phone": ["+12125550101"], "x": [1]})
    assert load_numbers(frame, column="phone", default_region=None) == {"+12125550101"}
    assert load_numbers(pd.DataFrame({"n": ["+12125550103"]}), column="to", default_region=None) == {
        "+12125550103"
    }
    with pytest.raises(SMSNexusCampaignError, match="no column 'to'"):
        load_numbers(frame, column="to", default_region=None)
