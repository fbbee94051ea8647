"""POST /api/sms/send: answer shape, validation (Laravel-style 422), credits per segment, MMS."""

from __future__ import annotations

import pytest

SENDER = "+12125550100"
SMS_ONLY = "+12125550101"
INACTIVE = "+12125550102"
CONTACT = "+12125550150"


def test_send_answers_the_queued_message_in_the_reference_shape(api, smsnexus_emulator):
    response = api.send("Hello from SMS Nexus!")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Message sent successfully"
    data = body["data"]
    assert set(data) == {"id", "from", "to", "body", "status", "credits_used", "created_at"}
    assert (data["from"], data["to"], data["body"]) == (SENDER, CONTACT, "Hello from SMS Nexus!")
    assert data["status"] == "queued"
    assert data["credits_used"] == 1
    assert isinstance(data["id"], int)
    assert len(data["created_at"]) == 20
    assert data["created_at"].endswith("Z")


def test_message_ids_increase_with_creation(api):
    ids = [api.send(f"n{i}").json()["data"]["id"] for i in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_sent_messages_lists_every_created_message_in_creation_order(api, smsnexus_emulator):
    ids = [api.send(f"n{i}", to=f"+1212555016{i}").json()["data"]["id"] for i in range(3)]
    sent = smsnexus_emulator.admin.sent_messages()
    assert [m["id"] for m in sent] == ids
    assert [m["to"] for m in sent] == ["+12125550160", "+12125550161", "+12125550162"]
    assert {m["origin"] for m in sent} == {"api"}


@pytest.mark.parametrize(
    ("text", "credits"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("{" * 80, 1),
        ("{" * 81, 2),
        ("\u2019" * 70, 1),
        ("\u2019" * 71, 2),
        ("\U0001f600" * 35, 1),
        ("\U0001f600" * 36, 2),
    ],
)
def test_credits_are_charged_per_segment(api, text, credits):
    before = api.get("/balance").json()["data"]
    data = api.send(text).json()["data"]
    assert data["credits_used"] == credits
    after = api.get("/balance").json()["data"]
    assert after["credits"] == before["credits"] - credits
    assert after["credits_used_today"] == before["credits_used_today"] + credits


def test_mms_costs_the_configured_flat_price(api, smsnexus_emulator):
    smsnexus_emulator.admin.configure(mms_cost=5)
    data = api.send("x" * 500, media_url="https://example.com/cat.png").json()["data"]
    assert data["credits_used"] == 5
    assert smsnexus_emulator.admin.sent_messages()[0]["media_url"] == "https://example.com/cat.png"
    assert api.get("/balance").json()["data"]["credits"] == 10000 - 5


def assert_422(response, field: str, text: str | None = None) -> dict:
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert body["message"] == "Validation failed"
    assert field in body["errors"]
    assert isinstance(body["errors"][field], list)
    if text is not None:
        assert body["errors"][field] == [text]
    return body


def test_missing_fields_are_each_required(api, smsnexus_emulator):
    body = assert_422(api.post("/sms/send", {}), "to", "The to field is required.")
    assert body["errors"] == {
        "from": ["The from field is required."],
        "to": ["The to field is required."],
        "message": ["The message field is required."],
    }
    assert smsnexus_emulator.admin.sent_messages() == []


def test_a_body_that_is_not_json_counts_as_empty(api):
    response = api.session.post(
        f"{api.base_url}/sms/send", data=b"not json", headers={"Content-Type": "application/json"}
    )
    assert_422(response, "message", "The message field is required.")


def test_blank_message_is_required_and_non_string_is_refused(api):
    assert_422(api.send("   "), "message", "The message field is required.")
    assert_422(api.post("/sms/send", {"from": SENDER, "to": 12125550150, "message": "x"}), "to")


@pytest.mark.parametrize(
    "number", ["12125550150", "+0212555", "+1 212 555 0150", "phone", "+1234567890123456"]
)
def test_recipient_not_in_e164_is_refused(api, number):
    assert_422(api.send(to=number), "to", "The to field must be a phone number in E.164 format.")


def test_message_over_1600_characters_is_refused(api, smsnexus_emulator):
    assert api.send("a" * 1600).status_code == 200
    assert_422(api.send("a" * 1601), "message", "The message field must not be greater than 1600 characters.")
    assert len(smsnexus_emulator.admin.sent_messages()) == 1


def test_sender_must_be_an_active_number_of_the_account(api):
    assert_422(
        api.send(sender="+13125550100"), "from", "The from number is not a phone number of your account."
    )
    assert_422(api.send(sender=INACTIVE), "from", "The from number is not active.")
    assert_422(
        api.send(sender="2125550100"), "from", "The from field must be a phone number in E.164 format."
    )


def test_mms_from_a_number_without_mms_is_refused(api):
    assert_422(
        api.send(sender=SMS_ONLY, media_url="https://example.com/cat.png"),
        "media_url",
        "The from number cannot send MMS.",
    )
    assert_422(
        api.send(media_url="ftp://example.com/cat.png"),
        "media_url",
        "The media url field must be a valid URL.",
    )
    assert api.send(sender=SMS_ONLY).status_code == 200


def test_too_little_credit_is_refused_on_credits_and_charges_nothing(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_balance(1)
    body = assert_422(api.send("a" * 161), "credits")
    assert "needs 2" in body["errors"]["credits"][0]
    assert api.get("/balance").json()["data"]["credits"] == 1
    assert smsnexus_emulator.admin.sent_messages() == []
    assert api.send("a" * 160).status_code == 200
    assert api.get("/balance").json()["data"]["credits"] == 0


def test_missing_or_wrong_token_is_401(client_for, smsnexus_emulator):
    for client in (client_for(None), client_for("not-a-token")):
        response = client.send()
        assert response.status_code == 401
        assert response.json() == {"success": False, "message": "Unauthenticated."}
    basic = client_for(None)
    basic.session.headers["Authorization"] = "Basic abc"
    assert basic.get("/balance").status_code == 401
    assert smsnexus_emulator.admin.sent_messages() == []
