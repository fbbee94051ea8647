"""Tests of the emulator's generated traffic: seeded history, live traffic and replies."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.state import Emulator
from airflow_provider_smsnexus.emulator.traffic import seed_bodies
from airflow_provider_smsnexus.emulator.validation import ValidationFailed

START = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
END = datetime(2026, 1, 2, tzinfo=timezone.utc).timestamp()


def test_seed_bodies_are_the_same_for_the_same_seed_and_include_stop() -> None:
    outbound, inbound = seed_bodies(random.Random(3))
    assert (outbound, inbound) == seed_bodies(random.Random(3))
    assert "STOP" in inbound
    assert "STOP" not in outbound
    assert len(set(outbound)) == len(outbound)


def test_seed_adds_n_messages_inside_the_span_with_ids_in_created_order() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    assert emulator.seed(1, 200, random_seed=1, start=START, end=END)["seeded"] == 200
    messages = emulator.inspect_messages(emulator.account(1), origins=["seed"])
    assert len(messages) == 200
    moments = [datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).timestamp() for m in messages]
    assert all(START <= moment < END for moment in moments)
    by_id = sorted(zip((m["id"] for m in messages), moments))
    assert [moment for _, moment in by_id] == sorted(moments)
    directions = Counter(m["direction"] for m in messages)
    assert directions["outbound"] > directions["inbound"] > 0


def test_seed_is_reproducible_from_its_seed() -> None:
    bodies = []
    for _ in range(2):
        emulator = Emulator(EmulatorSettings.for_tests())
        emulator.seed(1, 30, random_seed=7, start=START, end=END)
        bodies.append([(m["body"], m["created_at"]) for m in emulator.inspect_messages(emulator.account(1))])
    assert bodies[0] == bodies[1]


def test_seed_refuses_an_empty_span_and_a_negative_count() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    with pytest.raises(ValidationFailed) as excinfo:
        emulator.seed(1, 5, start=END, end=START)
    assert excinfo.value.errors == {"end": ["The end field must be a date after start."]}
    with pytest.raises(ValidationFailed):
        emulator.seed(1, -1)


def test_live_traffic_adds_messages_from_the_active_numbers() -> None:
    emulator = Emulator(EmulatorSettings.for_tests())
    account = emulator.account(1)
    emulator.add_live_traffic(account, 20)
    messages = emulator.inspect_messages(account, origins=["live"])
    assert len(messages) == 20
    ours = {m["from"] if m["direction"] == "outbound" else m["to"] for m in messages}
    assert ours <= {"+12125550100", "+12125550101"}
