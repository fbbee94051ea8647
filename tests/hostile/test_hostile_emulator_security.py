"""The emulator as a hostile tenant or a remote stranger would meet it: accounts are sealed from each other,
the inspection API answers loopback clients only, and no answer shows a token."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_smsnexus.emulator.app import create_app
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusForbiddenError,
    SMSNexusNotFoundError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from tests.hostile.hostile_support import no_token

if TYPE_CHECKING:
    from collections.abc import Sequence

SENDER = "+12125550100"
CONTACTS = ["+13125550111", "+13125550112", "+13125550113", "+13125550114"]
STRANGERS = ["192.0.2.10", "10.0.0.1", "0.0.0.0", "::ffff:192.0.2.10", "2001:db8::1", "169.254.1.1"]
SPOOFED_HEADERS = [
    {},
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"Host": "localhost"},
    {"Host": "127.0.0.1:8025", "X-Forwarded-For": "::1"},
]


def other_token() -> str:
    return f"SMSNEXUS-TEST-TOKEN-tenant-b-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tenants(smsnexus_emulator, smsnexus_conn, monkeypatch):
    """Hooks of two accounts that share the same phone numbers (the hardest case for isolation)."""
    token = other_token()
    account_b = smsnexus_emulator.admin.add_account(token)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_B",
        json.dumps(
            {
                "conn_type": "smsnexus",
                "host": smsnexus_emulator.base_url,
                "password": token,
                "extra": {"retry_backoff": 0.01, "retry_backoff_max": 0.05, "max_retries": 1},
            }
        ),
    )
    return SMSNexusHook(smsnexus_conn), SMSNexusHook("smsnexus_b"), account_b


def test_two_accounts_on_the_same_numbers_never_see_each_others_messages(tenants, smsnexus_emulator, figures):
    hook_a, hook_b, account_b = tenants
    admin = smsnexus_emulator.admin
    admin.seed_messages(300, account=None, random_seed=1)
    for contact in CONTACTS[:3]:
        hook_a.send_sms(SENDER, contact, f"for A only {contact}")
    for contact in (CONTACTS[0], CONTACTS[3]):
        hook_b.send_sms(SENDER, contact, f"for B only {contact}")
    admin.add_inbound(CONTACTS[0], SENDER, "reply to A")
    admin.add_inbound(CONTACTS[0], SENDER, "reply to B", account=account_b)

    seen_a = list(hook_a.iter_messages())
    seen_b = list(hook_b.iter_messages())
    assert len(seen_a) == 300 + 3 + 1
    assert sorted(m["body"] for m in seen_b) == sorted(
        [f"for B only {CONTACTS[0]}", f"for B only {CONTACTS[3]}", "reply to B"]
    )
    assert not {m["id"] for m in seen_a} & {m["id"] for m in seen_b}
    assert not any("B" in m["body"].split() for m in seen_a if m["body"].startswith(("for", "reply")))
    assert hook_b.get_messages(per_page=100)["meta"]["total"] == 3
    for status in ("queued", "delivered"):
        assert {m["id"] for m in hook_b.iter_messages(status=status)} <= {m["id"] for m in seen_b}
    figures.add("isolation_checks")


def test_conversations_of_two_accounts_with_the_same_contact_stay_apart(tenants, smsnexus_emulator, figures):
    hook_a, hook_b, account_b = tenants
    for n in range(3):
        hook_a.send_sms(SENDER, CONTACTS[0], f"A {n}")
    hook_b.send_sms(SENDER, CONTACTS[0], "B 0")
    smsnexus_emulator.admin.add_inbound(CONTACTS[0], SENDER, "B reply", account=account_b)

    conversations_a = list(hook_a.iter_conversations())
    conversations_b = list(hook_b.iter_conversations())
    assert [(c["contact_number"], c["message_count"], c["last_message"]) for c in conversations_a] == [
        (CONTACTS[0], 3, "A 2")
    ]
    assert [(c["contact_number"], c["message_count"], c["last_message"]) for c in conversations_b] == [
        (CONTACTS[0], 2, "B reply")
    ]
    assert conversations_a[0]["id"] != conversations_b[0]["id"]
    figures.add("isolation_checks")


def test_an_account_cannot_list_or_delete_anothers_webhooks(tenants, figures):
    hook_a, hook_b, _ = tenants
    mine = hook_a.create_webhook("https://a.example/hook", ["message.received"])
    theirs = hook_b.create_webhook("https://b.example/hook", ["message.delivered"])
    assert [w["id"] for w in hook_a.list_webhooks()] == [mine["id"]]
    assert [w["id"] for w in hook_b.list_webhooks()] == [theirs["id"]]

    refused = 0
    for webhook_id in [mine["id"], *range(1, 30), "1 OR 1=1", "../1", mine["id"] + 0.0]:
        if webhook_id == theirs["id"]:
            continue
        with pytest.raises((SMSNexusForbiddenError, SMSNexusNotFoundError)):
            hook_b.delete_webhook(webhook_id)
        refused += 1
    assert hook_a.list_webhooks() == [mine]
    hook_b.delete_webhook(theirs["id"])
    assert hook_b.list_webhooks() == []
    assert hook_a.list_webhooks() == [mine]
    figures.add("isolation_checks")
    figures.add("cross_account_deletes_refused", refused)


def test_a_wrong_token_sees_nothing_and_is_never_echoed(smsnexus_emulator, monkeypatch, figures):
    wrong = f"SMSNEXUS-TEST-TOKEN-wrong-{uuid.uuid4().hex[:8]}"
    smsnexus_emulator.admin.seed_messages(20)
    session = httpx.Client(base_url=smsnexus_emulator.base_url, trust_env=False)
    answers = [
        session.get(path, headers=headers)
        for path in ("/messages", "/conversations", "/webhooks", "/balance", "/phone-numbers")
        for headers in ({"Authorization": f"Bearer {wrong}"}, {"Authorization": wrong}, {})
    ]
    session.close()
    assert {answer.status_code for answer in answers} == {401}
    for answer in answers:
        assert wrong not in answer.text
        assert wrong not in json.dumps(dict(answer.headers))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_WRONG",
        json.dumps({"conn_type": "smsnexus", "host": smsnexus_emulator.base_url, "password": wrong}),
    )
    with pytest.raises(SMSNexusAuthError) as caught:
        SMSNexusHook("smsnexus_wrong").get_messages()
    assert no_token(figures, str(caught.value), repr(caught.value), [a.text for a in answers])


# -- the inspection API ----------------------------------------------------------------------------------


async def _asgi(
    app: Any, method: str, path: str, client: Sequence[Any] | None, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """Call the ASGI app directly with a raw path (no client-side URL clean-up) and a chosen client."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": tuple(client) if client is not None else None,
        "server": ("127.0.0.1", 8025),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _inspection_routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for route in app.api.routes:
        path = getattr(route, "path", "")
        if path.startswith("/_emulator"):
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                routes.append((method, path.replace("{account_id}", "1")))
    return routes


def test_every_inspection_route_refuses_every_stranger_whatever_headers_it_forges(figures):
    settings = EmulatorSettings.for_tests()
    app = create_app(settings)
    token = settings.tokens[0]
    before = asyncio.run(_asgi(app, "GET", "/_emulator/config", ("127.0.0.1", 5000), {}))
    asyncio.run(
        _asgi(
            app,
            "POST",
            "/api/sms/send",
            ("192.0.2.10", 5000),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            json.dumps({"from": SENDER, "to": CONTACTS[0], "message": "kept"}).encode(),
        )
    )
    routes = _inspection_routes(app)
    assert len(routes) >= 12  # every route of the inspection API, whatever was added since
    refused = 0
    body = json.dumps({"n": 5, "token": other_token(), "fail_before_share": 1, "credits": 0}).encode()
    for method, path in routes:
        for client in [*[(host, 40000) for host in STRANGERS], None]:
            for headers in SPOOFED_HEADERS:
                headers = {**headers, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                status, answer = asyncio.run(_asgi(app, method, path, client, headers, body))
                assert status == 403, (method, path, client, headers)
                assert no_token(figures, answer.decode())
                refused += 1
    # Nothing a stranger sent changed the state: the message is there, the settings are as before.
    assert asyncio.run(_asgi(app, "GET", "/_emulator/config", ("127.0.0.1", 5000), {})) == before
    status, messages = asyncio.run(_asgi(app, "GET", "/_emulator/accounts/1/messages", ("::1", 1), {}))
    assert status == 200
    assert [m["body"] for m in json.loads(messages)["data"]] == ["kept"]
    assert (
        len(
            json.loads(asyncio.run(_asgi(app, "GET", "/_emulator/accounts", ("127.0.0.1", 1), {}))[1])["data"]
        )
        == 1
    )
    figures.add("inspection_requests_refused", refused)


@pytest.mark.parametrize(
    "path",
    [
        "/api/../_emulator/reset",
        "/api/%2e%2e/_emulator/reset",
        "//_emulator/reset",
        "/_emulator/../_emulator/reset",
        "/_EMULATOR/reset",
        "/api/_emulator/reset",
        "/_emulator%2freset",
        "/./_emulator/reset",
    ],
)
def test_path_tricks_do_not_reach_the_inspection_api_from_outside(path, figures):
    settings = EmulatorSettings.for_tests()
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {settings.tokens[0]}", "Content-Type": "application/json"}
    message = json.dumps({"from": SENDER, "to": CONTACTS[0], "message": "survives"}).encode()
    assert asyncio.run(_asgi(app, "POST", "/api/sms/send", ("192.0.2.10", 1), headers, message))[0] == 200
    status, answer = asyncio.run(_asgi(app, "POST", path, ("192.0.2.10", 1), headers))
    assert status in (401, 403, 404, 405)
    assert no_token(figures, answer.decode())
    status, messages = asyncio.run(_asgi(app, "GET", "/_emulator/accounts/1/messages", ("127.0.0.1", 1), {}))
    assert [m["body"] for m in json.loads(messages)["data"]] == ["survives"]  # not reset
    figures.add("inspection_requests_refused")


def test_the_inspection_api_never_shows_a_token_even_to_loopback(smsnexus_emulator, figures):
    admin = smsnexus_emulator.admin
    second = admin.add_account(other_token())
    admin.seed_messages(50, account=second)
    shown = [
        admin.health(),
        admin.config(),
        admin.stats(),
        admin.accounts(),
        admin.account(),
        admin.account(second),
        admin.messages(second),
        admin.webhook_deliveries(),
    ]
    assert no_token(figures, *shown)
