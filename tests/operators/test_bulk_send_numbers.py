"""Never the wrong person, never twice (issue 22), end to end against the emulator: a number without a country
is refused rather than read as a foreign number, a suppression list is read whole (byte-order mark, no header)
or stops the campaign, and STOP is read as carriers read it. What was texted comes from the emulator's record;
which numbers are valid comes from the hand-checked numbers written here."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusInvalidNumberError,
    SMSNexusSuppressionListError,
)
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator

SENDER = "+12125550100"  # the emulator's sms+mms number
#: Hand-checked: read as "+" and the digits, each of these is a valid foreign number (the hole of issue 22).
EGYPT, BELGIUM = "+2015550142", "+3235550142"


def bulk(recipients, **kwargs) -> SMSNexusBulkSendOperator:
    kwargs.setdefault("from_number", SENDER)
    return SMSNexusBulkSendOperator(
        task_id="send", recipients=recipients, message_template="Hi {{ row.name }}", **kwargs
    )


def people(*numbers: str) -> pd.DataFrame:
    return pd.DataFrame({"to": list(numbers), "name": [f"N{i}" for i in range(len(numbers))]})


def _logs(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


# -- a number without a country ------------------------------------------------------------------------------


def test_ten_bare_digits_without_a_region_are_never_texted_abroad(
    smsnexus_conn, make_context, texted, tmp_path
):
    report = tmp_path / "r.parquet"
    recipients = [{"to": "2015550142", "name": "Ann"}, {"to": "+12125550142", "name": "Bob"}]
    summary = bulk(recipients, report_path=str(report)).execute(make_context())
    assert texted() == ["+12125550142"]  # the +1 row, and nothing to +20 (Egypt)
    assert EGYPT not in texted()
    rows = pd.read_parquet(report)
    assert rows["outcome"].tolist() == ["invalid", "sent"]
    reason = rows["reason"][0]
    assert reason.startswith("row 1 (1-based) of the recipient list: no country code")
    assert "'+12015550142' if it is a US or Canadian number" in reason
    assert "set default_region" in reason
    assert (summary["invalid"], summary["sent"]) == (1, 1)


def test_a_bare_number_in_a_csv_is_refused_naming_its_line(smsnexus_conn, make_context, texted, tmp_path):
    path = tmp_path / "recipients.csv"
    path.write_text("to,name\n+12125550143,Ann\n3235550142,Bob\n+12125550144,Cy\n")
    report = tmp_path / "r.parquet"
    bulk(str(path), report_path=str(report)).execute(make_context())
    assert sorted(texted()) == ["+12125550143", "+12125550144"]
    assert BELGIUM not in texted()
    rows = pd.read_parquet(report).set_index("row_number")
    assert rows.loc[2, "outcome"] == "invalid"
    assert rows.loc[2, "reason"].startswith(f"line 3 of {path}: no country code")


def test_a_numeric_column_is_read_only_with_a_region(smsnexus_conn, make_context, texted, tmp_path):
    # pandas turned "+12125550110" into 12125550110: without default_region it is ambiguous, so refused.
    table = pd.DataFrame({"to": [12125550110, 12125550111], "name": ["a", "b"]})
    report = tmp_path / "r.parquet"
    summary = bulk(table, report_path=str(report), campaign_id="no-region").execute(make_context())
    assert texted() == []
    assert summary["invalid"] == 2
    assert all("keep the column as text with '+'" in reason for reason in pd.read_parquet(report)["reason"])
    bulk(table, default_region="US", campaign_id="us").execute(make_context())
    assert sorted(texted()) == ["+12125550110", "+12125550111"]


def test_a_sender_without_a_country_fails_before_any_send(smsnexus_conn, make_context, texted):
    with pytest.raises(
        SMSNexusInvalidNumberError, match=r"^from_number='2125550100' is not a usable"
    ) as caught:
        bulk(people("+12125550110"), from_number="2125550100").execute(make_context())
    assert caught.value.parameter == "from_number"
    assert isinstance(caught.value, SMSNexusCampaignError)
    assert texted() == []


def test_one_sms_to_bare_digits_fails_before_sending(smsnexus_conn, make_context, texted):
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=SENDER, to="2015550142", message="Hi")
    with pytest.raises(SMSNexusInvalidNumberError, match=r"^to='2015550142' is not a usable phone number"):
        operator.execute(make_context())
    assert texted() == []


# -- suppression lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "first_line"),
    [
        ("stop.txt", "\ufeff+12125550111\r\n+12125550113\r\n", 1),  # Notepad's UTF-8 with a byte-order mark
        ("stop.csv", "\ufeff+12125550111\n+12125550113\n", 1),  # Excel's "CSV UTF-8"
        ("stop.csv", "+12125550111\n+12125550113\n", 1),  # one column, no header
        ("stop.csv", "\ufeffphone\n+12125550111\n+12125550113\n", 2),  # a header
    ],
)
def test_every_number_of_a_suppression_file_is_suppressed_and_every_other_texted(
    smsnexus_conn, make_context, texted, tmp_path, capfd, name, content, first_line
):
    suppression = tmp_path / name
    suppression.write_bytes(content.encode("utf-8"))
    report = tmp_path / "r.parquet"
    recipients = people(*(f"+1212555{n:04d}" for n in range(110, 115)))
    summary = bulk(
        recipients, suppression_list=str(suppression), honor_opt_outs=False, report_path=str(report)
    ).execute(make_context())
    assert sorted(texted()) == ["+12125550110", "+12125550112", "+12125550114"]
    assert summary["suppressed"] == 2
    reasons = pd.read_parquet(report).set_index("recipient")["reason"]
    assert reasons["+12125550111"] == f"on the suppression list: line {first_line} of {suppression}"
    assert reasons["+12125550113"] == f"on the suppression list: line {first_line + 1} of {suppression}"
    assert f"Suppression list from {suppression}: 2 numbers; 2 rows suppressed by it" in _logs(capfd)


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("+12125550111\nnot a number\n", 2, "letters"),
        ("+12125550111\n2125550113\n", 2, "no country code"),  # national, and no default_region
        ("\ufeff+12125550111\n+1 212 555\n", 2, "invalid phone number"),
    ],
)
def test_a_malformed_suppression_line_fails_the_task_before_any_send(
    smsnexus_conn, make_context, texted, tmp_path, content, line, reason
):
    suppression = tmp_path / "stop.txt"
    suppression.write_bytes(content.encode("utf-8"))
    operator = bulk(people("+12125550110", "+12125550111", "+12125550113"), suppression_list=str(suppression))
    with pytest.raises(SMSNexusSuppressionListError) as caught:
        operator.execute(make_context())
    assert f"line {line} of {suppression}" in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.source == str(suppression)
    assert texted() == []


# -- opt-out keywords ----------------------------------------------------------------------------------------


def test_stop_with_punctuation_opts_out_and_a_sentence_with_stop_does_not(
    smsnexus_conn, smsnexus_emulator, make_context, texted
):
    admin = smsnexus_emulator.admin
    admin.add_inbound("+12125550110", SENDER, "Stop.")
    admin.add_inbound("+12125550111", SENDER, "STOP!")
    admin.add_inbound("+12125550112", SENDER, "stop sending me ads")  # not a keyword (CTIA: the whole text)
    admin.add_inbound("+12125550113", SENDER, "Unsubscribe?")
    bulk(people(*(f"+1212555{n:04d}" for n in range(110, 115)))).execute(make_context())
    assert sorted(texted()) == ["+12125550112", "+12125550114"]
