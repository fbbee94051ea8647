"""Random recipient tables thrown at SMSNexusBulkSendOperator: every case ends in a typed error before any
send, or in a per-row outcome with a reason; nothing invalid is sent, nobody twice, no token anywhere."""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections import Counter
from decimal import Decimal

import pandas as pd
import pytest
from hostile_support import SENDER, attempt, no_token, task_context, valid_numbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator
from airflow_provider_smsnexus.utils.phone import normalise_phone

VALID = valid_numbers(40)
FULLWIDTH = str.maketrans("+0123456789", "\uff0b" + "".join(chr(0xFF10 + d) for d in range(10)))
OUTCOMES = {"sent", "failed", "invalid", "duplicate", "suppressed", "already_sent", "unknown"}
ALLOWED_CONTROLS = set("\n\r\t\f")

phones = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(VALID).map(lambda n: f"({n[2:5]}) {n[5:8]}-{n[8:]}"),  # national
    st.sampled_from(VALID).map(lambda n: f"{n[2:5]}.{n[5:8]}.{n[8:]}"),
    st.sampled_from(VALID).map(lambda n: float(n[1:])),  # pandas' float column
    st.sampled_from(VALID).map(lambda n: int(n[1:])),
    st.sampled_from(VALID).map(lambda n: Decimal(n[1:])),
    st.sampled_from(VALID).map(lambda n: n[1:] + ".0"),  # a float saved as text
    st.sampled_from(VALID).map(lambda n: "00" + n[1:]),  # international prefix
    st.sampled_from(VALID).map(lambda n: n.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))),
    st.sampled_from(VALID).map(lambda n: n.translate(FULLWIDTH)),
    st.sampled_from(VALID).map(lambda n: n + "\u202e"),  # right-to-left override
    st.sampled_from(VALID).map(lambda n: "\u200f" + n),  # right-to-left mark
    st.sampled_from(VALID).map(lambda n: n + "\x00"),
    st.sampled_from(VALID).map(lambda n: "📞" + n),
    st.sampled_from(VALID).map(lambda n: n.encode()),
    st.sampled_from(["+442079460958", "+33142685300", "+4930901820", "+861012345678", "+15550100"]),
    st.sampled_from(["", " ", "\t", "N/A", "NaN", "None", "null", "+", "++12125550100", "0", "-1"]),
    st.none(),
    st.just(float("nan")),
    st.just(pd.NA),
    st.just(pd.NaT),
    st.floats(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=20),
    st.just("9" * 10_000),
    st.lists(st.sampled_from(VALID), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
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


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.lists(st.tuples(phones, names), max_size=10))
    frame = pd.DataFrame(rows, columns=["to", "name"], dtype=object)
    if rows and draw(st.booleans()):  # a repeated row
        frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
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
        elif shape == "category":
            frame["to"] = frame["to"].map(lambda v: v if isinstance(v, str) else None).astype("category")
    except UnicodeEncodeError:
        pass
    if shape == "no-to":
        frame = frame.drop(columns=["to"])
    elif shape == "no-name":
        frame = frame.drop(columns=["name"])
    elif shape == "extra":
        frame[draw(st.sampled_from(["", " ", "to ", "TO", "Name", "😀"]))] = 1
    elif shape == "int-names":
        frame.columns = [0, 1]
    return frame


_campaigns = itertools.count()


@pytest.fixture
def admin(smsnexus_emulator):
    """The inspection client alone (hypothesis prints failing arguments; the handle holds the token)."""
    smsnexus_emulator.admin.set_balance(10**9)
    return smsnexus_emulator.admin


def body_problem(body: str) -> str | None:
    if not body.strip():
        return "empty"
    if len(body) > 1600:
        return "too long"
    if any(unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS for c in body):
        return "control characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in body):
        return "lone surrogate"
    return None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    table=tables(),
    template=templates,
    region=st.sampled_from([None, "US"]),
    sender=st.sampled_from([SENDER] * 6 + ["(212) 555-0100", "+12125550102", "nonsense"]),
)
def test_random_tables_end_in_a_typed_error_or_a_reason_per_row(
    smsnexus_conn, admin, tmp_path, figures, table, template, region, sender
):
    figures.add("hypothesis_examples")
    figures.add("hypothesis_examples_bulk")
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
        figures.add("bulk_typed_errors")
        return
    sent = admin.sent_messages()[before:]
    assert no_token(figures, json.dumps(summary), report.read_bytes().decode("latin-1"))
    json.dumps(summary)  # XCom-ready

    rows = pd.read_parquet(report)
    assert len(rows) == len(table) == summary["total"]
    assert set(rows["outcome"]) <= OUTCOMES
    assert rows.loc[rows["outcome"] != "sent", "reason"].notna().all()
    assert summary["sent"] == (rows["outcome"] == "sent").sum() == len(sent)

    valid = {normalise_phone(value, region).number for value in table["to"]} - {None}
    texted = Counter(message["to"] for message in sent)
    duplicates = sum(n - 1 for n in texted.values())
    invalid = set(texted) - valid
    figures.add("duplicates_found", duplicates)
    figures.add("invalid_or_unexpected_texted", len(invalid))
    assert duplicates == 0
    assert not invalid
    assert all(message["from"] == SENDER for message in sent)
    problems = [body_problem(message["body"]) for message in sent]
    assert not any(problems), problems
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
