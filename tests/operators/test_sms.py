"""SMSNexusSendSmsOperator and SMSNexusBulkSendOperator against the emulator: what is sent, what is not, why."""

from __future__ import annotations

import logging
from collections import Counter

import pandas as pd
import pytest
from airflow.sdk import DAG, ObjectStoragePath

from airflow_provider_smsnexus.campaign.ledger import SendLedger
from airflow_provider_smsnexus.emulator.testing import TEST_CONNECTION_EXTRAS
from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusForbiddenError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator, SMSNexusSendSmsOperator
from tests.hooks.held_send import held_send_connection, run_with_held_answer

SENDER = "+12125550100"  # the emulator's sms+mms number
SMS_ONLY = "+12125550101"
INACTIVE = "+12125550102"
SUMMARY_KEYS = {
    "campaign_id",
    "total",
    "invalid",
    "duplicates",
    "suppressed",
    "already_sent",
    "sent",
    "failed",
    "unknown",
    "credits_estimated",
    "credits_used",
    "dry_run",
}


def numbers(count: int, start: int = 110) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(start, start + count)]


def bulk(recipients, template="Hi {{ row.name }}", **kwargs) -> SMSNexusBulkSendOperator:
    kwargs.setdefault("from_number", SENDER)
    kwargs.setdefault("task_id", "send")
    return SMSNexusBulkSendOperator(recipients=recipients, message_template=template, **kwargs)


def frame(count: int, start: int = 110) -> pd.DataFrame:
    return pd.DataFrame({"to": numbers(count, start), "name": [f"N{i}" for i in range(count)]})


# -- SMSNexusSendSmsOperator ----------------------------------------------------------------------------


def test_send_sms_returns_the_message_and_a_retry_sends_nothing(smsnexus_conn, make_context, texted):
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=SENDER, to="+12125550110", message="Hello")
    first = operator.execute(make_context())
    assert (first["to"], first["body"], first["credits_used"]) == ("+12125550110", "Hello", 1)
    again = operator.execute(make_context())  # a retry of the same task instance
    assert again["id"] == first["id"]
    assert texted() == ["+12125550110"]
    operator.execute(make_context(run_id="next_run"))  # a new run is a new send
    assert texted() == ["+12125550110", "+12125550110"]


def test_send_sms_renders_its_fields_and_reads_national_numbers(smsnexus_conn, make_context, texted):
    operator = SMSNexusSendSmsOperator(
        task_id="one",
        from_number=SENDER,
        to="{{ params.to }}",
        message="Report for {{ ds }}",
        default_region="US",
    )
    context = make_context(params={"to": "(212) 555-0111"})
    operator.render_template_fields(context)
    message = operator.execute(context)
    assert (message["to"], message["body"]) == ("+12125550111", "Report for 2026-03-08")
    assert texted() == ["+12125550111"]


def test_send_sms_refuses_an_invalid_number_before_sending(smsnexus_conn, make_context, texted):
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=SENDER, to="+1555", message="x")
    with pytest.raises(SMSNexusCampaignError, match="not a usable phone number"):
        operator.execute(make_context())
    assert texted() == []


def test_send_sms_raises_the_servers_validation_error(smsnexus_conn, make_context, texted):
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=INACTIVE, to="+12125550110", message="x")
    with pytest.raises(SMSNexusValidationError) as caught:
        operator.execute(make_context())
    assert "from" in caught.value.errors
    assert texted() == []


def test_send_sms_is_sent_once_when_the_answer_is_a_500_after_processing(
    smsnexus_conn, smsnexus_emulator, make_context, texted
):
    smsnexus_emulator.admin.set_faults(fail_after_share=1.0)
    operator = SMSNexusSendSmsOperator(task_id="one", from_number=SENDER, to="+12125550110", message="Hi")
    message = operator.execute(make_context())
    assert message["to"] == "+12125550110"
    assert texted() == ["+12125550110"]


def test_a_send_whose_answer_outlasts_the_read_timeout_is_settled_as_sent_by_lookup(
    smsnexus_emulator, make_context, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_HELD", held_send_connection(smsnexus_emulator))
    admin = smsnexus_emulator.admin
    operator = SMSNexusSendSmsOperator(
        task_id="one", smsnexus_conn_id="smsnexus_held", from_number=SENDER, to="+12125550110", message="Hi"
    )

    outcome = run_with_held_answer(admin, lambda: operator.execute(make_context()))

    assert "error" not in outcome, outcome
    [stored] = admin.sent_messages()
    assert (outcome["result"]["id"], outcome["result"]["to"]) == (stored["id"], "+12125550110")
    assert admin.stats()["requests"]["send"] == 1


def test_a_bulk_send_whose_answer_outlasts_the_read_timeout_is_settled_as_sent_by_lookup(
    smsnexus_emulator, make_context, texted, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_HELD", held_send_connection(smsnexus_emulator))
    admin = smsnexus_emulator.admin
    operator = bulk(frame(1), smsnexus_conn_id="smsnexus_held")

    outcome = run_with_held_answer(admin, lambda: operator.execute(make_context()))

    assert "error" not in outcome, outcome
    assert (outcome["result"]["sent"], outcome["result"]["unknown"]) == (1, 0)
    assert texted() == ["+12125550110"]
    assert admin.stats()["requests"]["send"] == 1


# -- the bulk operator: personalisation and the result --------------------------------------------------


def test_each_row_gets_its_own_text_with_the_task_context(smsnexus_conn, smsnexus_emulator, make_context):
    recipients = frame(3)
    operator = bulk(recipients, "Hi {{ row.name }}, {{ params.shop }} on {{ ds }}")
    summary = operator.execute(make_context())
    sent = {m["to"]: m["body"] for m in smsnexus_emulator.admin.sent_messages()}
    assert sent == {
        "+12125550110": "Hi N0, Corner Shop on 2026-03-08",
        "+12125550111": "Hi N1, Corner Shop on 2026-03-08",
        "+12125550112": "Hi N2, Corner Shop on 2026-03-08",
    }
    assert set(summary) == SUMMARY_KEYS
    assert summary == {
        "campaign_id": "campaigns.send.manual__2026-03-08",
        "total": 3,
        "invalid": 0,
        "duplicates": 0,
        "suppressed": 0,
        "already_sent": 0,
        "sent": 3,
        "failed": 0,
        "unknown": 0,
        "credits_estimated": 3,
        "credits_used": 3,
        "dry_run": False,
    }


def test_row_placeholders_survive_airflows_template_rendering(smsnexus_conn, make_context, tmp_path, texted):
    path = tmp_path / "2026-03-08.csv"
    frame(2).to_csv(path, index=False)
    with DAG("campaigns", schedule=None, user_defined_macros={"greeting": "Hello"}):
        operator = bulk(
            str(tmp_path / "{{ ds }}.csv"),
            "{{ greeting }} {{ row.name }} from {{ params.shop }}",
            report_path=str(tmp_path / "report-{{ ds }}.parquet"),
        )
    context = make_context()
    operator.render_template_fields(context)
    assert operator.recipients == str(path)
    assert operator.message_template == "{{ greeting }} {{ row.name }} from {{ params.shop }}"
    summary = operator.execute(context)
    assert summary["sent"] == 2
    assert (tmp_path / "report-2026-03-08.parquet").exists()
    assert sorted(texted()) == numbers(2)


def test_recipient_data_is_never_rendered_by_airflow(smsnexus_conn, smsnexus_emulator, make_context):
    rows = [{"to": "+12125550110", "name": "{{ ds }}"}]
    operator = bulk(rows, "Hi {{ row.name }}")
    operator.render_template_fields(make_context())
    assert operator.recipients == rows
    operator.execute(make_context())
    assert [m["body"] for m in smsnexus_emulator.admin.sent_messages()] == ["Hi {{ ds }}"]


def test_recipients_from_a_list_of_dicts_a_callable_a_parquet_file_and_a_file_url(
    smsnexus_conn, make_context, tmp_path, texted
):
    parquet = tmp_path / "r.parquet"
    frame(1, 112).to_parquet(parquet)
    sources = [
        [{"to": "+12125550110", "name": "A"}],
        lambda: frame(1, 111),
        str(parquet),
        f"file://{parquet}",
        ObjectStoragePath(f"file://{parquet}"),
    ]
    for index, source in enumerate(sources):
        bulk(source, campaign_id=f"source-{index}").execute(make_context())
    assert Counter(texted()) == {"+12125550110": 1, "+12125550111": 1, "+12125550112": 3}


def test_csv_phone_column_is_read_as_text(smsnexus_conn, make_context, tmp_path, texted):
    path = tmp_path / "r.csv"
    path.write_text("to,name\n+12125550110,Nan\n0012125550111,NA\n(212) 555-0112,Bob\n")
    report = tmp_path / "report.parquet"
    summary = bulk(str(path), default_region="GB", report_path=str(report)).execute(make_context())
    assert summary["sent"] == 2  # "(212) 555-0112" is not a GB number
    table = pd.read_parquet(report)
    assert table["recipient"].tolist() == ["+12125550110", "+12125550111", "(212) 555-0112"]
    assert sorted(texted()) == ["+12125550110", "+12125550111"]


# -- bad rows ----------------------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_their_reason_and_never_sent(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path
):
    recipients = pd.DataFrame(
        {
            "to": [
                12125550110.0,  # a float column, as pandas reads numbers beside NaN
                float("nan"),
                "(212) 555-0111",  # national format
                "not a number",
                "+1 212 555 0110",  # the first row again
                "+12125550112",
                "+12125550113",
                "+12125550114",
                "",
            ],
            "name": ["A", "B", "C", "D", "E", "x" * 1700, None, "{{ ds }}", "I"],
        }
    )
    report = tmp_path / "report.parquet"
    summary = bulk(recipients, "{{ row.name }}", default_region="US", report_path=str(report)).execute(
        make_context()
    )
    rows = pd.read_parquet(report)
    assert rows["row_number"].tolist() == list(range(1, 10))
    assert rows["outcome"].tolist() == [
        "sent",
        "invalid",
        "sent",
        "invalid",
        "duplicate",
        "invalid",
        "invalid",
        "sent",
        "invalid",
    ]
    reasons = rows["reason"].tolist()
    assert reasons[1] == "row 2 (1-based) of the recipient DataFrame: missing phone number"
    assert "letters" in reasons[3]
    assert reasons[4] == "same number as row 1 (1-based) of the recipient DataFrame"
    assert reasons[5].startswith("message too long: 1700 characters")
    assert reasons[6] == "empty message"
    assert reasons[8] == "row 9 (1-based) of the recipient DataFrame: empty phone number"
    recipients = rows["recipient"].tolist()
    assert pd.isna(recipients[1])
    assert [recipients[0], *recipients[2:4]] == ["+12125550110", "+12125550111", "not a number"]
    assert rows.loc[rows.outcome == "sent", "message_id"].notna().all()
    assert rows.loc[rows.outcome == "sent", "credits"].tolist() == [1, 1, 1]
    assert (summary["total"], summary["sent"], summary["invalid"], summary["duplicates"]) == (9, 3, 5, 1)
    sent = {m["to"]: m["body"] for m in smsnexus_emulator.admin.sent_messages()}
    assert sent == {"+12125550110": "A", "+12125550111": "C", "+12125550114": "{{ ds }}"}


def test_a_template_error_in_one_row_marks_only_that_row(smsnexus_conn, make_context, texted):
    recipients = pd.DataFrame({"to": numbers(2), "total": [10, 10], "count": [2, 0]})
    operator = bulk(recipients, "Each {{ row.total // row['count'] }}", max_failure_rate=1)
    summary = operator.execute(make_context())
    assert (summary["sent"], summary["invalid"]) == (1, 1)
    assert texted() == ["+12125550110"]


def test_a_template_naming_a_missing_column_fails_before_any_send(smsnexus_conn, make_context, texted):
    operator = bulk(frame(2), "Hi {{ row.first_name }} {{ row['last name'] }}")
    with pytest.raises(SMSNexusCampaignError, match=r"'first_name'.*'last name'|'last name'.*'first_name'"):
        operator.execute(make_context())
    assert texted() == []


@pytest.mark.parametrize(
    ("template", "match"),
    [("Hi {{ nobody }}", "undefined"), ("Hi {{ row.name ", "not valid Jinja"), ("", "non-empty")],
)
def test_a_broken_template_fails_before_any_send(smsnexus_conn, make_context, texted, template, match):
    with pytest.raises(SMSNexusCampaignError, match=match):
        bulk(frame(2), template).execute(make_context())
    assert texted() == []


def test_the_template_runs_in_a_sandbox(smsnexus_conn, make_context, texted):
    with pytest.raises(SMSNexusCampaignError, match=r"sandbox|undefined"):
        bulk(frame(1), "{{ params.__class__.__mro__ }}").execute(make_context())
    assert texted() == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"to_column": "phone"}, "to_column='phone'"),
        ({"from_number": None, "from_column": "sender"}, "from_column='sender'"),
        ({"media_url_column": "media"}, "media_url_column='media'"),
    ],
)
def test_a_missing_column_fails_before_any_send(smsnexus_conn, make_context, texted, kwargs, match):
    with pytest.raises(SMSNexusCampaignError, match=match):
        bulk(frame(2), **kwargs).execute(make_context())
    assert texted() == []


@pytest.mark.parametrize("recipients", [pd.DataFrame({"to": [], "name": []}), pd.DataFrame(), []])
def test_an_empty_table_sends_nothing_and_succeeds(smsnexus_conn, make_context, texted, recipients):
    summary = bulk(recipients).execute(make_context())
    assert (summary["total"], summary["sent"], summary["credits_estimated"]) == (0, 0, 0)
    assert texted() == []


def test_unreadable_sources_give_a_clear_error(smsnexus_conn, make_context, tmp_path):
    with pytest.raises(SMSNexusCampaignError, match="does not exist"):
        bulk(str(tmp_path / "missing.csv")).execute(make_context())
    (tmp_path / "r.json").write_text("[]")
    with pytest.raises(SMSNexusCampaignError, match="Cannot tell the format"):
        bulk(str(tmp_path / "r.json")).execute(make_context())
    with pytest.raises(SMSNexusCampaignError, match="list of dicts"):
        bulk(["+12125550110"]).execute(make_context())
    with pytest.raises(SMSNexusCampaignError, match="duplicate column"):
        bulk(pd.DataFrame([["+12125550110", "a"]], columns=["to", "to"])).execute(make_context())


def test_operator_arguments_are_checked():
    with pytest.raises(ValueError, match="exactly one"):
        SMSNexusBulkSendOperator(task_id="x", recipients=[], message_template="x")
    with pytest.raises(ValueError, match="max_concurrency"):
        bulk([], max_concurrency=0)


def test_per_row_senders_from_a_column(smsnexus_conn, smsnexus_emulator, make_context):
    recipients = pd.DataFrame(
        {"to": numbers(3), "name": ["a", "b", "c"], "sender": [SENDER, SMS_ONLY, "nope"]}
    )
    summary = bulk(recipients, from_number=None, from_column="sender").execute(make_context())
    assert (summary["sent"], summary["invalid"]) == (2, 1)
    sent = {(m["from"], m["to"]) for m in smsnexus_emulator.admin.sent_messages()}
    assert sent == {(SENDER, "+12125550110"), (SMS_ONLY, "+12125550111")}


# -- suppression and opt-outs ----------------------------------------------------------------------------


def test_stop_replies_and_the_suppression_list_are_never_texted(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path, texted
):
    admin = smsnexus_emulator.admin
    admin.add_inbound("+12125550110", SENDER, "  stop ")
    admin.add_inbound("+12125550111", SENDER, "Unsubscribe")
    admin.add_inbound("+12125550112", SENDER, "STOP")
    admin.add_inbound("+12125550112", SENDER, "START")  # opted back in
    admin.add_inbound("+12125550113", SENDER, "please stop texting me")  # not a keyword
    suppression = tmp_path / "suppress.txt"
    suppression.write_text("(212) 555-0114\n\n")
    report = tmp_path / "report.parquet"
    summary = bulk(
        frame(6), default_region="US", suppression_list=str(suppression), report_path=str(report)
    ).execute(make_context())
    assert summary["suppressed"] == 3
    assert sorted(texted()) == ["+12125550112", "+12125550113", "+12125550115"]
    reasons = pd.read_parquet(report).set_index("recipient")["reason"]
    assert reasons["+12125550110"].startswith("opted out: STOP")
    assert reasons["+12125550111"].startswith("opted out: UNSUBSCRIBE")
    assert reasons["+12125550114"] == f"on the suppression list: line 1 of {suppression}"


def test_opt_outs_can_be_ignored_and_lists_come_in_several_shapes(
    smsnexus_conn, smsnexus_emulator, make_context, texted
):
    smsnexus_emulator.admin.add_inbound("+12125550110", SENDER, "STOP")
    shapes = [
        (["+12125550111"], None),
        (pd.DataFrame({"to": ["+12125550111"]}), None),
        (pd.DataFrame({"phone": [12125550111]}), "US"),  # a number column lost its "+": read with a region
    ]
    for index, (suppression, region) in enumerate(shapes):
        summary = bulk(
            frame(2),
            honor_opt_outs=False,
            suppression_list=suppression,
            default_region=region,
            campaign_id=f"c{index}",
        ).execute(make_context())
        assert (summary["sent"], summary["suppressed"]) == (1, 1)
    assert texted() == ["+12125550110"] * 3


# -- dry run and pre-flight ---------------------------------------------------------------------------------


def test_a_dry_run_checks_everything_writes_the_report_and_sends_nothing(
    smsnexus_conn, make_context, tmp_path, texted
):
    recipients = frame(3)
    recipients.loc[2, "to"] = "bad"
    report = tmp_path / "dry.parquet"
    summary = bulk(recipients, "Hi {{ row.name }} ✓", dry_run=True, report_path=str(report)).execute(
        make_context()
    )
    assert summary["dry_run"] is True
    assert (summary["sent"], summary["invalid"], summary["credits_estimated"]) == (0, 1, 2)
    assert pd.read_parquet(report)["outcome"].tolist() == ["dry_run", "dry_run", "invalid"]
    assert texted() == []


def test_too_little_credit_fails_before_any_send(smsnexus_conn, smsnexus_emulator, make_context, texted):
    smsnexus_emulator.admin.set_balance(5)
    long_text = "{{ row.name }}" + "x" * 200  # two segments each
    with pytest.raises(SMSNexusCampaignError, match="need about 6 credits but the balance is 5"):
        bulk(frame(3), long_text).execute(make_context())
    assert texted() == []


@pytest.mark.parametrize(
    ("sender", "match"),
    [(INACTIVE, "'inactive', not active"), ("+12125550199", "not a number of this SMS Nexus account")],
)
def test_a_sender_that_cannot_send_fails_before_any_send(smsnexus_conn, make_context, texted, sender, match):
    with pytest.raises(SMSNexusCampaignError, match=match):
        bulk(frame(2), from_number=sender).execute(make_context())
    assert texted() == []


def test_mms_rows_need_a_sender_with_the_mms_capability(
    smsnexus_conn, smsnexus_emulator, make_context, texted
):
    recipients = frame(2).assign(media=["https://example.com/a.png", None])
    with pytest.raises(SMSNexusCampaignError, match=r"cannot send MMS .* 1 row\(s\) need it"):
        bulk(recipients, from_number=SMS_ONLY, media_url_column="media").execute(make_context())
    assert texted() == []
    summary = bulk(recipients, media_url_column="media").execute(make_context())
    assert (summary["sent"], summary["credits_estimated"], summary["credits_used"]) == (2, 4, 4)
    media = {m["to"]: m["media_url"] for m in smsnexus_emulator.admin.sent_messages()}
    assert media == {"+12125550110": "https://example.com/a.png", "+12125550111": None}


def test_a_media_url_that_is_not_a_url_marks_the_row_invalid(smsnexus_conn, make_context, texted):
    recipients = frame(1).assign(media=["ftp://x y"])
    summary = bulk(recipients, media_url_column="media").execute(make_context())
    assert summary["invalid"] == 1
    assert texted() == []


# -- failures while sending -----------------------------------------------------------------------------------


def _reject(operator, refused: set[str]):
    """Make the operator's hook answer 422 for some recipients (a server cannot be told to, per number)."""
    send = operator.hook.send_sms_attempts

    def send_sms_attempts(from_number, to, message, media_url=None):
        if to in refused:
            raise SMSNexusValidationError(
                "POST /api/sms/send answered 422", errors={"to": ["The to number is not reachable."]}
            )
        return send(from_number, to, message, media_url)

    operator.hook.send_sms_attempts = send_sms_attempts


def test_a_refused_row_fails_with_its_reason_and_the_campaign_goes_on(
    smsnexus_conn, make_context, tmp_path, texted
):
    report = tmp_path / "r.parquet"
    operator = bulk(frame(4), report_path=str(report), max_failure_rate=0.5)
    _reject(operator, {"+12125550111"})
    summary = operator.execute(make_context())
    assert (summary["sent"], summary["failed"]) == (3, 1)
    reasons = pd.read_parquet(report).set_index("recipient")["reason"]
    assert reasons["+12125550111"] == "rejected by SMS Nexus (422): to: The to number is not reachable."
    assert sorted(texted()) == ["+12125550110", "+12125550112", "+12125550113"]


def test_too_many_failures_fail_the_task_after_finishing_and_writing_the_report(
    smsnexus_conn, make_context, tmp_path, texted
):
    report = tmp_path / "r.parquet"
    operator = bulk(frame(10), report_path=str(report))
    _reject(operator, {"+12125550111"})
    with pytest.raises(
        SMSNexusError, match=r"1 of 10 sends failed \(10.0%\), more than max_failure_rate=5.0%"
    ):
        operator.execute(make_context())
    assert len(texted()) == 9
    assert Counter(pd.read_parquet(report)["outcome"]) == {"sent": 9, "failed": 1}
    # The retry sends the failed row again (it provably never arrived) and nothing else.
    operator = bulk(frame(10), report_path=str(report))
    summary = operator.execute(make_context())
    assert (summary["already_sent"], summary["sent"]) == (9, 1)
    assert Counter(texted()) == dict.fromkeys(numbers(10), 1)


def test_a_suspended_account_stops_the_campaign_and_the_report_says_who_got_it(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path, texted
):
    report = tmp_path / "r.parquet"
    operator = bulk(frame(6), report_path=str(report))
    send = operator.hook.send_sms_attempts
    calls = []

    def send_sms_attempts(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            smsnexus_emulator.admin.update_account(suspended=True)
        return send(*args, **kwargs)

    operator.hook.send_sms_attempts = send_sms_attempts
    with pytest.raises(SMSNexusForbiddenError):
        operator.execute(make_context())
    outcomes = pd.read_parquet(report)["outcome"].tolist()
    assert outcomes == ["sent", "sent", "failed", "not_attempted", "not_attempted", "not_attempted"]
    assert texted() == numbers(2)


def test_a_wrong_token_fails_without_sending(smsnexus_emulator, monkeypatch, make_context, texted):
    connection = smsnexus_emulator.connection_json(retry_backoff=0.01).replace(
        smsnexus_emulator.token, "SMSNEXUS-TEST-TOKEN-wrong"
    )
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_DEFAULT", connection)
    with pytest.raises(SMSNexusError) as caught:
        bulk(frame(2)).execute(make_context())
    assert caught.value.status_code == 401
    assert texted() == []


# -- campaigns and the ledger -----------------------------------------------------------------------------


def test_a_retry_resumes_and_a_new_run_is_a_new_campaign(smsnexus_conn, make_context, texted):
    first = bulk(frame(3)).execute(make_context())
    retry = bulk(frame(4)).execute(make_context())
    assert (first["sent"], retry["already_sent"], retry["sent"]) == (3, 3, 1)
    assert sorted(texted()) == numbers(4)
    next_run = bulk(frame(4)).execute(make_context(run_id="scheduled__2026-03-09"))
    assert next_run["campaign_id"] == "campaigns.send.scheduled__2026-03-09"
    assert next_run["sent"] == 4


def test_a_changed_text_is_not_sent_again_in_the_same_campaign(smsnexus_conn, make_context, texted, capfd):
    bulk(frame(2), "First").execute(make_context())
    summary = bulk(frame(2), "Second").execute(make_context())
    assert summary["already_sent"] == 2
    assert texted() == numbers(2)
    assert "2 recipients were already sent a different text" in _logs(capfd)


def test_the_ledger_records_every_send(smsnexus_conn, smsnexus_emulator, make_context, ledger_home):
    bulk(frame(2), campaign_id="spring-sale").execute(make_context())
    with SendLedger.sqlite(ledger_home / "smsnexus" / "send_ledger.db") as ledger:
        entries = ledger.entries(smsnexus_emulator.admin.ledger_campaign("spring-sale"))
    assert {(e.recipient, e.state, e.attempts) for e in entries} == {
        ("+12125550110", "sent", 1),
        ("+12125550111", "sent", 1),
    }
    assert all(e.message_id and e.credits == 1 and e.from_number == SENDER for e in entries)


def test_mapped_tasks_get_their_own_campaign_unless_partitioned(smsnexus_conn, make_context):
    mapped = bulk(frame(1)).execute(make_context(map_index=2))
    assert mapped["campaign_id"] == "campaigns.send.manual__2026-03-08.2"
    partitioned = bulk(frame(1), num_partitions=2, partition=1).execute(make_context(map_index=1))
    assert partitioned["campaign_id"] == "campaigns.send.manual__2026-03-08"


def _logs(capfd) -> str:
    """Task logs: Airflow 3 writes them through structlog to the captured output."""
    out, err = capfd.readouterr()
    return out + err


def test_progress_is_logged(smsnexus_conn, make_context, capfd):
    bulk(frame(5)).execute(make_context())
    progress = [line for line in _logs(capfd).splitlines() if "remaining of" in line]
    assert progress
    assert "5 sent, 0 failed, 0 unknown, 0 remaining of 5" in progress[-1]


def test_the_token_appears_nowhere(smsnexus_conn, smsnexus_emulator, make_context, tmp_path, caplog, capfd):
    report = tmp_path / "r.parquet"
    operator = bulk(frame(3), report_path=str(report), max_failure_rate=1)
    _reject(operator, {"+12125550111"})
    with caplog.at_level(logging.DEBUG):
        summary = operator.execute(make_context())
    token = smsnexus_emulator.token
    assert token not in repr(summary)
    assert token not in caplog.text + _logs(capfd)
    assert token.encode() not in report.read_bytes()
    assert token not in repr(operator)
    assert token not in repr(operator.hook)


def test_running_out_of_credit_mid_campaign_stops_it(
    smsnexus_conn, smsnexus_emulator, make_context, tmp_path
):
    report = tmp_path / "r.parquet"
    operator = bulk(frame(5), report_path=str(report))
    send = operator.hook.send_sms_attempts
    calls = []

    def send_sms_attempts(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            smsnexus_emulator.admin.set_balance(0)  # someone else spent the credit meanwhile
        return send(*args, **kwargs)

    operator.hook.send_sms_attempts = send_sms_attempts
    with pytest.raises(SMSNexusValidationError) as caught:
        operator.execute(make_context())
    assert "credits" in caught.value.errors
    assert pd.read_parquet(report)["outcome"].tolist() == [
        "sent",
        "sent",
        "failed",
        "not_attempted",
        "not_attempted",
    ]
    assert len(calls) == 3


def test_send_sms_that_cannot_be_checked_stays_pending_and_the_retry_sends_once(
    smsnexus_conn, smsnexus_emulator, make_context, texted, monkeypatch
):
    admin = smsnexus_emulator.admin
    # The retry waits out the pending mark's fence (its lease) and the request's longest time: short ones.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(**{**TEST_CONNECTION_EXTRAS, "timeout": 3}),
    )
    quick = {"from_number": SENDER, "to": "+12125550110", "message": "Hi", "lease_seconds": 3}
    operator = SMSNexusSendSmsOperator(task_id="one", **quick)
    send = operator.hook.send_sms_attempts

    def send_while_down(*args, **kwargs):
        admin.set_faults(fail_before_share=1.0)  # the send and every lookup answer 500
        return send(*args, **kwargs)

    operator.hook.send_sms_attempts = send_while_down
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="left pending"):
        operator.execute(make_context())
    admin.set_faults()
    retry = SMSNexusSendSmsOperator(task_id="one", **quick)
    assert retry.execute(make_context())["to"] == "+12125550110"
    assert texted() == ["+12125550110"]
