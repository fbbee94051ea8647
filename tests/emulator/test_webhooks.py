"""Webhooks: register, list, delete (403/404), validation, and delivery to a local receiver."""

from __future__ import annotations

import pytest

SENDER = "+12125550100"
CONTACT = "+12125550150"
ALL_EVENTS = ["message.received", "message.delivered", "message.failed"]
OTHER_TOKEN = "SMSNEXUS-TEST-TOKEN-other"


def test_register_list_and_delete(api):
    created = api.post("/webhooks", {"url": "https://example.com/hook", "events": ["message.delivered"]})
    assert created.status_code == 200
    data = created.json()["data"]
    assert set(data) == {"id", "url", "events", "active", "created_at"}
    assert (data["url"], data["events"], data["active"]) == (
        "https://example.com/hook",
        ["message.delivered"],
        True,
    )
    assert api.get("/webhooks").json() == {"success": True, "data": [data]}
    deleted = api.delete(f"/webhooks/{data['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "message": "Webhook deleted successfully"}
    assert api.get("/webhooks").json()["data"] == []


def test_deleting_an_unknown_webhook_is_404(api):
    for webhook_id in ("999", "abc"):
        response = api.delete(f"/webhooks/{webhook_id}")
        assert response.status_code == 404
        assert response.json()["success"] is False


def test_deleting_another_accounts_webhook_is_403_and_keeps_it(api, client_for, smsnexus_emulator):
    smsnexus_emulator.admin.add_account(OTHER_TOKEN)
    other = client_for(OTHER_TOKEN)
    webhook = other.post("/webhooks", {"url": "https://example.com/o", "events": ALL_EVENTS}).json()["data"]
    response = api.delete(f"/webhooks/{webhook['id']}")
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "This action is unauthorized."}
    assert api.get("/webhooks").json()["data"] == []
    assert [w["id"] for w in other.get("/webhooks").json()["data"]] == [webhook["id"]]


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"events": ALL_EVENTS}, "url", "The url field is required."),
        ({"url": "http://example.com/h", "events": ALL_EVENTS}, "url",
         "The url field must start with one of the following: https://."),
        ({"url": "not a url", "events": ALL_EVENTS}, "url", "The url field must be a valid URL."),
        ({"url": "https://example.com/h"}, "events", "The events field is required."),
        ({"url": "https://example.com/h", "events": []}, "events", "The events field is required."),
        ({"url": "https://example.com/h", "events": "message.failed"}, "events", "The events field must be an array."),
        ({"url": "https://example.com/h", "events": ["message.failed", "message.read"]}, "events.1",
         "The selected events.1 is invalid."),
    ],
)  # fmt: skip
def test_invalid_webhooks_are_422(api, body, field, text):
    response = api.post("/webhooks", body)
    assert response.status_code == 422
    assert response.json()["errors"][field] == [text]
    assert api.get("/webhooks").json()["data"] == []


def test_http_urls_are_allowed_only_when_switched_on(api, smsnexus_emulator):
    assert api.post("/webhooks", {"url": "http://127.0.0.1:9/h", "events": ALL_EVENTS}).status_code == 422
    smsnexus_emulator.admin.configure(allow_http_webhooks=True)
    assert api.post("/webhooks", {"url": "http://127.0.0.1:9/h", "events": ALL_EVENTS}).status_code == 200


@pytest.fixture
def subscribed(api, smsnexus_emulator, webhook_receiver):
    smsnexus_emulator.admin.configure(allow_http_webhooks=True)
    webhook = api.post("/webhooks", {"url": webhook_receiver.url, "events": ALL_EVENTS}).json()["data"]
    return webhook


def test_delivered_message_is_posted_to_the_receiver(api, smsnexus_emulator, webhook_receiver, subscribed):
    sent = api.send("Your order shipped").json()["data"]
    smsnexus_emulator.admin.advance_lifecycle()
    (post,) = webhook_receiver.wait_for(1)
    assert post["path"] == "/hooks/sms"
    assert post["headers"]["content-type"] == "application/json"
    assert post["headers"]["x-smsnexus-event"] == "message.delivered"
    payload = post["json"]
    assert set(payload) == {"event", "webhook_id", "occurred_at", "data"}
    assert (payload["event"], payload["webhook_id"]) == ("message.delivered", subscribed["id"])
    assert payload["data"] == {**sent, "direction": "outbound", "status": "delivered"}
    deliveries = smsnexus_emulator.admin.wait_for_webhook_deliveries(1)
    assert deliveries[0]["status_code"] == 200
    assert deliveries[0]["error"] is None


def test_failed_message_is_posted_as_message_failed(api, smsnexus_emulator, webhook_receiver, subscribed):
    smsnexus_emulator.admin.set_lifecycle(failure_share=1.0)
    sent = api.send("Will fail").json()["data"]
    smsnexus_emulator.admin.advance_lifecycle()
    (post,) = webhook_receiver.wait_for(1)
    assert post["json"]["event"] == "message.failed"
    assert (post["json"]["data"]["id"], post["json"]["data"]["status"]) == (sent["id"], "failed")


def test_inbound_reply_is_posted_as_message_received(smsnexus_emulator, webhook_receiver, subscribed):
    message = smsnexus_emulator.admin.add_inbound(CONTACT, SENDER, "STOP")
    (post,) = webhook_receiver.wait_for(1)
    assert post["json"]["event"] == "message.received"
    assert post["json"]["data"] == message
    assert message["direction"] == "inbound"
    assert (message["from"], message["to"], message["status"]) == (CONTACT, SENDER, "received")


def test_only_subscribed_events_of_the_own_account_are_posted(
    api, client_for, smsnexus_emulator, webhook_receiver
):
    admin = smsnexus_emulator.admin
    admin.configure(allow_http_webhooks=True)
    api.post("/webhooks", {"url": webhook_receiver.url, "events": ["message.received"]})
    admin.add_account(OTHER_TOKEN)
    client_for(OTHER_TOKEN).post("/webhooks", {"url": webhook_receiver.url, "events": ALL_EVENTS})
    api.send("no delivered event for this one")
    admin.advance_lifecycle()
    admin.add_inbound(CONTACT, SENDER, "hello")
    posts = webhook_receiver.wait_for(1)
    admin.add_inbound(CONTACT, SENDER, "marker")
    posts = webhook_receiver.wait_for(2)
    assert [p["json"]["event"] for p in posts] == ["message.received", "message.received"]
    assert [p["json"]["data"]["body"] for p in posts] == ["hello", "marker"]


def test_a_failing_receiver_is_recorded(api, smsnexus_emulator, webhook_receiver, subscribed):
    webhook_receiver.status = 500
    smsnexus_emulator.admin.add_inbound(CONTACT, SENDER, "hi")
    (delivery,) = smsnexus_emulator.admin.wait_for_webhook_deliveries(1)
    assert delivery["status_code"] == 500
    assert delivery["event"] == "message.received"


def test_an_unreachable_receiver_is_recorded_with_its_error(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.configure(allow_http_webhooks=True)
    api.post("/webhooks", {"url": "http://127.0.0.1:9/closed", "events": ALL_EVENTS})
    admin.add_inbound(CONTACT, SENDER, "hi")
    (delivery,) = admin.wait_for_webhook_deliveries(1)
    assert delivery["status_code"] is None
    assert delivery["error"]
