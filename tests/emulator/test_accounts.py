"""GET /api/balance, /api/phone-numbers, /api/conversations; accounts per token; suspended accounts."""

from __future__ import annotations

SENDER = "+12125550100"
SMS_ONLY = "+12125550101"
SECOND_TOKEN = "SMSNEXUS-TEST-TOKEN-second"
SUSPENDED_TOKEN = "SMSNEXUS-TEST-TOKEN-suspended"


def test_balance_has_the_reference_shape(api):
    assert api.get("/balance").json() == {
        "success": True,
        "data": {"credits": 10000, "currency": "credits", "plan": "Professional", "credits_used_today": 0},
    }


def test_set_balance_changes_what_the_api_reports(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_balance(123)
    assert api.get("/balance").json()["data"]["credits"] == 123
    smsnexus_emulator.admin.update_account(plan="Starter", credits_used_today=40)
    data = api.get("/balance").json()["data"]
    assert (data["plan"], data["credits_used_today"]) == ("Starter", 40)


def test_phone_numbers_of_the_default_account(api):
    body = api.get("/phone-numbers").json()
    assert body["success"] is True
    numbers = {n["number"]: n for n in body["data"]}
    assert list(numbers) == ["+12125550100", "+12125550101", "+12125550102"]
    assert numbers["+12125550100"]["capabilities"] == ["sms", "mms"]
    assert numbers["+12125550101"]["capabilities"] == ["sms"]
    assert numbers["+12125550102"]["status"] == "inactive"
    for number in numbers.values():
        assert set(number) == {"id", "number", "carrier", "capabilities", "status", "created_at"}
        assert number["created_at"].endswith("Z")


def test_each_token_is_its_own_account(api, client_for, smsnexus_emulator):
    account_id = smsnexus_emulator.admin.add_account(
        SECOND_TOKEN,
        credits=50,
        numbers=["+13125550100", {"number": "+13125550101", "capabilities": ["sms"], "status": "active"}],
        plan="Starter",
    )
    assert account_id == 2
    other = client_for(SECOND_TOKEN)
    assert other.get("/balance").json()["data"]["credits"] == 50
    assert [n["number"] for n in other.get("/phone-numbers").json()["data"]] == [
        "+13125550100",
        "+13125550101",
    ]
    assert other.send(sender="+13125550100").status_code == 200
    assert other.send(sender=SENDER).status_code == 422
    assert api.get("/balance").json()["data"]["credits"] == 10000
    assert len(smsnexus_emulator.admin.sent_messages(account_id)) == 1
    assert smsnexus_emulator.admin.sent_messages() == []


def test_a_suspended_account_is_403_everywhere(client_for, smsnexus_emulator):
    smsnexus_emulator.admin.add_account(SUSPENDED_TOKEN, suspended=True)
    client = client_for(SUSPENDED_TOKEN)
    for response in (client.get("/balance"), client.get("/messages"), client.send()):
        assert response.status_code == 403
        assert response.json() == {"success": False, "message": "Your account is suspended."}


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["success"] is False


def test_conversations_group_by_number_pair_with_counts(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    api.send("Hi Ana", to="+12125550150")
    api.send("Hi Ben", to="+12125550151")
    api.send("Hi again", to="+12125550150", sender=SMS_ONLY)
    admin.add_inbound("+12125550150", SENDER, "Who is this?")
    admin.add_inbound("+12125550150", SENDER, "Hello?")
    body = api.get("/conversations").json()
    assert body["meta"] == {"current_page": 1, "last_page": 1, "per_page": 25, "total": 3}
    first = body["data"][0]
    assert set(first) == {
        "id", "phone_number", "contact_number", "last_message", "last_message_at", "unread_count", "message_count",
    }  # fmt: skip
    assert (first["phone_number"], first["contact_number"]) == (SENDER, "+12125550150")
    assert first["last_message"] == "Hello?"
    assert (first["message_count"], first["unread_count"]) == (3, 2)
    api.send("Sorry, it is us", to="+12125550150")
    again = api.get("/conversations").json()["data"][0]
    assert (again["id"], again["message_count"], again["unread_count"]) == (first["id"], 4, 0)
    pairs = {(c["phone_number"], c["contact_number"]) for c in body["data"]}
    assert pairs == {(SENDER, "+12125550150"), (SENDER, "+12125550151"), (SMS_ONLY, "+12125550150")}


def test_conversations_are_newest_first_and_paginated(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(2000, random_seed=6)
    first = api.get("/conversations", per_page=100).json()
    total = first["meta"]["total"]
    assert total > 100
    assert first["meta"]["last_page"] == -(-total // 100)
    seen = []
    for page in range(1, first["meta"]["last_page"] + 1):
        seen += api.get("/conversations", per_page=100, page=page).json()["data"]
    assert len({c["id"] for c in seen}) == total
    moments = [c["last_message_at"] for c in seen]
    assert moments == sorted(moments, reverse=True)
    assert sum(c["message_count"] for c in seen) == 2000
    assert api.get("/conversations", per_page=101).status_code == 422


def test_seeded_conversations_count_unread_inbound_after_the_last_outbound(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(600, random_seed=9)
    messages = smsnexus_emulator.admin.messages()
    threads: dict[tuple[str, str], list[dict]] = {}
    for m in messages:
        pair = (m["from"], m["to"]) if m["direction"] == "outbound" else (m["to"], m["from"])
        threads.setdefault(pair, []).append(m)
    conversations = []
    for page in (1, 2, 3, 4, 5, 6):
        conversations += api.get("/conversations", per_page=100, page=page).json()["data"]
    assert len(conversations) == len(threads)
    for conversation in conversations:
        thread = sorted(threads[conversation["phone_number"], conversation["contact_number"]],
                        key=lambda m: (m["created_at"], m["id"]))  # fmt: skip
        unread = 0
        for m in thread:
            unread = 0 if m["direction"] == "outbound" else unread + 1
        assert conversation["message_count"] == len(thread)
        assert conversation["unread_count"] == unread
        assert conversation["last_message"] == thread[-1]["body"]
