"""The JSON decoding of answers (msgspec first, json for what msgspec refuses): same values, same errors."""

from __future__ import annotations

import json

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError
from airflow_provider_smsnexus.hooks._answers import interpret_answer
from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo


def answer(text: str, status: int = 200):
    return interpret_answer("GET", "/api/messages", status, text, RateLimitInfo(), secret="TOKEN")


@pytest.mark.parametrize(
    "text",
    [
        '{"data": [{"id": 1, "body": "h\\u00e9llo \\ud83d\\ude00", "created_at": "2026-03-01T00:00:00Z"}]}',
        '{"data": [], "meta": {"total": 123456789012345678901234567890}}',  # beyond 64 bits
        '{"data": [], "meta": {"score": NaN, "big": 1e400}}',  # json's extensions: msgspec refuses them
        '{"data": [], "a": 1, "a": 2}',  # a repeated key: the last one wins
        '{"data": ["\\ud800"]}',  # a lone surrogate, as JSON allows
    ],
)
def test_a_successful_answer_decodes_to_what_json_loads_gives(text):
    decoded, expected = answer(text), json.loads(text)
    assert repr(decoded) == repr(expected)  # repr: NaN never equals itself


@pytest.mark.parametrize("text", ["[" * 100_000, '{"data": [1]} trailing', "not json"])
def test_a_success_whose_body_is_not_json_is_a_response_error(text):
    with pytest.raises(SMSNexusResponseError, match="not JSON"):
        answer(text)
