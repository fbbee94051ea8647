"""GET /api/messages: newest first, filters, created_at window, pagination meta, validation."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

SENDER = "+12125550100"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 8, tzinfo=timezone.utc)
OTHER_TOKEN = "SMSNEXUS-TEST-TOKEN-other"


def parse(created_at: str) -> datetime:
    return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def all_pages(api, **params) -> list[dict]:
    rows, page = [], 1
    while True:
        body = api.get("/messages", page=page, per_page=100, **params).json()
        rows += body["data"]
        if page >= body["meta"]["last_page"]:
            return rows
        page += 1


def test_empty_list_has_reference_meta(api):
    body = api.get("/messages").json()
    assert body == {
        "success": True,
        "data": [],
        "meta": {"current_page": 1, "last_page": 1, "per_page": 25, "total": 0},
    }


def test_items_have_the_reference_shape(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(20, start=START, end=END)
    item = api.get("/messages").json()["data"][0]
    assert set(item) == {"id", "from", "to", "body", "direction", "status", "credits_used", "created_at"}
    assert item["direction"] in ("outbound", "inbound")
    assert START <= parse(item["created_at"]) < END


def test_meta_counts_pages_like_the_reference(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(250, start=START, end=END)
    body = api.get("/messages").json()
    assert body["meta"] == {"current_page": 1, "last_page": 10, "per_page": 25, "total": 250}
    assert len(body["data"]) == 25
    last = api.get("/messages", page=3, per_page=100).json()
    assert last["meta"] == {"current_page": 3, "last_page": 3, "per_page": 100, "total": 250}
    assert len(last["data"]) == 50
    beyond = api.get("/messages", page=4, per_page=100).json()
    assert beyond["data"] == []
    assert beyond["meta"]["current_page"] == 4


def test_list_is_newest_first_and_pages_do_not_overlap(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(530, random_seed=3, start=START, end=END)
    rows = all_pages(api)
    keys = [(parse(r["created_at"]), r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert len({r["id"] for r in rows}) == 530
    assert {r["id"] for r in rows} == {m["id"] for m in smsnexus_emulator.admin.messages()}


def test_a_sent_message_appears_first(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(50, start=START, end=END)
    sent = api.send("newest").json()["data"]
    first = api.get("/messages", per_page=1).json()["data"][0]
    assert first["id"] == sent["id"]
    assert first["direction"] == "outbound"
    assert first["status"] == "queued"


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"status": "delivered"}, lambda r: r["status"] == "delivered"),
        ({"status": "failed"}, lambda r: r["status"] == "failed"),
        ({"direction": "inbound"}, lambda r: r["direction"] == "inbound"),
        (
            {"direction": "outbound", "status": "delivered"},
            lambda r: (r["direction"], r["status"]) == ("outbound", "delivered"),
        ),
    ],
)
def test_status_and_direction_filters(api, smsnexus_emulator, params, check):
    smsnexus_emulator.admin.seed_messages(800, random_seed=1, start=START, end=END)
    everything = smsnexus_emulator.admin.messages()
    rows = all_pages(api, **params)
    assert rows
    assert all(check(r) for r in rows)
    assert sorted(r["id"] for r in rows) == sorted(m["id"] for m in everything if check(m))
    assert api.get("/messages", **params).json()["meta"]["total"] == len(rows)


def test_inbound_messages_have_status_received_and_no_credits(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(100, start=START, end=END)
    rows = all_pages(api, status="received")
    assert rows
    assert {(r["direction"], r["credits_used"]) for r in rows} == {("inbound", 0)}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-03T00:00:00Z", "2026-03-05T00:00:00Z"),
        ("2026-03-03T02:00:00+02:00", "2026-03-05T00:00:00+00:00"),
        ("2026-03-03", "2026-03-05"),
        ("2026-03-03T00:00:00", "2026-03-05T00:00:00.000000Z"),
    ],
)
def test_date_window_is_start_inclusive_end_exclusive_on_created_at(api, smsnexus_emulator, start, end):
    smsnexus_emulator.admin.seed_messages(700, random_seed=5, start=START, end=END)
    lo = datetime(2026, 3, 3, tzinfo=timezone.utc)
    hi = datetime(2026, 3, 5, tzinfo=timezone.utc)
    rows = all_pages(api, start_date=start, end_date=end)
    expected = [m["id"] for m in smsnexus_emulator.admin.messages() if lo <= parse(m["created_at"]) < hi]
    assert sorted(r["id"] for r in rows) == sorted(expected)
    assert all(lo <= parse(r["created_at"]) < hi for r in rows)


def test_window_boundaries_are_exact_to_the_second(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(300, random_seed=2, start=START, end=START + timedelta(minutes=10))
    rows = all_pages(api)
    moment = rows[150]["created_at"]
    at_or_after = all_pages(api, start_date=moment)
    before = all_pages(api, end_date=moment)
    assert all(parse(r["created_at"]) >= parse(moment) for r in at_or_after)
    assert all(parse(r["created_at"]) < parse(moment) for r in before)
    assert len(at_or_after) + len(before) == 300


def test_filters_combine_with_the_window(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(900, random_seed=8, start=START, end=END)
    lo, hi = "2026-03-02T12:00:00Z", "2026-03-06T00:00:00Z"
    rows = all_pages(api, status="delivered", direction="outbound", start_date=lo, end_date=hi)
    expected = [
        m["id"]
        for m in smsnexus_emulator.admin.messages()
        if m["status"] == "delivered"
        and m["direction"] == "outbound"
        and parse(lo) <= parse(m["created_at"]) < parse(hi)
    ]
    assert sorted(r["id"] for r in rows) == sorted(expected)


def assert_422(response, field: str, text: str) -> None:
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert body["errors"][field] == [text]


def test_per_page_over_100_is_refused(api):
    assert api.get("/messages", per_page=100).status_code == 200
    assert_422(
        api.get("/messages", per_page=101), "per_page", "The per page field must not be greater than 100."
    )


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"per_page": 0}, "per_page", "The per page field must be at least 1."),
        ({"page": 0}, "page", "The page field must be at least 1."),
        ({"page": "two"}, "page", "The page field must be an integer."),
        ({"status": "lost"}, "status", "The selected status is invalid."),
        ({"direction": "sideways"}, "direction", "The selected direction is invalid."),
        ({"start_date": "yesterday"}, "start_date", "The start date field must be a valid date."),
        ({"end_date": "2026-13-01"}, "end_date", "The end date field must be a valid date."),
        (
            {"start_date": "2026-03-05T00:00:00Z", "end_date": "2026-03-04T00:00:00Z"},
            "end_date",
            "The end date field must be a date after or equal to start date.",
        ),
    ],
)
def test_invalid_query_parameters_are_422(api, params, field, text):
    assert_422(api.get("/messages", **params), field, text)


def test_accounts_see_only_their_own_messages(api, client_for, smsnexus_emulator):
    other_id = smsnexus_emulator.admin.add_account(OTHER_TOKEN)
    other = client_for(OTHER_TOKEN)
    smsnexus_emulator.admin.seed_messages(40, account=other_id, start=START, end=END)
    api.send("mine")
    assert api.get("/messages").json()["meta"]["total"] == 1
    assert other.get("/messages").json()["meta"]["total"] == 40
    assert len(smsnexus_emulator.admin.messages(other_id)) == 40


def test_seeded_history_is_reproducible(smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.seed_messages(200, random_seed=42, start=START, end=END)
    first = [(m["created_at"], m["body"], m["status"]) for m in admin.messages()]
    admin.reset()
    admin.seed_messages(200, random_seed=42, start=START, end=END)
    assert [(m["created_at"], m["body"], m["status"]) for m in admin.messages()] == first


def test_seeded_history_is_charged_per_segment(smsnexus_emulator):
    from airflow_provider_smsnexus.utils.segments import estimate_segments

    smsnexus_emulator.admin.seed_messages(300, random_seed=4, start=START, end=END)
    outbound = smsnexus_emulator.admin.messages(direction="outbound")
    assert outbound
    assert all(m["credits_used"] == estimate_segments(m["body"]).segments for m in outbound)
    assert math.isclose(len(outbound) / 300, 0.75, abs_tol=0.1)
