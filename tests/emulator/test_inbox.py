"""The emulator's inbox page in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
what it shows comes from the emulator's record, and what is done in it reaches the record — a reply
typed in the page is picked up by the inbound trigger.

Skips with a reason where no browser is installed; with ``CI=true`` the browser is required
(``tests/_chromium.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_smsnexus.triggers import inbound
from airflow_provider_smsnexus.triggers.inbound import MemoryPositionStore, SMSNexusInboundMessageTrigger
from tests._chromium import chromium

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The README's picture; a test run writes it only when asked (SMSNEXUS_WRITE_SCREENSHOT=1), so that running
#: the suite never changes a tracked file.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "inbox.png"
OUR_NUMBER = "+12125550100"
CUSTOMER = "+12125550177"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, smsnexus_emulator):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    tab.goto(smsnexus_emulator.admin.root_url + "/")
    yield tab
    context.close()


def test_the_page_shows_the_accounts_numbers_and_balance(page, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.set_balance(4321)
    account = admin.account()
    credits = page.get_by_test_id("credits")

    credits.filter(has_text="4321").wait_for(timeout=WAIT_MS)  # the page updates live

    shown = page.get_by_test_id("numbers").inner_text()
    assert all(number["number"] in shown for number in account["numbers"])


def test_a_reply_typed_in_the_page_reaches_the_record_and_the_inbound_trigger(
    page, smsnexus_emulator, smsnexus_conn, monkeypatch
):
    admin = smsnexus_emulator.admin
    question = admin.add_inbound(CUSTOMER, OUR_NUMBER, "Hello?")  # the customer's earlier text
    shared = MemoryPositionStore()
    monkeypatch.setattr(inbound, "open_position_store", lambda asset_name: shared)
    page.get_by_test_id("thread").filter(has_text=CUSTOMER).click()

    page.get_by_test_id("reply-body").fill("YES, go ahead")
    page.get_by_test_id("reply-send").click()
    page.get_by_test_id("bubble").filter(has_text="YES, go ahead").wait_for(timeout=WAIT_MS)

    record = [m for m in admin.messages(direction="inbound") if m["body"] == "YES, go ahead"]
    assert [(m["from"], m["to"]) for m in record] == [(CUSTOMER, OUR_NUMBER)]

    async def first_event() -> dict[str, Any]:
        trigger = SMSNexusInboundMessageTrigger(
            asset_name="sms_replies", after_id=question["id"], pattern="^yes", poll_interval=0.05
        )
        agen = trigger.run()
        try:
            return (await asyncio.wait_for(anext(agen), 30)).payload
        finally:
            await agen.aclose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        payload = pool.submit(asyncio.run, first_event()).result()
    assert payload["message"]["id"] == record[0]["id"]


def test_status_buttons_move_a_message_to_delivered_and_failed(page, smsnexus_emulator, smsnexus_conn):
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    hook = SMSNexusHook()
    first = hook.send_sms(OUR_NUMBER, CUSTOMER, "Your order shipped")
    second = hook.send_sms(OUR_NUMBER, CUSTOMER, "Your order arrived")
    page.get_by_test_id("thread").filter(has_text=CUSTOMER).click()

    page.locator(f"[data-id='{first['id']}'] [data-testid=mark-delivered]").click()
    page.locator(f"[data-id='{second['id']}'] [data-testid=mark-failed]").click()
    page.locator(f"[data-id='{second['id']}'] [data-testid=status]").filter(has_text="failed").wait_for(
        timeout=WAIT_MS
    )

    statuses = {m["id"]: m["status"] for m in smsnexus_emulator.admin.messages(direction="outbound")}
    assert statuses == {first["id"]: "delivered", second["id"]: "failed"}


def test_fault_switches_and_rate_limits_are_shown_and_switch_the_emulator(page, smsnexus_emulator):
    admin = smsnexus_emulator.admin
    admin.set_limits(send_limit=30, read_limit=60, window_seconds=60)
    page.get_by_test_id("limit-send").filter(has_text="30 per 60 s").wait_for(timeout=WAIT_MS)

    page.get_by_test_id("switch-list_order").select_option("oldest_first")
    page.get_by_test_id("switch-ignore_date_params").check()

    def switched() -> bool:
        config = admin.config()
        return config["list_order"] == "oldest_first" and config["ignore_date_params"] is True

    for _ in range(400):  # the change handlers' requests are on their way: wait for the record to show them
        if switched():
            break
        page.wait_for_timeout(25)
    assert switched()


def test_screenshot_of_the_inbox_for_the_readme(page, smsnexus_emulator, smsnexus_conn, tmp_path):

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    target = SCREENSHOT if os.environ.get("SMSNEXUS_WRITE_SCREENSHOT") == "1" else tmp_path / "inbox.png"
    admin = smsnexus_emulator.admin
    admin.set_limits(send_limit=30, read_limit=60, window_seconds=60)  # the real service's, not the tests'
    hook = SMSNexusHook()
    question = hook.send_sms(OUR_NUMBER, CUSTOMER, "Your table for 4 is ready at 7pm. Reply YES to confirm.")
    admin.add_inbound(CUSTOMER, OUR_NUMBER, "YES")
    hook.send_sms(OUR_NUMBER, "+12125550178", "Spring sale: 20% off today only")
    page.get_by_test_id("thread").filter(has_text=CUSTOMER).click()
    page.locator(f"[data-id='{question['id']}'] [data-testid=mark-delivered]").click()
    page.get_by_test_id("status").filter(has_text=re.compile("^delivered$")).wait_for(timeout=WAIT_MS)
    page.get_by_test_id("limit-send").filter(has_text="30 per 60 s").wait_for(timeout=WAIT_MS)

    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))

    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_is_refused_to_clients_off_this_machine():
    from starlette.testclient import TestClient

    from airflow_provider_smsnexus.emulator.app import create_app

    with TestClient(create_app(), client=("203.0.113.9", 40000)) as client:
        answer = client.get("/")
    assert answer.status_code == 403
    assert "loopback" in answer.json()["message"]


def test_allow_remote_inspection_lets_a_client_off_this_machine_use_the_page():
    from starlette.testclient import TestClient

    from airflow_provider_smsnexus.emulator.app import create_app
    from airflow_provider_smsnexus.emulator.settings import EmulatorSettings

    stranger = ("203.0.113.9", 40000)  # a browser on the Docker host, seen from inside the container
    settings = EmulatorSettings.for_tests(allow_remote_inspection=True)
    with TestClient(create_app(settings), client=stranger) as client:
        page, state = client.get("/"), client.get("/_emulator/inbox/1")
        reply = client.post(
            "/_emulator/accounts/1/inbound", json={"from": CUSTOMER, "to": OUR_NUMBER, "body": "hello"}
        )
        listed = client.get("/_emulator/accounts/1/messages").json()["data"]
    assert page.status_code == 200
    assert "<title>SMS Nexus emulator" in page.text
    assert state.status_code == 200
    assert reply.status_code in (200, 201)
    assert [(m["from"], m["body"]) for m in listed] == [(CUSTOMER, "hello")]


def test_without_the_option_the_page_and_its_routes_stay_loopback_only():
    from starlette.testclient import TestClient

    from airflow_provider_smsnexus.emulator.app import create_app
    from airflow_provider_smsnexus.emulator.settings import EmulatorSettings

    app = create_app(EmulatorSettings.for_tests())
    with TestClient(app, client=("203.0.113.9", 40000)) as stranger:
        refused = [stranger.get(path) for path in ("/", "/_emulator/inbox/1", "/_emulator/config")]
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        opened = local.post("/_emulator/config", json={"allow_remote_inspection": True})
        page = local.get("/")
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    assert all("--allow-remote-inspection" in answer.json()["message"] for answer in refused)
    # The switch is set at start only: the inspection API it guards cannot turn it on.
    assert opened.status_code == 422
    assert page.status_code == 200


def test_the_switches_have_human_labels_naming_their_setting_in_a_tooltip(page):
    labels = page.locator("[data-testid^=label-]")
    labels.first.wait_for(timeout=WAIT_MS)
    shown = {
        labels.nth(i).get_attribute("data-testid").removeprefix("label-"): (
            labels.nth(i).inner_text().split("\n")[0].strip(),
            labels.nth(i).get_attribute("title"),
        )
        for i in range(labels.count())
    }
    assert {"fail_before_share", "fail_after_share", "drop_after_share", "lifecycle"} <= set(shown)
    for setting, (text, tooltip) in shown.items():
        assert text, setting
        assert "_" not in text, (setting, text)
        assert tooltip.endswith(f"(setting {setting})"), (setting, tooltip)
    # The fault shares say what happens, not the setting's name ("fail before share").
    for setting in ("fail_before_share", "fail_after_share", "drop_after_share"):
        assert "share" not in shown[setting][0].lower(), shown[setting]
