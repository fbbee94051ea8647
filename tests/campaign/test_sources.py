"""Tests of the campaign's input sources: recipient tables and suppression lists."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.sources import (
    load_numbers,
    load_rows,
    load_table,
    read_suppression_list,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusSuppressionListError


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


def test_load_numbers_normalises_a_text_file_and_skips_blank_lines(tmp_path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("+1 212 555 0101\n\n(212) 555-0102\n")
    assert load_numbers(path, column="to", default_region="US") == {"+12125550101", "+12125550102"}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("stop.txt", "\ufeff+12125550101\n+12125550102\n"),  # Notepad's UTF-8: a byte-order mark first
        ("stop.csv", "\ufeff+12125550101\n+12125550102\n"),
        ("stop.csv", "+12125550101\n+12125550102\n"),  # one column, no header: the first line is a number
        ("stop.csv", "\ufeffphone\r\n+12125550101\r\n+12125550102\r\n"),  # Excel: BOM, header, CRLF
        ("stop.csv", "to,name\n+12125550101,Ann\n+12125550102,Bob\n"),
        ("stop.txt", "numbers\n\n+12125550101\n+12125550102\n"),
    ],
)
def test_every_number_of_a_suppression_file_is_read_bom_and_header_or_not(tmp_path, name, content) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    assert load_numbers(path, column="to", default_region=None) == {"+12125550101", "+12125550102"}


def test_a_suppression_list_says_where_each_number_is_listed(tmp_path) -> None:
    path = tmp_path / "stop.csv"
    path.write_text("phone\n+12125550101\n\n+12125550102\n+1 212 555 0101\n")
    listed = read_suppression_list(str(path), column="to", default_region=None)
    assert listed.source == str(path)
    assert listed.numbers == {"+12125550101": f"line 2 of {path}", "+12125550102": f"line 4 of {path}"}
    entries = read_suppression_list(["+12125550103"], column="to", default_region=None)
    assert entries.numbers == {"+12125550103": "entry 1 (1-based) of the suppression_list argument"}


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("+12125550101\n+1 212-555\n+12125550102\n", 2, "invalid phone number"),
        ("+12125550101\n\n2015550142\n", 3, "no country code"),  # national: no default_region
        ("\ufeff+12125550101\nnot a number\n", 2, "letters"),
        ("2015550142\n", 1, "no country code"),  # a first line with digits is a number, never a header
        ("+12125550101\n1.21256E+10\n", 2, "Excel scientific notation that lost digits"),
    ],
)
def test_an_entry_that_is_not_a_number_stops_with_the_file_and_line(tmp_path, content, line, reason) -> None:
    path = tmp_path / "stop.txt"
    path.write_bytes(content.encode("utf-8"))
    with pytest.raises(SMSNexusSuppressionListError) as caught:
        load_numbers(path, column="to", default_region=None)
    assert f"line {line} of {path}" in str(caught.value)
    assert reason in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert caught.value.places == [f"line {line} of {path}"]


def test_a_national_number_of_a_suppression_list_is_read_with_default_region(tmp_path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("2015550142\n")
    assert load_numbers(path, column="to", default_region="US") == {"+12015550142"}


def test_a_csv_of_several_columns_needs_a_header_naming_the_column(tmp_path) -> None:
    path = tmp_path / "stop.csv"
    path.write_text("+12125550101,Ann\n+12125550102,Bob\n")
    with pytest.raises(SMSNexusCampaignError, match="none named 'to'"):
        load_numbers(path, column="to", default_region=None)


def test_rows_of_a_csv_are_placed_on_the_line_a_person_sees(tmp_path) -> None:
    path = tmp_path / "r.csv"
    # Hand-counted lines: header 1, Ann 2, a blank line 3, Bob's quoted note spans 4-5, Cy 6.
    path.write_text('to,note\n+12125550101,a\n\n+12125550102,"two\nlines"\n+12125550103,c\n')
    frame, places = load_rows(str(path), what="recipient", text_columns=["to"])
    assert frame["to"].tolist() == ["+12125550101", "+12125550102", "+12125550103"]
    assert [places(n) for n in (1, 2, 3)] == [f"line {n} of {path}" for n in (2, 4, 6)]
    _, places = load_rows([{"to": "x"}], what="recipient")
    assert places(1) == "row 1 (1-based) of the recipient list"
    _, places = load_rows(pd.DataFrame({"to": ["x"]}), what="recipient")
    assert places(1) == "row 1 (1-based) of the recipient DataFrame"


def test_load_numbers_reads_the_named_or_only_column_of_a_table() -> None:
    frame = pd.DataFrame({"phone": ["+12125550101", None], "x": [1, 2]})
    assert load_numbers(frame, column="phone", default_region=None) == {"+12125550101"}
    assert load_numbers(pd.DataFrame({"n": ["+12125550103"]}), column="to", default_region=None) == {
        "+12125550103"
    }
    with pytest.raises(SMSNexusCampaignError, match="no column 'to'"):
        load_numbers(frame, column="to", default_region=None)
