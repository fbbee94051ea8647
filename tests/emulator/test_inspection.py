"""The inspection API (/_emulator/): loopback only, reset, accounts, configuration, and the fixtures."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from airflow_provider_smsnexus.emulator.app import create_app
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin, EmulatorAdminError

SENDER = "+12125550100"
CONTACT = "+12125550150"
HIDDEN_TOKEN = "SMSNEXUS-TEST-TOKEN-hidden"
OTHER_TOKEN = "SMSNEXUS-TEST-TOKEN-other"


async def _call(client_address: str, method: str, path: str, **kwargs) -> httpx.Response:
    app = create_app(EmulatorSettings.for_tests())
    transport = httpx.ASGITransport(app=app, client=(client_address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize("path", ["/_emulator/health", "/_emulator/stats", "/_emulator/accounts/1/messages"])
def test_inspection_api_refuses_clients_that_are_not_loopback(path):
    import asyncio

    response = asyncio.run(_call("192.0.2.10", "GET", path))
    assert response.status_code == 403
    assert response.json()["success"] is False
    assert asyncio.run(_call("127.0.0.1", "GET", path)).status_code == 200
    assert asyncio.run(_call("::1", "GET", path)).status_code == 200


def test_the_api_itself_answers_any_client():
    import asyncio

    headers = {"Authorization": f"Bearer {EmulatorSettings().tokens[0]}"}
    assert asyncio.run(_call("192.0.2.10", "GET", "/api/balance", headers=headers)).status_code == 200


def test_reset_returns_to_a_clean_default_account(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.add_account(OTHER_TOKEN)
    admin.seed_messages(30)
    admin.set_limits(send_limit=1, window_seconds=1)
    admin.set_faults(latency_ms=1)
    admin.set_balance(5)
    api.post("/webhooks", {"url": "https://example.com/h", "events": ["message.failed"]})
    admin.reset()
    assert admin.stats()["requests"] == {"send": 0, "other": 0}
    assert [a["id"] for a in admin.accounts()] == [1]
    assert api.get("/balance").json()["data"]["credits"] == 10000
    assert api.get("/messages").json()["meta"]["total"] == 0
    assert api.get("/webhooks").json()["data"] == []
    config = admin.config()
    assert (config["send_limit"], config["latency_ms"], config["lifecycle"]) == (1_000_000, 0, "manual")


def test_inspection_never_returns_tokens(smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.add_account(HIDDEN_TOKEN)
    text = json.dumps([admin.accounts(), admin.account(2), admin.config(), admin.stats()])
    assert "SMSNEXUS-TEST-TOKEN" not in text
    assert "token" not in admin.account(2)
    assert "hidden" not in repr(smsnexus_emulator)


def test_admin_errors_say_what_was_refused(smsnexus_emulator):
    admin = smsnexus_emulator.admin
    with pytest.raises(EmulatorAdminError) as unknown:
        admin.account(99)
    assert unknown.value.status_code == 404
    with pytest.raises(EmulatorAdminError) as duplicate:
        admin.add_account(smsnexus_emulator.token)
    assert duplicate.value.status_code == 422
    with pytest.raises(EmulatorAdminError, match="no_such_setting"):
        admin.configure(no_such_setting=1)
    with pytest.raises(EmulatorAdminError, match="window_seconds"):
        admin.set_limits(window_seconds=0)
    with pytest.raises(EmulatorAdminError, match="to"):
        admin.add_inbound(CONTACT, "+13125550100", "not our number")
    with pytest.raises(EmulatorAdminError, match="n"):
        admin.seed_messages(-1)


def test_admin_client_takes_the_api_base_url_too(smsnexus_emulator):
    admin = EmulatorAdmin(smsnexus_emulator.base_url)
    health = admin.health()
    assert (health["status"], health["accounts"]) == ("ok", 1)
    assert health["run"] == smsnexus_emulator.server.emulator.run_id  # the run every answer names
    assert admin.root_url + "/api" == smsnexus_emulator.base_url


def test_seed_accepts_a_time_span(smsnexus_emulator):
    admin = smsnexus_emulator.admin
    result = admin.seed_messages(100, start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z")
    assert result["seeded"] == 100
    assert all(m["created_at"].startswith("2026-01-01") for m in admin.messages())


def test_connection_json_points_at_the_emulator(smsnexus_emulator):
    connection = json.loads(smsnexus_emulator.connection_json(timeout=3))
    assert connection["conn_type"] == "smsnexus"
    assert connection["host"] == smsnexus_emulator.base_url
    assert connection["host"].startswith("http://127.0.0.1:")
    assert connection["host"].endswith("/api")
    assert connection["password"] == smsnexus_emulator.token
    assert connection["extra"] == {"timeout": 3}


def test_smsnexus_conn_sets_the_default_connection(smsnexus_conn, smsnexus_emulator):
    assert smsnexus_conn == "smsnexus_default"
    connection = json.loads(os.environ["AIRFLOW_CONN_SMSNEXUS_DEFAULT"])
    assert connection["host"] == smsnexus_emulator.base_url
    assert connection["extra"] == {
        "retry_backoff": 0.01,
        "retry_backoff_max": 0.05,
        "timeout": 10,
        "listing_delay": 0,
    }


def test_the_default_token_is_recognisable(smsnexus_emulator):
    assert "SMSNEXUS-TEST-TOKEN" in smsnexus_emulator.token


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"failure_share": 1.5}, "failure_share"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"send_limit": "many"}, "send_limit"),
        ({"allow_http_webhooks": "yes"}, "allow_http_webhooks"),
        ({"lifecycle": "sometimes"}, "lifecycle"),
        ({"tokens": ["x"]}, "tokens"),
    ],
)
def test_configure_refuses_invalid_settings_and_changes_nothing(smsnexus_emulator, settings, field):
    admin = smsnexus_emulator.admin
    before = admin.config()
    with pytest.raises(EmulatorAdminError) as refused:
        admin.configure(**settings)
    assert refused.value.status_code == 422
    assert field in refused.value.body["errors"]
    assert admin.config() == before


def test_update_account_checks_types(smsnexus_emulator):
    with pytest.raises(EmulatorAdminError, match="credits"):
        smsnexus_emulator.admin.set_balance("lots")
    with pytest.raises(EmulatorAdminError, match="token"):
        smsnexus_emulator.admin.update_account(token="SMSNEXUS-TEST-TOKEN-new")
    assert smsnexus_emulator.admin.account()["credits"] == 10000
