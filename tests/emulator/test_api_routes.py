"""Tests of the emulator's /api routes over HTTP: envelopes, query checks and the send's field errors."""

from __future__ import annotations

import requests

from airflow_provider_smsnexus.emulator.api_routes import choice_param, query_params


def _get(handle, path: str, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {handle.token}", "Accept": "application/json"}
    return requests.get(f"{handle.base_url}{path}", params=params, headers=headers, timeout=10)


def test_query_params_keep_blank_values_and_the_last_of_a_repeated_name() -> None:
    assert query_params({"query_string": b"page=1&page=3&direction="}) == {"page": "3", "direction": ""}


def test_choice_param_records_a_value_outside_the_choices() -> None:
    errors: dict[str, list[str]] = {}
    assert choice_param({"direction": "inbound"}, "direction", ("inbound", "outbound"), errors) == "inbound"
    assert choice_param({"direction": "up"}, "direction", ("inbound", "outbound"), errors) is None
    assert errors == {"direction": ["The selected direction is invalid."]}


def test_balance_answers_in_the_success_envelope(smsnexus_emulator) -> None:
    smsnexus_emulator.admin.set_balance(1234)
    answer = _get(smsnexus_emulator, "/balance")
    assert answer.status_code == 200
    assert answer.json()["success"] is True
    assert answer.json()["data"]["credits"] == 1234


def test_messages_pages_with_meta_and_refuses_too_large_a_page(smsnexus_emulator) -> None:
    for body in ("a", "b", "c"):
        smsnexus_emulator.admin.add_inbound("+12125550150", "+12125550100", body)
    page = _get(smsnexus_emulator, "/messages", per_page=2, page=2).json()
    assert page["meta"]["total"] == 3
    assert len(page["data"]) == 1
    too_big = _get(smsnexus_emulator, "/messages", per_page=101)
    assert too_big.status_code == 422
    assert too_big.json()["errors"] == {"per_page": ["The per page field must not be greater than 100."]}


def test_send_without_recipient_or_text_names_both_fields(smsnexus_emulator) -> None:
    headers = {"Authorization": f"Bearer {smsnexus_emulator.token}", "Accept": "application/json"}
    answer = requests.post(
        f"{smsnexus_emulator.base_url}/sms/send", json={"from": "+12125550100"}, headers=headers, timeout=10
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == {
        "to": ["The to field is required."],
        "message": ["The message field is required."],
    }
    assert smsnexus_emulator.admin.sent_messages() == []
