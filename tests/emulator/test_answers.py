"""The encoded answers: a message page built from the columns is the same JSON, byte for byte, as the
standard library writes for the store's own dict of each message; the read paths the ASGI layer
answers itself give the bytes their FastAPI routes give."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_provider_smsnexus.emulator.answers import envelope, message_page_body
from airflow_provider_smsnexus.emulator.api_routes import ACCOUNT_SCOPE_KEY
from airflow_provider_smsnexus.emulator.app import create_app
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.store import (
    DELIVERED,
    FAILED,
    INBOUND,
    OUTBOUND,
    QUEUED,
    RECEIVED,
    SENT,
    MessageStore,
    StringTable,
)

#: Bodies JSON must escape, or must not: quotes, backslashes, control characters, non-ASCII, emoji,
#: the line separators JavaScript trips on, markup.
BODIES = ['Say "hi" \\ bye', "tab\tnew\nline\x00\x1f\x7f", "café ☕ 😀", "\u2028\u2029", "</script>", ""]
#: Moments around the edges of a day, a leap day, a year and the epoch (epoch seconds).
MOMENTS = [0, 59, 86399, 951782400 + 86399, 1709942399, 1709942400, 1767225599, 1775000000]


def stdlib_page(store: MessageStore, rows: list[int], meta: dict[str, int]) -> bytes:
    """The old encoding: the store's dict per message through the standard library's encoder."""
    content = envelope([store.message_dict(row) for row in rows], meta=meta)
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_message_page_from_the_columns_is_the_stdlib_json_of_the_message_dicts():
    counter = itertools.count(1)
    store = MessageStore(StringTable(), StringTable(), lambda: next(counter))
    kinds = [
        (OUTBOUND, QUEUED),
        (OUTBOUND, SENT),
        (OUTBOUND, DELIVERED),
        (OUTBOUND, FAILED),
        (INBOUND, RECEIVED),
    ]
    rows = []
    for message_id, (created, body, (direction, status)) in enumerate(
        itertools.product(MOMENTS, BODIES, kinds), start=2**40
    ):
        row = store.append(
            message_id=message_id, created=created, direction=direction, status=status,
            credits=message_id % 7, number="+12125550100", contact=f"+121255501{message_id % 100:02d}",
            body=body, origin=0,
        )  # fmt: skip
        rows.append(row)
    meta = {"current_page": 3, "last_page": 9, "per_page": 100, "total": 888}
    assert message_page_body(store, rows, meta) == stdlib_page(store, rows, meta)
    assert message_page_body(store, [], meta) == stdlib_page(store, [], meta)


def call(app, path: str, query: dict[str, Any], *, through_fastapi: bool) -> tuple[int, bytes]:
    """One GET answered in-process: by the whole ASGI application (fast path for the hot reads), or
    by its FastAPI routes alone (as an authenticated request reaches them)."""
    emulator = app.emulator
    account = emulator.authenticate(emulator.settings.tokens[0])
    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": urlencode(query).encode(), "scheme": "http", "http_version": "1.1",
        "headers": [(b"host", b"emulator"), (b"authorization", f"Bearer {account.token}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    if through_fastapi:
        scope[ACCOUNT_SCOPE_KEY] = account
        asyncio.run(app.api(scope, receive, send))
    else:
        asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture(scope="module")
def seeded_app():
    app = create_app(EmulatorSettings(lifecycle="manual", read_limit=10**6, random_seed=5))
    account = next(iter(app.emulator.accounts.values()))
    app.emulator.seed(account.id, 500, random_seed=3, start=1767225600, end=1769904000)  # January 2026
    return app


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/messages", {"per_page": 100}),
        ("/api/messages", {"per_page": 7, "page": 3, "status": "delivered"}),
        ("/api/messages", {"direction": "inbound", "start_date": "2026-01-02", "end_date": "2026-01-20"}),
        ("/api/messages", {"page": "", "per_page": ""}),
        ("/api/messages", {"page": 1000}),
        ("/api/messages", {"per_page": 101}),
        ("/api/messages", {"page": "x", "status": "lost"}),
        ("/api/messages", {"start_date": "2026-02-01", "end_date": "2026-01-01"}),
        ("/api/messages", {"start_date": "yesterday"}),
        ("/api/conversations", {"per_page": 10, "page": 2}),
        ("/api/conversations", {"per_page": 0}),
        ("/api/balance", {}),
    ],
)
def test_the_fast_read_paths_answer_byte_for_byte_as_their_fastapi_routes(seeded_app, path, query):
    fast = call(seeded_app, path, query, through_fastapi=False)
    routed = call(seeded_app, path, query, through_fastapi=True)
    assert fast == routed
    assert fast[0] in (200, 422)
    if fast[0] == 422:
        assert set(json.loads(fast[1])["errors"]) <= {"page", "per_page", "status", "start_date", "end_date"}


def test_the_message_list_over_http_shows_the_emulators_record(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(150, random_seed=3)
    api.send('Quote " and \\ and ☕')
    answer = api.get("/messages", per_page=100, page=1)
    assert answer.headers["Content-Type"] == "application/json"
    record = smsnexus_emulator.admin.messages()
    newest = sorted(record, key=lambda m: (m["created_at"], m["id"]), reverse=True)[:100]
    without_extras = [{k: v for k, v in m.items() if k not in ("media_url", "origin")} for m in newest]
    assert answer.json()["data"] == without_extras
    assert answer.json()["meta"] == {"current_page": 1, "last_page": 2, "per_page": 100, "total": 151}
