"""Tests of message rendering: canonical text, the ledger hash, text and media checks, the template."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from airflow_provider_smsnexus.campaign.render import (
    MessageTemplate,
    TemplateRow,
    media_url_problem,
    message_hash,
    message_problem,
    normalise_body,
    raw_text,
)
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError, SMSNexusMissingValueError


def test_normalise_body_uses_nfc_line_feeds_and_trims() -> None:
    assert normalise_body("  cafe\u0301\r\nok \n") == "caf\u00e9\nok"


def test_message_hash_is_sha256_of_sender_unit_separator_and_canonical_text() -> None:
    expected = hashlib.sha256(b"+12125550100\x1fHi there").hexdigest()
    assert message_hash("+12125550100", " Hi there\r\n") == expected
    assert message_hash("+12125550100", "Hi there") != message_hash("+12125550199", "Hi there")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "empty message"),
        ("bell\x07", "message contains control characters"),
        ("lone \ud800", "message is not valid Unicode text (lone surrogate)"),
        ("tab\tand\nnewline", None),
    ],
)
def test_message_problem_names_what_cannot_be_sent(body: str, problem: str | None) -> None:
    assert message_problem(body) == problem


def test_media_url_problem_accepts_http_urls_only() -> None:
    assert media_url_problem("https://example.com/a.png") is None
    assert media_url_problem("ftp://example.com/a.png") == "invalid media_url: not an http(s) URL"
    assert media_url_problem("https://example.com/a b.png") == "invalid media_url: not an http(s) URL"


def test_template_renders_row_columns_and_context_and_prints_missing_as_empty() -> None:
    template = MessageTemplate('Hi {{ row.name or "there" }}, {{ row["due date"] }}{{ row.note }} ({{ ds }})')
    row = TemplateRow({"name": float("nan"), "due date": "May 1", "note": None})
    assert template.render({"ds": "2026-03-08"}, row) == "Hi there, May 1 (2026-03-08)"


def test_template_reports_the_columns_it_names_that_the_table_lacks() -> None:
    template = MessageTemplate("{{ row.first }} {{ row['last name'] }} {{ row.items }}")
    assert template.missing_columns(["first"]) == ["items", "last name"]


def test_template_with_bad_syntax_or_an_undefined_name_is_a_campaign_error() -> None:
    with pytest.raises(SMSNexusCampaignError, match="not valid Jinja"):
        MessageTemplate("{{ row.name ")
    with pytest.raises(SMSNexusCampaignError, match="undefined"):
        MessageTemplate("{{ nothing_here }}").render({}, TemplateRow({}))


def test_raw_text_shortens_long_cells_and_keeps_missing_as_none() -> None:
    assert raw_text(None) is None
    assert raw_text(12) == "12"
    assert raw_text("x" * 150) == "x" * 100 + "..."


# -- missing values (issue 22, hole 5): the rules of the sending guide, as a hand-checked table ---------------

MISSING = [None, float("nan"), pd.NA, pd.NaT]


@pytest.mark.parametrize("missing", MISSING, ids=["None", "NaN", "NA", "NaT"])
@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("Hi {{ row.name }}!", "Hi !"),
        ("Hi {{ row.name | title }}!", "Hi !"),
        ("Hi {{ row.name | upper | trim }}!", "Hi !"),
        ("Hi {{ row.name | string | capitalize }}!", "Hi !"),
        ("Hi {{ row.name ~ '' }}!", "Hi !"),
        ("Hi {{ row.name | default('there') }}!", "Hi there!"),
        ("Hi {{ row.name | default('there') | title }}!", "Hi There!"),
        ("Hi {{ row.name or 'there' }}!", "Hi there!"),
        ("{{ row.name is none }} {{ row.name is defined }} {{ row.name | length }}", "True False 0"),
        ("{% if row.name %}yes{% else %}no{% endif %}", "no"),
        ("[{% for c in row.name %}{{ c }}{% endfor %}]", "[]"),
        ("{{ row.meta.tier | default('standard') }}", "standard"),
        ("{{ row.meta.tier is defined }}", "False"),
    ],
)
def test_a_missing_value_prints_empty_whatever_filters_follow(missing, source: str, text: str) -> None:
    row = TemplateRow({"name": missing, "meta": missing})
    assert MessageTemplate(source).render({}, row) == text


@pytest.mark.parametrize(
    ("source", "meta", "text"),
    [
        ("{{ row.meta.tier | title }}", {"tier": None}, ""),
        ("{{ row.meta['tier'] | upper }}", {"tier": float("nan")}, ""),
        ("{{ row.meta.tier | default('standard') }}", {"tier": pd.NA}, "standard"),
        ("{{ row.meta.tier | default('standard') }}", {}, "standard"),
        ("{{ row.meta.tiers[1] | default('none') }}", {"tiers": ["gold"]}, "none"),
        ("{% for t in row.meta.tiers %}<{{ t | title }}>{% endfor %}", {"tiers": ["gold", None]}, "<Gold><>"),
        ("{{ row.meta.tiers | join(',') }}", {"tiers": ["a", None, "b"]}, "a,,b"),
        ("{{ row.meta | tojson }}", {"tier": None, "plan": "pro"}, '{"plan": "pro", "tier": null}'),
        ("{{ row.meta.tier.level is defined }}", {}, "False"),
    ],
)
def test_nested_missing_values_follow_the_same_rules(source: str, meta: dict, text: str) -> None:
    assert MessageTemplate(source).render({}, TemplateRow({"meta": meta})) == text


@pytest.mark.parametrize(
    ("source", "values", "field"),
    [
        ("{{ row.meta.tier }}", {"meta": {"plan": "basic"}}, "meta.tier"),
        ("{{ row.meta['tier'] | title }}", {"meta": {}}, "meta.tier"),
        ("{{ row.meta.tier }}", {"meta": None}, "meta.tier"),
        ("{{ row.meta.tier | upper }}", {"meta": float("nan")}, "meta.tier"),
        ("{{ row.meta.tier.level }}", {"meta": {}}, "meta.tier.level"),
        ("{{ row.items[2].sku }}", {"items": [{"sku": 1}]}, "items[2].sku"),
        ("{{ row.items[0].sku }}", {"items": [{}]}, "items[0].sku"),
        ("{% if row.meta.tier %}x{% endif %}", {"meta": {}}, "meta.tier"),
        ("{{ row.count + 1 }}", {"count": None}, "count"),
        ("{% if row.count > 2 %}many{% endif %}", {"count": float("nan")}, "count"),
    ],
)
def test_a_value_the_row_lacks_is_a_row_error_naming_the_field(source: str, values: dict, field: str) -> None:
    with pytest.raises(SMSNexusMissingValueError) as caught:
        MessageTemplate(source).render({}, TemplateRow(values))
    assert caught.value.field == field
    assert str(caught.value) == f"the text needs {field}, which the row does not have"
    assert not isinstance(caught.value, SMSNexusCampaignError)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("{{ params.nothing }}", "undefined"),
        ("{{ nothing_here | default('x') }}{{ ds }}", "undefined"),
        ("{{ row.name.__class__ }}", "sandbox"),
        ("{{ row.meta.__class__ }}", "sandbox"),
    ],
)
def test_names_no_row_has_stay_errors_of_the_whole_template(source: str, match: str) -> None:
    with pytest.raises(SMSNexusCampaignError, match=match):
        MessageTemplate(source).render({"params": {}}, TemplateRow({"name": None, "meta": {}}))


def test_rendering_is_deterministic_and_the_hash_is_over_the_final_text() -> None:
    template = MessageTemplate("  Hi {{ row.name | title }}, {{ row.meta | tojson }} {{ ds }}  ")
    values = {"name": None, "meta": {"b": None, "a": [1, None]}}
    texts = {template.render({"ds": "2026-03-08"}, TemplateRow(dict(values))) for _ in range(3)}
    assert texts == {'Hi , {"a": [1, null], "b": null} 2026-03-08'}
    expected = hashlib.sha256(b'+12125550100\x1fHi , {"a": [1, null], "b": null} 2026-03-08').hexdigest()
    assert message_hash("+12125550100", texts.pop()) == expected
