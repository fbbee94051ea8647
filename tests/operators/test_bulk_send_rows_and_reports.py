"""SMSNexusBulkSendOperator against the emulator (issue 22, holes 5 and 6): rows with missing values get the
text the guide promises ("Hi , ..." never "Hi None, ..."), a row lacking a value its text needs is invalid on
its own while the others are texted, and a report that cannot be written stops the campaign before the first
text (or, when the write fails after sending, keeps the summary).

What was texted comes from the emulator's record; expected texts are written out by hand."""

from __future__ import annotations

import hashlib
import os
import shutil

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.exceptions import SMSNexusDestinationError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

SENDER = "+12125550100"
TAIL = ", your order ships today."


def bulk(recipients, template: str, **kwargs) -> SMSNexusBulkSendOperator:
    return SMSNexusBulkSendOperator(
        task_id="send", recipients=recipients, message_template=template, from_number=SENDER, **kwargs
    )


def texts(emulator) -> dict[str, str]:
    """Recipient -> body of every message the emulator created (a recipient texted twice fails the test)."""
    sent = emulator.admin.sent_messages()
    assert len({m["to"] for m in sent}) == len(sent), "a recipient was texted twice"
    return {m["to"]: m["body"] for m in sent}


# -- hole 5: missing values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "first", "second"),
    [
        (
            "Hi {{ row.name | title }}" + TAIL,
            "Hi , your order ships today.",
            "Hi Ann, your order ships today.",
        ),
        (
            "Hi {{ row.name | upper }}" + TAIL,
            "Hi , your order ships today.",
            "Hi ANN, your order ships today.",
        ),
        (
            "Hi {{ row.name | default('there') | title }}" + TAIL,
            "Hi There, your order ships today.",
            "Hi Ann, your order ships today.",
        ),
        (
            "Hi {{ row.name | title or 'there' }}" + TAIL,
            "Hi there, your order ships today.",
            "Hi Ann, your order ships today.",
        ),
    ],
)
def test_a_missing_name_prints_empty_whatever_filters_follow(
    smsnexus_conn, smsnexus_emulator, make_context, template, first, second
):
    rows = [{"to": "+12125550101", "name": None}, {"to": "+12125550102", "name": "ann"}]
    summary = bulk(rows, template).execute(make_context())
    assert texts(smsnexus_emulator) == {"+12125550101": first, "+12125550102": second}
    assert (summary["sent"], summary["invalid"]) == (2, 0)


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT], ids=["None", "NaN", "NA", "NaT"])
def test_no_kind_of_missing_value_prints_as_a_word(smsnexus_conn, smsnexus_emulator, make_context, missing):
    table = pd.DataFrame({"to": ["+12125550103", "+12125550104"], "name": [missing, "bo"]}, dtype=object)
    bulk(table, "Hi {{ row.name | capitalize }}!").execute(make_context())
    assert texts(smsnexus_emulator) == {"+12125550103": "Hi !", "+12125550104": "Hi Bo!"}


def test_a_row_lacking_a_nested_value_is_invalid_and_the_other_rows_are_texted(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path
):
    rows = [
        {"to": "+12125550101", "meta": {"tier": "gold"}},
        {"to": "+12125550102", "meta": {"plan": "basic"}},  # no tier
        {"to": "+12125550103", "meta": None},  # no meta at all
        {"to": "+12125550104", "meta": {"tier": "silver", "plan": "pro"}},
    ]
    report = tmp_path / "report.parquet"
    summary = bulk(rows, "Your tier: {{ row.meta.tier }}", report_path=str(report)).execute(make_context())
    assert texts(smsnexus_emulator) == {
        "+12125550101": "Your tier: gold",
        "+12125550104": "Your tier: silver",
    }
    assert (summary["sent"], summary["invalid"]) == (2, 2)
    table = pd.read_parquet(report).set_index("row_number")
    assert table["outcome"].to_dict() == {1: "sent", 2: "invalid", 3: "invalid", 4: "sent"}
    assert table.loc[2, "reason"] == "row 2: the text needs meta.tier, which the row does not have"
    assert table.loc[3, "reason"] == "row 3: the text needs meta.tier, which the row does not have"


def test_a_default_covers_a_missing_nested_value(smsnexus_conn, smsnexus_emulator, make_context):
    rows = [
        {"to": "+12125550101", "meta": {"tier": "gold"}},
        {"to": "+12125550102", "meta": {}},
        {"to": "+12125550103", "meta": None},
        {"to": "+12125550104", "meta": {"tier": None}},
    ]
    bulk(rows, "Tier {{ row.meta.tier | default('standard') }}").execute(make_context())
    assert texts(smsnexus_emulator) == {
        "+12125550101": "Tier gold",
        "+12125550102": "Tier standard",
        "+12125550103": "Tier standard",
        "+12125550104": "Tier standard",
    }


def test_the_ledger_hashes_the_text_that_was_sent(
    smsnexus_conn, smsnexus_emulator, make_context, ledger_home
):
    rows = [{"to": "+12125550101", "name": None}, {"to": "+12125550102", "name": "ann"}]
    bulk(rows, "  Hi {{ row.name | title }}!  ", campaign_id="hashes").execute(make_context())
    with SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db") as ledger:
        hashes = {
            e.recipient: e.message_hash
            for e in ledger.entries(smsnexus_emulator.admin.ledger_campaign("hashes"))
        }
    sent = texts(smsnexus_emulator)
    assert sent == {"+12125550101": "Hi !", "+12125550102": "Hi Ann!"}
    assert hashes == {
        to: hashlib.sha256(f"{SENDER}\x1f{body}".encode()).hexdigest() for to, body in sent.items()
    }


# -- hole 6: the report's destination ------------------------------------------------------------------------


def _file_as_parent(tmp_path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "report.parquet")


def _a_directory(tmp_path) -> str:
    (tmp_path / "report.parquet").mkdir()
    return str(tmp_path / "report.parquet")


def _read_only_directory(tmp_path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    return str(folder / "report.parquet")


UNWRITABLE = {
    "parent is a file": _file_as_parent,
    "target is a directory": _a_directory,
    "parent cannot be created": lambda tmp_path: "/proc/smsnexus-reports/report.parquet",
    "no permission (sysfs)": lambda tmp_path: "/sys/smsnexus-report.parquet",
    "read-only directory": _read_only_directory,
}


@pytest.mark.parametrize("place", list(UNWRITABLE))
def test_an_unwritable_report_path_fails_before_the_first_text(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path, place
):
    path = UNWRITABLE[place](tmp_path)
    rows = [{"to": "+12125550101", "name": "a"}, {"to": "+12125550102", "name": "b"}]
    with pytest.raises(SMSNexusDestinationError, match="report_path") as caught:
        bulk(rows, "Hi {{ row.name }}", report_path=path).execute(make_context())
    assert (caught.value.parameter, caught.value.path, caught.value.summary) == ("report_path", path, None)
    assert path in str(caught.value)
    assert smsnexus_emulator.admin.sent_messages() == []
    assert smsnexus_emulator.admin.stats()["requests"]["send"] == 0


def test_a_report_that_fails_after_sending_keeps_the_summary(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path, capfd
):
    folder = tmp_path / "reports"
    folder.mkdir()
    path = str(folder / "report.parquet")
    rows = [{"to": "+12125550101", "name": "a"}, {"to": "+12125550102", "name": "b"}]
    operator = bulk(rows, "Hi {{ row.name }}", report_path=path, campaign_id="lost-report")
    send = operator.hook.send_sms_attempts

    def send_then_lose_the_folder(*args, **kwargs):
        """After the last text, the report's folder turns into a file (as a disk fills up: a real OSError)."""
        answer = yield from send(*args, **kwargs)
        if len(smsnexus_emulator.admin.sent_messages()) == len(rows):
            shutil.rmtree(folder)
            folder.write_text("")
        return answer

    operator.hook.send_sms_attempts = send_then_lose_the_folder
    with pytest.raises(SMSNexusDestinationError, match="report_path") as caught:
        operator.execute(make_context())
    assert sorted(texts(smsnexus_emulator)) == ["+12125550101", "+12125550102"]
    error = caught.value
    assert (error.parameter, error.path) == ("report_path", path)
    assert error.summary == {
        "campaign_id": "lost-report", "total": 2, "invalid": 0, "duplicates": 0, "suppressed": 0,
        "already_sent": 0, "sent": 2, "failed": 0, "unknown": 0, "credits_estimated": 2, "credits_used": 2,
        "dry_run": False,
    }  # fmt: skip
    out, err = capfd.readouterr()
    assert "Campaign lost-report finished" in out + err
