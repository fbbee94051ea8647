"""Tests of the emulator's webhook subscriptions over HTTP: create, list, delete, and their checks."""

from __future__ import annotations

import requests


def _api(handle, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or handle.token}", "Accept": "application/json"}
    return requests.request(method, f"{handle.base_url}{path}", headers=headers, timeout=10, **kwargs)


def test_a_created_webhook_is_listed_with_its_events_once(smsnexus_emulator) -> None:
    body = {"url": "https://hooks.example.com/sms", "events": ["message.received", "message.received"]}
    created = _api(smsnexus_emulator, "POST", "/webhooks", json=body)
    assert created.status_code == 200, created.text
    hook = created.json()["data"]
    assert (hook["url"], hook["events"], hook["active"]) == (body["url"], ["message.received"], True)
    assert _api(smsnexus_emulator, "GET", "/webhooks").json()["data"] == [hook]


def test_a_plain_http_url_and_an_unknown_event_are_field_errors(smsnexus_emulator) -> None:
    answer = _api(
        smsnexus_emulator, "POST", "/webhooks", json={"url": "http://h.example.com", "events": ["x"]}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == {
        "url": ["The url field must start with one of the following: https://."],
        "events.0": ["The selected events.0 is invalid."],
    }
    assert _api(smsnexus_emulator, "GET", "/webhooks").json()["data"] == []


def test_delete_removes_a_webhook_and_refuses_unknown_and_foreign_ones(smsnexus_emulator) -> None:
    body = {"url": "https://hooks.example.com/sms", "events": ["message.received"]}
    hook_id = _api(smsnexus_emulator, "POST", "/webhooks", json=body).json()["data"]["id"]
    smsnexus_emulator.admin.add_account("SMSNEXUS-TEST-TOKEN-other")
    assert (
        _api(smsnexus_emulator, "DELETE", f"/webhooks/{hook_id}", "SMSNEXUS-TEST-TOKEN-other").status_code
        == 403
    )
    assert _api(smsnexus_emulator, "DELETE", f"/webhooks/{hook_id}").status_code == 200
    assert _api(smsnexus_emulator, "DELETE", f"/webhooks/{hook_id}").status_code == 404
    assert _api(smsnexus_emulator, "GET", "/webhooks").json()["data"] == []
