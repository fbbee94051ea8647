"""Fault injection: 500 before processing, 500 or a dropped connection after processing a send,
latency, and live traffic while paging."""

from __future__ import annotations

import time

import pytest
import requests


def test_fail_before_answers_500_and_processes_nothing(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(fail_before_share=1.0)
    response = api.send()
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "Server Error"}
    assert api.get("/balance").status_code == 500
    smsnexus_emulator.admin.set_faults()
    assert smsnexus_emulator.admin.sent_messages() == []
    assert api.get("/balance").json()["data"]["credits"] == 10000
    assert smsnexus_emulator.admin.stats()["faults"]["fail_before"] == 2


def test_fail_after_processes_the_send_then_answers_500(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(fail_after_share=1.0)
    response = api.send("charged but unanswered")
    assert response.status_code == 500
    assert response.json()["success"] is False
    assert [m["body"] for m in smsnexus_emulator.admin.sent_messages()] == ["charged but unanswered"]
    assert api.get("/balance").json()["data"]["credits"] == 9999
    assert api.get("/messages").status_code == 200  # only sends are hit by after-processing faults


def test_drop_after_processes_the_send_then_closes_the_connection(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(drop_after_share=1.0)
    with pytest.raises(requests.ConnectionError):
        api.send("sent, but the client never hears")
    assert len(smsnexus_emulator.admin.sent_messages()) == 1
    assert smsnexus_emulator.admin.stats()["faults"]["drop_after"] == 1
    smsnexus_emulator.admin.set_faults()
    assert api.send("the server still answers").status_code == 200
    assert len(smsnexus_emulator.admin.sent_messages()) == 2


def test_a_dropped_connection_is_seen_by_a_fresh_client_too(smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(drop_after_share=1.0)
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.ConnectionError):
        session.post(
            f"{smsnexus_emulator.base_url}/sms/send",
            json={"from": "+12125550100", "to": "+12125550150", "message": "x"},
            headers={"Authorization": f"Bearer {smsnexus_emulator.token}", "Connection": "close"},
            timeout=10,
        )


def test_fault_shares_are_shares_and_reproducible(api, smsnexus_emulator):
    def run() -> list[int]:
        smsnexus_emulator.admin.set_faults(fail_before_share=0.5, random_seed=7)
        return [api.get("/balance").status_code for _ in range(40)]

    first = run()
    assert 5 < first.count(500) < 35
    assert set(first) == {200, 500}
    assert run() == first


def test_latency_delays_every_answer(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(latency_ms=600)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(f"{api.base_url}/balance", timeout=0.1)
    smsnexus_emulator.admin.set_faults()
    assert api.session.get(f"{api.base_url}/balance", timeout=5).status_code == 200


def test_live_traffic_adds_new_messages_on_each_list_request(api, smsnexus_emulator):
    smsnexus_emulator.admin.seed_messages(500)
    smsnexus_emulator.admin.set_faults(live_traffic_per_list=7)
    first = api.get("/messages", per_page=100).json()
    second = api.get("/messages", per_page=100, page=2).json()
    assert first["meta"]["total"] == 507
    assert second["meta"]["total"] == 514
    # The 7 new messages pushed older ones down: page 2 starts with rows page 1 already showed.
    assert {m["id"] for m in first["data"]} & {m["id"] for m in second["data"]}
    live = smsnexus_emulator.admin.messages(origin="live")
    assert len(live) == 14
    assert min(m["id"] for m in live) > max(m["id"] for m in smsnexus_emulator.admin.messages(origin="seed"))


def test_send_hold_stores_the_message_before_the_answer_is_written(api, smsnexus_emulator):
    # A client that gives up during the hold has been charged for a message it never heard about:
    # the window in which a killed worker dies between the server's work and its own record of it.
    smsnexus_emulator.admin.set_faults(send_hold_ms=1500)
    with pytest.raises(requests.ReadTimeout):
        api.session.post(
            f"{api.base_url}/sms/send",
            json={"from": "+12125550100", "to": "+12125550150", "message": "held"},
            timeout=0.3,
        )
    assert [m["body"] for m in smsnexus_emulator.admin.sent_messages()] == ["held"]
    assert api.get("/balance").status_code == 200  # only sends are held
    smsnexus_emulator.admin.set_faults()
    assert api.send("answered at once").status_code == 200


def test_latency_jitter_draws_a_delay_per_request(api, smsnexus_emulator):
    smsnexus_emulator.admin.set_faults(latency_jitter_ms=3000, random_seed=5)
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(api.session.get(f"{api.base_url}/balance", timeout=0.05).status_code)
        except requests.ReadTimeout:
            outcomes.append("timeout")
    assert "timeout" in outcomes
    assert smsnexus_emulator.admin.config()["latency_jitter_ms"] == 3000
    smsnexus_emulator.admin.set_faults()
    assert api.get("/balance").status_code == 200


def test_a_send_whose_client_gives_up_during_the_latency_is_still_processed(api, smsnexus_emulator):
    # Latency is the server being slow with a request it already has: the client's death cannot undo it.
    smsnexus_emulator.admin.set_faults(latency_ms=800)
    with pytest.raises(requests.ReadTimeout):
        api.session.post(
            f"{api.base_url}/sms/send",
            json={"from": "+12125550100", "to": "+12125550150", "message": "slow"},
            timeout=0.2,
            headers={"Connection": "close"},
        )
    api.session.close()  # the client is gone before the server gets to the request
    deadline = time.monotonic() + 10
    while not smsnexus_emulator.admin.sent_messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["body"] for m in smsnexus_emulator.admin.sent_messages()] == ["slow"]


@pytest.mark.parametrize("status", [502, 503])
def test_fail_before_with_a_gateway_status_answers_html_and_processes_nothing(api, smsnexus_emulator, status):
    smsnexus_emulator.admin.configure(fail_before_share=1.0, fail_before_status=status)
    response = api.send("never reaches the API")
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert str(status) in response.text
    smsnexus_emulator.admin.configure(fail_before_share=0.0)
    assert smsnexus_emulator.admin.sent_messages() == []
    assert api.get("/balance").json()["data"]["credits"] == 10000
    assert smsnexus_emulator.admin.stats()["faults"]["fail_before"] == 1


def test_maintenance_page_answers_200_html_to_every_api_request_and_processes_nothing(api, smsnexus_emulator):
    smsnexus_emulator.admin.configure(maintenance_page=True)
    answers = [api.get("/balance"), api.get("/messages"), api.send("during maintenance")]
    for response in answers:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "maintenance" in response.text
        assert response.text.lstrip().startswith("<!DOCTYPE html>")
    assert smsnexus_emulator.admin.stats()["drift"]["maintenance"] == 3
    assert smsnexus_emulator.admin.sent_messages() == []
    smsnexus_emulator.admin.configure(maintenance_page=False)
    assert api.get("/balance").json()["data"]["credits"] == 10000


def test_set_faults_also_switches_off_the_gateway_status_and_the_maintenance_page(api, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.configure(fail_before_share=1.0, fail_before_status=503, maintenance_page=True)
    assert api.get("/balance").headers["Content-Type"].startswith("text/html")
    admin.set_faults(fail_before_share=1.0)
    config = admin.config()
    assert (config["fail_before_status"], config["maintenance_page"]) == (500, False)
    failed = api.get("/balance")
    assert failed.status_code == 500
    assert failed.json() == {"success": False, "message": "Server Error"}
    admin.set_faults()
    assert api.get("/balance").status_code == 200
