"""Tests of the emulator's ASGI application over HTTP: authentication, dates, unknown paths."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import requests

from airflow_provider_smsnexus.emulator.app import create_app, path_is_send
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings


def test_a_request_without_a_token_is_401_in_the_error_envelope(smsnexus_emulator) -> None:
    answer = requests.get(f"{smsnexus_emulator.base_url}/balance", timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"success": False, "message": "Unauthenticated."}


def test_an_unknown_token_is_401(smsnexus_emulator) -> None:
    headers = {"Authorization": "Bearer not-a-token"}
    assert (
        requests.get(f"{smsnexus_emulator.base_url}/balance", headers=headers, timeout=10).status_code == 401
    )


def test_answers_carry_a_date_header_and_an_unknown_path_is_a_json_404(smsnexus_emulator) -> None:
    headers = {"Authorization": f"Bearer {smsnexus_emulator.token}", "Accept": "application/json"}
    answer = requests.get(f"{smsnexus_emulator.base_url}/nothing-here", headers=headers, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["success"] is False
    assert parsedate_to_datetime(answer.headers["Date"]).tzinfo is not None


def test_path_is_send_matches_only_the_send_endpoint() -> None:
    assert path_is_send("/api/sms/send")
    assert path_is_send("/api/sms/send/")
    assert not path_is_send("/api/messages")


def test_create_app_serves_the_given_settings() -> None:
    app = create_app(EmulatorSettings.for_tests(list_order="oldest_first"))
    assert app.emulator.settings.list_order == "oldest_first"
