"""Random recipient tables thrown at SMSNexusBulkSendOperator: every case ends in the right typed error (the
one naming the argument, column or template at fault) before any send, or every valid number is texted exactly
once with its text and nothing else is; every row has an outcome and a reason; no token anywhere.

What is valid, and which error is right, is decided by an independent oracle: phone values come from the
hand-checked forms of ``tests/operators/recipient_oracle.py``, texts are rendered from the templates' Jinja
meaning, and senders are checked against the emulator's own list of the account's numbers."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from tests._hypothesis import deep_examples
from tests.hostile.hostile_support import SENDER, attempt, no_token, task_context
from tests.operators.recipient_oracle import POOL_B, Phone, canonical, expected_sends, expected_text, phones

OUTCOMES = {"sent", "failed", "invalid", "duplicate", "suppressed", "already_sent", "unknown"}
names = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.floats(),
    st.integers(),
    st.booleans(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10),
    st.sampled_from(
        [
            "😀👍🏽",
            "مرحبا بالعالم",
            "שלום",
            "\u202eevil",
            "{{ 7 * 7 }}",
            "{% raw %}",
            "\x00\x07\x1b[31m",
            "\ud800",
            "a\r\nb",
            "Zoë",
            "e\u0301",
            "",
            "   ",
        ]
    ),
    st.text(min_size=1590, max_size=1700, alphabet="ab"),
    st.text(min_size=790, max_size=820, alphabet="é"),
    st.just("x" * 100_000),
)
#: Mostly templates that render, some that cannot (a missing column, the sandbox, a syntax error).
templates = st.one_of(
    st.sampled_from(
        [
            "Hi {{ row.name }}",
            "{{ row.name }}",
            "{{ row['name'] }}{{ row.name }}",
            "{{ row.name | string | upper }} on {{ ds }}",
            "Hello {{ row.name or 'there' }} 👋",
        ]
    ),
    st.sampled_from(
        [
            "{{ row.nope }}",
            "{{ row.name.__class__ }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ row.name",
            "{{ row.name / 0 }}",
            "{{ row.name ~ row.name ~ row.name }}",
        ]
    ),
)


#: Templates that cannot render a row: the error that must name them, by source.
TEMPLATE_ERRORS = {
    "{{ row.nope }}": r"'nope'",
    "{{ row.name.__class__ }}": r"message_template breaks the sandbox",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": r"message_template breaks the sandbox",
    "{{ row.name": r"message_template is not valid Jinja",
}
#: Templates that render per row but never give a sendable text (every row ends ``invalid``).
NEVER_SENDABLE = {"{{ row.name / 0 }}"}


@dataclass
class Drawn:
    """A drawn table and what the oracle knows of it: each row's phone and name, and the table's shape."""

    frame: pd.DataFrame
    rows: list[tuple[Phone, object]]
    shape: str


@st.composite
def tables(draw: st.DrawFn) -> Drawn:
    rows = draw(st.lists(st.tuples(phones, names), max_size=10))
    if rows and draw(st.booleans()):  # a repeated row
        rows = [*rows, rows[0]]
    frame = pd.DataFrame([(p.raw, n) for p, n in rows], columns=["to", "name"], dtype=object)
    shape = draw(
        st.sampled_from(
            ["object"] * 6 + ["inferred", "string", "category", "no-to", "no-name", "extra", "int-names"]
        )
    )
    try:  # pandas' Arrow-backed strings cannot hold a lone surrogate: such a table stays of objects
        if shape == "inferred":
            frame = frame.infer_objects()
        elif shape == "string":
            frame = frame.map(lambda v: v if isinstance(v, str) else None).astype("string")
            rows = [(_as_text(p), n if isinstance(n, str) else None) for p, n in rows]
        elif shape == "category":
            frame["to"] = frame["to"].map(lambda v: v if isinstance(v, str) else None).astype("category")
            rows = [(_as_text(p), n) for p, n in rows]
    except UnicodeEncodeError:
        shape = "object"
    if rows:  # the names the table holds now (inference may have made 0 of 0.0)
        rows = [(phone, name) for (phone, _), name in zip(rows, frame["name"].tolist())]
    if shape == "no-to":
        frame = frame.drop(columns=["to"])
    elif shape == "no-name":
        frame = frame.drop(columns=["name"])
    elif shape == "extra":
        frame[draw(st.sampled_from(["", " ", "to ", "TO", "Name", "😀"]))] = 1
    elif shape == "int-names":
        frame.columns = [0, 1]
    return Drawn(frame, rows, shape)


def _as_text(phone: Phone) -> Phone:
    """The phone of a text-only column: a value that was not text became missing."""
    return phone if isinstance(phone.raw, str) else Phone(None, None, refused=True)


def oracle_errors(
    drawn: Drawn, template: str, region: str | None, sender: str, account: dict[str, dict]
) -> tuple[list[str], list[str]]:
    """The errors that must be raised (any one of ``must``), and those that may be (``may``: they depend on
    rows of forms the rules leave open), as patterns of the message; both empty: no error is right."""
    must: list[str] = []
    may: list[str] = []
    if template in TEMPLATE_ERRORS and "nope" not in template and "sandbox" not in TEMPLATE_ERRORS[template]:
        must.append(TEMPLATE_ERRORS[template])  # a syntax error, whatever the table
    columns = {str(c) for c in drawn.frame.columns}
    if "to" not in columns:
        must.append(r"no column for to_column='to'")
    if "nope" in template:
        must.append(r"'nope'")
    elif ("row.name" in template or "row['name']" in template) and "name" not in columns:
        must.append(r"uses column\(s\) 'name'")
    if must or not drawn.rows:
        return must, may
    sender_number = {SENDER: SENDER, "+12125550102": "+12125550102"}.get(sender)
    if sender == "(212) 555-0100":
        sender_number = SENDER if region == "US" else None
    if sender_number is None:
        return [r"from_number="], may
    valid = [p for p, _ in drawn.rows if p.number(region)]
    open_rows = [p for p, _ in drawn.rows if p.open_form]
    if template in TEMPLATE_ERRORS:  # the sandbox: raised by the first row that is rendered
        (must if valid else may if open_rows else []).append(TEMPLATE_ERRORS[template])
        return must, may
    if template in NEVER_SENDABLE:
        return must, may
    sendable = [p for p, n in drawn.rows if p.number(region) and expected_text(template, n) is not None]
    maybe_sendable = [p for p, n in drawn.rows if p.open_form and expected_text(template, n) is not None]
    info = account.get(sender_number, {})
    if info.get("status", "active") != "active" or "sms" not in info.get("capabilities", ["sms"]):
        pattern = re.escape(sender_number)
        (must if sendable else may if maybe_sendable else []).append(pattern)
    return must, may


_campaigns = itertools.count()


@pytest.fixture
def admin(smsnexus_emulator):
    """The inspection client alone (hypothesis prints failing arguments; the handle holds the token)."""
    smsnexus_emulator.admin.set_balance(10**9)
    return smsnexus_emulator.admin


@settings(
    max_examples=deep_examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=tables(),
    template=templates,
    region=st.sampled_from([None, "US"]),
    sender=st.sampled_from([SENDER] * 6 + ["(212) 555-0100", "+12125550102", "nonsense"]),
)
def test_random_tables_end_in_the_right_typed_error_or_every_valid_number_texted_once(
    smsnexus_conn, admin, tmp_path, figures, drawn, template, region, sender
):
    figures.add("hypothesis_examples")
    figures.add("hypothesis_examples_bulk")
    table = drawn.frame
    account = {n["number"]: n for n in admin.account()["numbers"]}  # the emulator's own record
    must, may = oracle_errors(drawn, template, region, sender, account)
    before = len(admin.sent_messages())
    report = tmp_path / f"report-{next(_campaigns)}.parquet"
    operator = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=table,
        message_template=template,
        from_number=sender,
        default_region=region,
        honor_opt_outs=False,
        campaign_id=f"hostile-input-{report.stem}",
        report_path=str(report),
        max_failure_rate=1,
    )
    context = task_context()
    operator.render_template_fields(context)
    assert no_token(figures, *(repr(getattr(operator, name)) for name in operator.template_fields))
    summary, error = attempt(lambda: operator.execute(context))
    if error is not None:
        assert no_token(figures, str(error), repr(error))
        assert len(admin.sent_messages()) == before, "a typed error after sends began"
        assert isinstance(error, SMSNexusCampaignError), repr(error)
        assert must or may, f"no error was due, got {error!r}"
        assert any(re.search(pattern, str(error)) for pattern in must + may), (must + may, str(error))
        figures.add("bulk_typed_errors")
        return
    assert not must, f"expected an error matching one of {must}, the campaign ran"
    sent = admin.sent_messages()[before:]
    assert no_token(figures, json.dumps(summary), report.read_bytes().decode("latin-1"))
    json.dumps(summary)  # XCom-ready

    rows = pd.read_parquet(report)
    assert len(rows) == len(table) == summary["total"]
    assert set(rows["outcome"]) <= OUTCOMES
    assert rows.loc[rows["outcome"] != "sent", "reason"].notna().all()
    assert summary["sent"] == (rows["outcome"] == "sent").sum() == len(sent)

    # Completeness and safety, from the emulator's record against the oracle.
    expected = {} if template in NEVER_SENDABLE else expected_sends(drawn.rows, template, region)
    texted = Counter(message["to"] for message in sent)
    open_numbers = {p.base for p, _ in drawn.rows if p.open_form}
    duplicates = sum(n - 1 for n in texted.values())
    unexpected = set(texted) - set(expected) - open_numbers
    figures.add("duplicates_found", duplicates)
    figures.add("invalid_or_unexpected_texted", len(unexpected))
    assert duplicates == 0
    assert not unexpected
    assert {n: c for n, c in texted.items() if n not in POOL_B} == dict.fromkeys(expected, 1), (
        "not all texted"
    )
    bodies = {m["to"]: canonical(m["body"]) for m in sent}
    assert {n: bodies[n] for n in expected} == {n: canonical(t) for n, t in expected.items()}
    assert all(message["from"] == SENDER for message in sent)
    figures.add("bulk_rows_with_outcome", len(rows))
    figures.add("bulk_messages_sent", len(sent))


def test_a_huge_table_of_garbage_sends_nothing_and_reports_every_row(smsnexus_conn, admin, tmp_path, figures):
    garbage = [None, float("nan"), "", "x" * 100_000, "\x00", "+1555", 12, True, [1], {"a": 1}, b"\xff"]
    table = pd.DataFrame({"to": garbage * 300, "name": ["n"] * len(garbage) * 300}, dtype=object)
    report = tmp_path / "garbage.parquet"
    summary = SMSNexusBulkSendOperator(
        task_id="send",
        recipients=table,
        message_template="Hi {{ row.name }}",
        from_number=SENDER,
        honor_opt_outs=False,
        campaign_id="hostile-garbage",
        report_path=str(report),
    ).execute(task_context())
    assert summary["invalid"] == len(table)
    assert admin.sent_messages() == []
    rows = pd.read_parquet(report)
    assert rows["reason"].notna().all()
    assert rows["recipient"].map(lambda v: pd.isna(v) or len(v) <= 103).all()  # raw values are cut short
    figures.add("bulk_rows_with_outcome", len(rows))
