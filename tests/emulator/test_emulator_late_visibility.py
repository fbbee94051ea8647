"""The ``late_visibility_ms`` switch: message ids stop becoming visible in increasing order in
``GET /api/messages`` (every other new message held back, later ones listed), the inspection API unaffected,
and lowering the switch releases the held-back messages."""

from __future__ import annotations

from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

OUR_NUMBER = "+12125550100"
HOUR_MS = 3_600_000


def listed_ids(**params) -> list[int]:
    return sorted(m["id"] for m in SMSNexusHook().iter_messages(**params))


def test_every_other_new_message_is_held_back_while_later_ids_are_listed(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=HOUR_MS)
    received = [admin.add_inbound(f"+1212555013{i}", OUR_NUMBER, f"reply {i}")["id"] for i in range(3)]
    sent = SMSNexusHook().send_sms(OUR_NUMBER, "+12125550139", "outbound too")["id"]
    everything = sorted([*received, sent])

    assert listed_ids() == [received[1], sent]  # the 1st and 3rd are held back, the 2nd and 4th listed
    assert listed_ids(direction="inbound") == [received[1]]
    assert SMSNexusHook().get_messages(per_page=10)["meta"]["total"] == 2
    assert sorted(m["id"] for m in admin.messages()) == everything  # the inspection API sees them all

    admin.configure(late_visibility_ms=0)

    assert listed_ids() == everything


def test_without_the_switch_every_message_is_listed_at_once(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    received = [admin.add_inbound(f"+1212555013{i}", OUR_NUMBER, f"reply {i}")["id"] for i in range(3)]

    assert listed_ids() == received
