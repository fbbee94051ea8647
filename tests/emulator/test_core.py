"""What every part of the emulator shares: the server's clock (``clock_offset_seconds`` moves what it
writes, its ``Date`` header, its rate-limit reset and how it reads date parameters) and ids that
never repeat across restarts or resets."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import pytest
import requests

from airflow_provider_smsnexus.emulator.core import time_based_id_base
from airflow_provider_smsnexus.emulator.server import EmulatorServer
from airflow_provider_smsnexus.emulator.settings import DEFAULT_TOKEN, EmulatorSettings
from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

ACCOUNT_NUMBER = "+12125550100"
JSON_SAFE = 2**53


def epoch(created_at: str) -> float:
    return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header_date(response: requests.Response) -> float:
    dates = response.raw.headers.getlist("Date")
    assert len(dates) == 1, dates  # one Date header: the server's, not also uvicorn's
    return parsedate_to_datetime(dates[0]).timestamp()


@pytest.mark.parametrize("offset", [-300.0, 300.0])
def test_clock_offset_moves_created_at_the_date_header_and_the_rate_limit_reset(
    api, smsnexus_emulator, offset
):
    smsnexus_emulator.admin.configure(clock_offset_seconds=offset)
    before = time.time()
    response = api.send("what time is it")
    after = time.time()
    # Both are whole seconds of the server's clock, taken while the test's clock was in [before, after].
    low, high = math.floor(before + offset), after + offset
    assert low <= epoch(response.json()["data"]["created_at"]) <= high
    date = header_date(response)
    assert low <= date <= high
    window = smsnexus_emulator.admin.config()["window_seconds"]
    assert date < int(response.headers["X-RateLimit-Reset"]) <= date + window + 1


def test_clock_offset_dates_every_api_answer_also_errors(client_for, smsnexus_emulator):
    smsnexus_emulator.admin.configure(clock_offset_seconds=-7200)
    before = time.time()
    response = client_for(None).get("/balance")
    after = time.time()
    assert response.status_code == 401
    assert math.floor(before - 7200) <= header_date(response) <= after - 7200


def test_without_offset_the_date_header_follows_the_machines_clock(api):
    before = time.time()
    response = api.get("/balance")
    after = time.time()
    assert math.floor(before) <= header_date(response) <= after


def test_date_parameters_are_read_on_the_servers_clock(api, smsnexus_emulator):
    offset = 3600
    smsnexus_emulator.admin.configure(clock_offset_seconds=offset)
    before = time.time()
    sent = api.send("an hour ahead").json()["data"]
    after = time.time()
    server_window = {"start_date": iso(before + offset - 1), "end_date": iso(after + offset + 2)}
    assert [m["id"] for m in api.get("/messages", **server_window).json()["data"]] == [sent["id"]]
    own_window = {"start_date": iso(before - 1), "end_date": iso(after + 2)}
    assert api.get("/messages", **own_window).json()["data"] == []


def test_clock_offset_moves_conversations_and_inbound_messages(api, smsnexus_emulator):
    smsnexus_emulator.admin.configure(clock_offset_seconds=-600)
    before = time.time()
    smsnexus_emulator.admin.add_inbound("+12125550150", ACCOUNT_NUMBER, "hi")
    after = time.time()
    conversation = api.get("/conversations").json()["data"][0]
    assert math.floor(before - 600) <= epoch(conversation["last_message_at"]) <= after - 600


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {DEFAULT_TOKEN}"
    return session


def _one_run(text: str, *, seed: int = 0) -> tuple[list[int], list[int]]:
    """Start an emulator, send ``text`` (and seed history), stop it: its message and conversation ids."""
    with EmulatorServer(EmulatorSettings.for_tests()) as server:
        session = _session()
        answer = session.post(
            f"{server.base_url}/sms/send",
            json={"from": ACCOUNT_NUMBER, "to": "+12125550150", "message": text},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        admin = EmulatorAdmin(server.root_url)
        if seed:
            admin.seed_messages(seed)
        conversations = session.get(f"{server.base_url}/conversations", params={"per_page": 100}, timeout=10)
        return [m["id"] for m in admin.messages()], [c["id"] for c in conversations.json()["data"]]


def test_message_and_conversation_ids_grow_across_emulator_restarts():
    first_messages, first_conversations = _one_run("first run", seed=1000)
    second_messages, second_conversations = _one_run("second run")
    assert len(first_messages) == 1001
    assert min(second_messages) > max(first_messages)
    assert min(second_conversations) > max(first_conversations)
    for ids in (first_messages, second_messages, first_conversations, second_conversations):
        assert min(ids) > 0
        assert max(ids) < JSON_SAFE


def test_a_reset_never_hands_out_an_id_again(api, smsnexus_emulator):
    before = api.send("before the reset").json()["data"]["id"]
    smsnexus_emulator.admin.reset()
    after = api.send("after the reset").json()["data"]["id"]
    assert after > before


def test_the_id_base_is_microseconds_since_2020():
    # 2020-01-01T00:00:00Z is 1577836800; one second and a half later the base is 1.5 million.
    assert time_based_id_base(1_577_836_801.5) == 1_500_000
    # 2026-01-01T00:00:00Z is 1767225600: 189388800 s after 2020, i.e. about 1.9e14 - JSON-safe.
    assert time_based_id_base(1_767_225_600) == 189_388_800_000_000
