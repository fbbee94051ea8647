"""Message lifecycle: queued -> sent -> delivered/failed, manual and automatic; simulated replies and STOP."""

from __future__ import annotations

import time

SENDER = "+12125550100"
CONTACT = "+12125550150"


def statuses(api) -> dict[int, str]:
    return {m["id"]: m["status"] for m in api.get("/messages", per_page=100).json()["data"]}


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_manual_lifecycle_keeps_messages_queued_until_advanced(api, smsnexus_emulator):
    sent = api.send().json()["data"]
    time.sleep(0.2)
    assert statuses(api)[sent["id"]] == "queued"
    assert smsnexus_emulator.admin.advance_lifecycle() == {
        "sent": 1,
        "delivered": 1,
        "failed": 0,
        "received": 0,
    }
    assert statuses(api)[sent["id"]] == "delivered"
    assert api.get("/messages", status="queued").json()["meta"]["total"] == 0
    assert api.get("/messages", status="delivered").json()["meta"]["total"] == 1
    assert smsnexus_emulator.admin.advance_lifecycle() == {
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "received": 0,
    }


def test_automatic_lifecycle_moves_through_sent_to_delivered(api, smsnexus_emulator):
    # A final delay no loaded machine outlasts, so "sent" is seen for sure; then a short one, which
    # the emulator applies to the waiting message on its next step. No poll has to beat a timer.
    admin = smsnexus_emulator.admin
    admin.set_lifecycle("auto", sent_delay=0.3, final_delay=3600, failure_share=0.0)
    sent = api.send().json()["data"]
    assert sent["status"] == "queued"
    seen = [sent["status"]]

    def reaches(wanted: str):
        def record() -> bool:
            status = statuses(api)[sent["id"]]
            if seen[-1] != status:
                seen.append(status)
            return status == wanted

        return record

    wait_until(reaches("sent"))
    assert statuses(api)[sent["id"]] == "sent"
    admin.set_lifecycle(final_delay=0.3)
    wait_until(reaches("delivered"))
    assert seen == ["queued", "sent", "delivered"]
    assert admin.advance_lifecycle() == {"sent": 0, "delivered": 0, "failed": 0, "received": 0}


def test_failure_share_makes_messages_fail_without_refund(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_lifecycle(failure_share=1.0)
    ids = [api.send(f"m{i}").json()["data"]["id"] for i in range(3)]
    assert smsnexus_emulator.admin.advance_lifecycle()["failed"] == 3
    assert {statuses(api)[i] for i in ids} == {"failed"}
    assert api.get("/balance").json()["data"]["credits"] == 10000 - 3


def test_failure_share_is_a_share(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_lifecycle(failure_share=0.5)
    for i in range(60):
        api.send(f"m{i}")
    counts = smsnexus_emulator.admin.advance_lifecycle()
    assert counts["delivered"] + counts["failed"] == 60
    assert 10 < counts["failed"] < 50


def test_stop_share_simulates_stop_replies_that_opt_the_recipient_out(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.set_lifecycle(stop_share=1.0)
    sent = api.send("Sale today!").json()["data"]
    assert admin.advance_lifecycle() == {"sent": 1, "delivered": 1, "failed": 0, "received": 1}
    inbound = api.get("/messages", direction="inbound").json()["data"]
    assert [(m["from"], m["to"], m["body"], m["status"]) for m in inbound] == [
        (CONTACT, SENDER, "STOP", "received")
    ]
    assert inbound[0]["id"] > sent["id"]
    assert admin.account()["opted_out"] == [CONTACT]
    admin.set_lifecycle(stop_share=0.0)
    again = api.send("Are you there?").json()["data"]
    admin.advance_lifecycle()
    assert statuses(api)[again["id"]] == "failed"


def test_start_opts_a_recipient_back_in(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.add_inbound(CONTACT, SENDER, "stop")
    assert admin.account()["opted_out"] == [CONTACT]
    admin.add_inbound(CONTACT, SENDER, "START")
    assert admin.account()["opted_out"] == []
    sent = api.send().json()["data"]
    admin.advance_lifecycle()
    assert statuses(api)[sent["id"]] == "delivered"


def test_reply_share_simulates_text_replies_that_are_not_stop(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_lifecycle(reply_share=1.0)
    for i in range(30):
        api.send("Your table is ready", to=f"+121255501{i + 10:02d}")
    assert smsnexus_emulator.admin.advance_lifecycle()["received"] == 30
    replies = api.get("/messages", direction="inbound", per_page=100).json()["data"]
    assert len(replies) == 30
    assert "STOP" not in {reply["body"] for reply in replies}
    assert smsnexus_emulator.admin.account()["opted_out"] == []
    assert {m["id"] for m in smsnexus_emulator.admin.messages(origin="reply")} == {r["id"] for r in replies}


def test_automatic_replies_arrive_after_delivery(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_lifecycle(
        "auto", sent_delay=0.05, final_delay=0.05, reply_share=1.0, reply_delay=0.1
    )
    api.send()
    wait_until(lambda: api.get("/messages", direction="inbound").json()["meta"]["total"] == 1)
    assert api.get("/messages", status="delivered").json()["meta"]["total"] == 1


def test_manual_advance_also_finishes_messages_of_the_automatic_lifecycle(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_lifecycle("auto", sent_delay=3600, final_delay=3600)
    sent = api.send().json()["data"]
    assert smsnexus_emulator.admin.advance_lifecycle()["delivered"] == 1
    assert statuses(api)[sent["id"]] == "delivered"
