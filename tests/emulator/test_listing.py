"""The list switches that break what a client might assume and the API reference does not promise:
oldest-first order, date parameters ignored, conversations that move to the top while a client
pages, and messages that leave a status-filtered list while it is paged. Each test shows the
switch has its effect, against the emulator's own record (the inspection API)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.state import Emulator

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 11, tzinfo=timezone.utc)
ACCOUNT_NUMBER = "+12125550100"


def parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def walk(api, path: str, per_page: int, **params) -> list[dict]:
    rows, page = [], 1
    while True:
        body = api.get(path, page=page, per_page=per_page, **params).json()
        rows += body["data"]
        if page >= body["meta"]["last_page"]:
            return rows
        page += 1


def contacts(count: int) -> list[str]:
    return [f"+12125550{number:03d}" for number in range(110, 110 + count)]


def test_oldest_first_lists_messages_by_ascending_created_at(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.seed_messages(250, random_seed=4, start=START, end=END)
    admin.configure(list_order="oldest_first")
    page_one = api.get("/messages", per_page=100).json()["data"]
    keys = [(parse(r["created_at"]), r["id"]) for r in page_one]
    assert keys == sorted(keys)
    assert len(set(keys)) == 100
    record = sorted((parse(m["created_at"]), m["id"]) for m in admin.messages())
    assert keys == record[:100]  # the oldest hundred of the emulator's record, in order
    assert sorted(r["id"] for r in walk(api, "/messages", 100)) == sorted(m["id"] for m in admin.messages())


def test_newest_first_stays_the_default_order(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(120, random_seed=4, start=START, end=END)
    assert smsnexus_emulator.admin.config()["list_order"] == "newest_first"
    keys = [(parse(r["created_at"]), r["id"]) for r in api.get("/messages", per_page=100).json()["data"]]
    assert keys == sorted(keys, reverse=True)


def test_oldest_first_lists_conversations_by_ascending_last_message(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.seed_messages(300, random_seed=9, start=START, end=END)
    admin.configure(list_order="oldest_first")
    rows = walk(api, "/conversations", 25)
    keys = [(parse(c["last_message_at"]), c["id"]) for c in rows]
    assert len(rows) > 25
    assert keys == sorted(keys)
    # The first one's last message is the oldest "last message" of any thread in the record.
    last_of_thread: dict[frozenset, datetime] = {}
    for message in admin.messages():
        pair = frozenset((message["from"], message["to"]))
        last_of_thread[pair] = max(last_of_thread.get(pair, START), parse(message["created_at"]))
    assert keys[0][0] == min(last_of_thread.values())
    assert len(rows) == len(last_of_thread)


def test_ignore_date_params_returns_rows_outside_the_window(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.seed_messages(200, random_seed=6, start=START, end=END)
    window = {"start_date": "2026-03-04T00:00:00Z", "end_date": "2026-03-05T00:00:00Z"}
    inside = walk(api, "/messages", 100, **window)
    assert 0 < len(inside) < 200
    admin.configure(ignore_date_params=True)
    rows = walk(api, "/messages", 100, **window)
    assert sorted(r["id"] for r in rows) == sorted(m["id"] for m in admin.messages())
    outside = [r for r in rows if not "2026-03-04" <= r["created_at"][:10] < "2026-03-05"]
    assert len(outside) == 200 - len(inside)
    # Not even validated: an unreadable date is ignored too.
    assert api.get("/messages", start_date="not a date").status_code == 200


def test_reorder_moves_a_conversation_seen_on_page_two_to_the_top_of_page_one(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    for contact in contacts(40):  # 40 threads, newest last: two pages of 20
        admin.add_inbound(contact, ACCOUNT_NUMBER, "hello")
    page_two = api.get("/conversations", page=2, per_page=20).json()["data"]
    assert len(page_two) == 20
    admin.configure(reorder_conversations_per_list=1)
    page_one = api.get("/conversations", page=1, per_page=20).json()["data"]
    moved = page_one[0]
    assert moved["id"] in {c["id"] for c in page_two}
    assert moved["message_count"] == 2
    # The emulator's record: one new inbound message, on the moved thread, from its contact.
    replies = admin.messages(origin="live")
    assert [(m["from"], m["to"], m["direction"]) for m in replies] == [
        (moved["contact_number"], ACCOUNT_NUMBER, "inbound")
    ]
    assert admin.stats()["drift"]["conversation_moves"] == 1
    assert api.get("/conversations", per_page=20).json()["meta"]["total"] == 40


def test_reorder_makes_a_forward_walk_miss_conversations(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    for contact in contacts(60):
        admin.add_inbound(contact, ACCOUNT_NUMBER, "hello")
    admin.configure(reorder_conversations_per_list=2)
    seen = {c["id"] for c in walk(api, "/conversations", 20)}
    admin.configure(reorder_conversations_per_list=0)
    everything = {c["id"] for c in walk(api, "/conversations", 100)}
    assert len(everything) == 60
    assert everything - seen  # the threads that moved behind the walker were never read


def test_status_changes_move_listed_messages_on_as_the_record_shows(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    for number in range(30):
        assert api.send(f"queued {number}").status_code == 200
    admin.configure(status_changes_per_list=5)
    page_one = api.get("/messages", status="queued", per_page=10).json()
    assert [r["status"] for r in page_one["data"]] == ["queued"] * 10
    changed = {m["id"]: m["status"] for m in admin.sent_messages() if m["status"] != "queued"}
    assert set(changed.values()) == {"sent"}
    assert len(changed) == 5
    assert set(changed) <= {r["id"] for r in page_one["data"]}  # the rows this client has just read
    # Page 2 is built after 5 more rows of the first ten moved on: the list shrank under the client.
    page_two = api.get("/messages", status="queued", page=2, per_page=10).json()
    assert page_two["meta"]["total"] == 20
    still_queued = {m["id"] for m in admin.sent_messages() if m["status"] == "queued"}
    read = {r["id"] for r in page_one["data"]} | {r["id"] for r in page_two["data"]}
    assert still_queued - read  # queued messages that a forward walk of the filtered list skipped
    assert admin.stats()["drift"]["status_changes"] == 10  # 5 per list call


def test_status_changes_follow_queued_sent_delivered_failed():
    emulator = Emulator(EmulatorSettings.for_tests())
    account = emulator.account(1)
    emulator.send(account, {"from": ACCOUNT_NUMBER, "to": "+12125550150", "message": "x"})
    seen = [account.store.message_dict(0)["status"]]
    while emulator.move_status_on(account, 0):
        seen.append(account.store.message_dict(0)["status"])
    assert seen == ["queued", "sent", "delivered", "failed"]
    assert emulator.pending == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("list_order", "random"),
        ("ignore_date_params", "yes"),
        ("clock_offset_seconds", "soon"),
        ("reorder_conversations_per_list", 1.5),
        ("status_changes_per_list", -1),
        ("fail_before_status", 200),
        ("maintenance_page", 1),
    ],
)
def test_bad_switch_values_are_refused_by_name(smsnexus_emulator, name, value):
    from airflow_provider_smsnexus.emulator.testing import EmulatorAdminError

    with pytest.raises(EmulatorAdminError) as caught:
        smsnexus_emulator.admin.configure(**{name: value})
    assert caught.value.status_code == 422
    assert list(caught.value.body["errors"]) == [name]
