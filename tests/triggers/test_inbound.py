"""SMSNexusInboundMessageTrigger against the emulator: every reply handed on once, through restarts, bursts
and every list order the API reference leaves open; the triggerer's ack-mode path through Airflow's own
SharedStreamManager.

The asset state store exists only inside a running triggerer; here ``open_position_store`` hands out an
in-memory store that outlives the trigger instances, as the asset's store outlives a triggerer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_provider_smsnexus.emulator.testing import TEST_CONNECTION_EXTRAS
from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook
from airflow_provider_smsnexus.triggers import inbound
from airflow_provider_smsnexus.triggers.inbound import MemoryPositionStore, SMSNexusInboundMessageTrigger

OUR_NUMBER = "+12125550100"
OTHER_NUMBER = "+12125550101"
WAIT = 30.0


def contact(i: int) -> str:
    return f"+1212555{1000 + i:04d}"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryPositionStore:
    shared = MemoryPositionStore()
    monkeypatch.setattr(inbound, "open_position_store", lambda asset_name: shared)
    return shared


def make_trigger(**kwargs: Any) -> SMSNexusInboundMessageTrigger:
    return SMSNexusInboundMessageTrigger(
        **{"asset_name": "sms_replies", "after_id": 0, "poll_interval": 0.05, **kwargs}
    )


async def take_until(agen, last_id: int) -> list[dict[str, Any]]:
    """Payloads from ``agen`` up to and including the message ``last_id``."""
    payloads = []
    while True:
        event = await asyncio.wait_for(anext(agen), WAIT)
        payloads.append(event.payload)
        if event.payload["message"]["id"] == last_id:
            return payloads


def ids(payloads: list[dict[str, Any]]) -> list[int]:
    return [payload["message"]["id"] for payload in payloads]


def inbound_ids(admin, through: int) -> list[int]:
    """The emulator's own record of inbound messages up to id ``through``."""
    return sorted(m["id"] for m in admin.messages(direction="inbound") if m["id"] <= through)


def test_serialize_round_trip_rebuilds_the_same_trigger_identity():
    trigger = SMSNexusInboundMessageTrigger(
        asset_name="sms_replies",
        from_numbers=["+1 212 555 0123"],
        to_number=OUR_NUMBER,
        pattern="^yes$",
        since="2026-01-01T00:00:00Z",
    )
    classpath, kwargs = trigger.serialize()
    rebuilt = SMSNexusInboundMessageTrigger(**json.loads(json.dumps(kwargs)))

    assert classpath == "airflow_provider_smsnexus.triggers.inbound.SMSNexusInboundMessageTrigger"
    assert kwargs["from_numbers"] == ["+12125550123"]
    assert kwargs["since"] == "2026-01-01T00:00:00Z"
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.state_key == trigger.state_key
    assert make_trigger(pattern="no").state_key != make_trigger(pattern="yes").state_key


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"after_id": None}, "since / after_id"),
        ({"asset_name": ""}, "asset_name"),
        ({"pattern": "(unclosed"}, "pattern"),
        ({"from_numbers": ["not a number"]}, "from_numbers"),
        ({"from_numbers": ["+12125550150", "3235550142"]}, r"from_numbers='3235550142' .* no country code"),
        ({"after_id": "12"}, "after_id"),
    ],
)
def test_bad_arguments_raise_an_error_naming_the_field(kwargs, field):
    with pytest.raises(SMSNexusError, match=field):
        make_trigger(**kwargs)


SWITCHES = {
    "newest_first": {},
    "oldest_first": {"list_order": "oldest_first"},
    "date_params_ignored": {"ignore_date_params": True},
    "live_traffic": {"live_traffic_per_list": 3},
}


@pytest.mark.parametrize("switches", SWITCHES.values(), ids=SWITCHES.keys())
def test_restart_of_the_trigger_neither_loses_nor_repeats_a_reply(
    smsnexus_conn, smsnexus_emulator, store, switches
):
    admin = smsnexus_emulator.admin
    admin.configure(**switches)
    for i in range(7):
        admin.add_inbound(contact(i), OUR_NUMBER, f"reply {i}")

    async def first_run() -> list[dict[str, Any]]:
        agen = make_trigger().run()
        taken = [(await asyncio.wait_for(anext(agen), WAIT)).payload for _ in range(4)]
        await agen.aclose()  # the triggerer stops mid-batch
        return taken

    before = asyncio.run(first_run())
    for i in range(7, 12):
        admin.add_inbound(contact(i), OUR_NUMBER, f"reply {i}")
    last = admin.add_inbound(contact(99), OUR_NUMBER, "the last one")["id"]

    async def second_run() -> list[dict[str, Any]]:
        agen = make_trigger().run()  # a new instance, the same kwargs
        try:
            return await take_until(agen, last)
        finally:
            await agen.aclose()

    after = asyncio.run(second_run())
    handed_on = ids(before) + ids(after)

    assert len(handed_on) == len(set(handed_on)), "a reply was handed on twice"
    assert sorted(handed_on) == inbound_ids(admin, last), "a reply was lost"
    assert all(payload["message"]["direction"] == "inbound" for payload in before + after)


def test_a_burst_of_500_replies_in_one_poll_is_handed_on_exactly_once(
    smsnexus_conn, smsnexus_emulator, store
):
    admin = smsnexus_emulator.admin
    admin.configure(list_order="oldest_first")
    for i in range(500):
        admin.add_inbound(contact(i % 50), OUR_NUMBER, f"burst {i}")
    last = admin.messages(direction="inbound")[-1]["id"]

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger(poll_interval=3600).run()  # one poll sees the whole burst
        try:
            return await take_until(agen, last)
        finally:
            await agen.aclose()

    handed_on = ids(asyncio.run(run()))

    assert len(handed_on) == 500
    assert sorted(handed_on) == inbound_ids(admin, last)


def test_filters_hand_on_only_matching_replies_and_skip_outbound(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    admin.add_inbound(contact(1), OUR_NUMBER, "  Yes please ")
    admin.add_inbound(contact(1), OUR_NUMBER, "no")
    admin.add_inbound(contact(2), OUR_NUMBER, "yes")  # another contact
    admin.add_inbound(contact(1), OTHER_NUMBER, "yes")  # to another of our numbers
    wanted = admin.add_inbound(contact(1), OUR_NUMBER, "YES")["id"]

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger(from_numbers=[contact(1)], to_number=OUR_NUMBER, pattern=r"^yes\b").run()
        try:
            return await take_until(agen, wanted)
        finally:
            await agen.aclose()

    payloads = asyncio.run(run())

    assert [p["message"]["body"] for p in payloads] == ["  Yes please ", "YES"]


def test_since_is_a_floor_for_every_reply(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    admin.seed_messages(200, start="2025-01-01T00:00:00Z", end="2025-06-01T00:00:00Z")
    fresh = admin.add_inbound(contact(5), OUR_NUMBER, "new")

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger(after_id=None, since="2025-12-01T00:00:00Z").run()
        try:
            return await take_until(agen, fresh["id"])
        finally:
            await agen.aclose()

    assert ids(asyncio.run(run())) == [fresh["id"]]


# -- the triggerer's path: Airflow's SharedStreamManager in ack mode ------------------------------------


async def _subscribe(trigger: SMSNexusInboundMessageTrigger, manager: SharedStreamManager):
    key = trigger.shared_stream_key()
    events = trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key))

    async def next_event() -> tuple[dict[str, Any], int | None]:
        event = await asyncio.wait_for(anext(events), WAIT)
        # As the triggerer does: bind the event to its raw batch before queueing it for the database.
        return event.payload, manager.bind_pending_event(trigger_id=1, key=key)

    return events, next_event


async def _wait_settled(store: MemoryPositionStore, message_id: int) -> None:
    async def settled() -> None:
        while not any(v.get("settled_id") == message_id for v in store.values.values()):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(settled(), WAIT)


def test_ack_mode_settles_only_stored_events_and_flags_the_unconfirmed_after_a_crash(
    smsnexus_conn, smsnexus_emulator, store
):
    admin = smsnexus_emulator.admin
    stored = [admin.add_inbound(contact(i), OUR_NUMBER, f"first {i}")["id"] for i in range(3)]

    async def crashed_triggerer() -> list[int]:
        manager = SharedStreamManager(ack_timeout=WAIT)
        events, next_event = await _subscribe(make_trigger(), manager)
        got = [await next_event() for _ in range(3)]
        manager.confirm_persisted([seq for _, seq in got])  # the database stored these three
        unconfirmed = admin.add_inbound(contact(9), OUR_NUMBER, "in flight")["id"]
        payload, _ = await next_event()  # handed on, never confirmed stored
        await _wait_settled(store, stored[-1])
        await manager.stop_all()  # the triggerer dies
        await events.aclose()
        return [p["message"]["id"] for p, _ in got] + [payload["message"]["id"], unconfirmed]

    first_ids = asyncio.run(crashed_triggerer())
    unconfirmed = first_ids[-1]

    async def restarted_triggerer() -> list[dict[str, Any]]:
        manager = SharedStreamManager(ack_timeout=WAIT)
        events, next_event = await _subscribe(make_trigger(), manager)
        try:
            again, _ = await next_event()
            later_id = admin.add_inbound(contact(10), OUR_NUMBER, "after restart")["id"]
            later, _ = await next_event()
            assert later["message"]["id"] == later_id
            return [again, later]
        finally:
            await manager.stop_all()
            await events.aclose()

    again, later = asyncio.run(restarted_triggerer())

    assert first_ids[:3] == stored
    assert again["message"]["id"] == unconfirmed, "a stored reply was handed on again, or one was lost"
    assert again["possibly_repeated"] is True
    assert later["possibly_repeated"] is False


# -- ids that become visible out of order (the emulator's late_visibility_ms) ---------------------------

HOUR_MS = 3_600_000


def test_a_reply_listed_late_below_an_id_already_handed_on_is_handed_on_once_across_a_restart(
    smsnexus_conn, smsnexus_emulator, store
):
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=HOUR_MS)  # the 1st, 3rd, 5th new message held back
    added = [admin.add_inbound(contact(i), OUR_NUMBER, f"reply {i}")["id"] for i in range(6)]
    listed_now, held_back = added[1::2], added[0::2]

    async def first_run() -> list[dict[str, Any]]:
        agen = make_trigger().run()
        try:
            return await take_until(agen, listed_now[-1])
        finally:
            await agen.aclose()

    before = asyncio.run(first_run())
    admin.configure(late_visibility_ms=0)  # the held-back messages show up, below ids handed on
    last = admin.add_inbound(contact(99), OUR_NUMBER, "the last one")["id"]

    async def second_run() -> list[dict[str, Any]]:
        agen = make_trigger().run()  # after a restart
        try:
            return await take_until(agen, last)
        finally:
            await agen.aclose()

    after = asyncio.run(second_run())

    assert ids(before) == listed_now  # the emulator did hold the others back
    assert sorted(ids(after)) == sorted([*held_back, last])
    handed_on = ids(before) + ids(after)
    assert len(handed_on) == len(set(handed_on)), "a reply was handed on twice"
    assert sorted(handed_on) == inbound_ids(admin, last), "a reply was lost"
    assert not any(p["possibly_repeated"] for p in before + after)


def test_in_ack_mode_a_reply_listed_late_is_handed_on_once(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=HOUR_MS)
    held, listed = (admin.add_inbound(contact(i), OUR_NUMBER, f"reply {i}")["id"] for i in range(2))

    async def triggerer() -> list[dict[str, Any]]:
        manager = SharedStreamManager(ack_timeout=WAIT)
        events, next_event = await _subscribe(make_trigger(), manager)
        try:
            first, seq = await next_event()
            manager.confirm_persisted([seq])
            admin.configure(late_visibility_ms=0)
            late, _ = await next_event()  # pulling on resolves the first batch
            await _wait_settled(store, listed)
            return [first, late]
        finally:
            await manager.stop_all()
            await events.aclose()

    first, late = asyncio.run(triggerer())

    assert first["message"]["id"] == listed
    assert late["message"]["id"] == held
    (position,) = store.values.values()
    assert [i for i, _ in position["handed"]] == [listed]  # confirmed stored
    assert position["yielded"] == [held]  # on its way: flagged if handed on again after a restart


def test_ids_below_the_listed_horizon_fold_into_the_floor(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    admin.seed_messages(40, start="2026-01-02T00:00:00Z", end="2026-01-03T00:00:00Z")
    old = admin.messages(direction="inbound")
    fresh = admin.add_inbound(contact(1), OUR_NUMBER, "today")["id"]

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger().run()
        try:
            return await take_until(agen, fresh)
        finally:
            await agen.aclose()

    handed_on = ids(asyncio.run(run()))
    (position,) = store.values.values()

    assert handed_on == [*sorted(m["id"] for m in old), fresh]
    assert position["floor_id"] >= max(m["id"] for m in old)  # bounded: old ids are one number
    assert {i for i, _ in position["handed"]} <= {fresh}


# -- the server's clock and its list's lag (issue 23) -----------------------------------------------------


class GatedHook(SMSNexusAsyncHook):
    """The async hook over real HTTP, held after each page of the list it reads until the test lets it on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paged = asyncio.Event()
        self.go_on = asyncio.Event()

    async def get_messages(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        body = await super().get_messages(*args, **kwargs)
        self.paged.set()
        await self.go_on.wait()
        return body


def test_an_acknowledgement_landing_during_a_walk_does_not_hand_a_reply_on_again(
    smsnexus_conn, smsnexus_emulator, store
):
    admin = smsnexus_emulator.admin
    first = admin.add_inbound(contact(1), OUR_NUMBER, "first")["id"]

    async def scenario() -> list[dict[str, Any]]:
        cursor = inbound.InboundCursor(make_trigger(), store)
        await cursor.load()
        hook = SMSNexusAsyncHook(smsnexus_conn_id=smsnexus_conn)
        (batch,) = await cursor.next_batches(hook)
        await cursor.mark_yielded(batch)
        await cursor.settle(batch["handed"])  # the first reply's events are stored
        # Two hours pass on the server's clock (longer than any look-back), then a second reply.
        admin.configure(clock_offset_seconds=7200)
        admin.add_inbound(contact(2), OUR_NUMBER, "second")
        (second,) = await cursor.next_batches(hook)
        await cursor.mark_yielded(second)  # its acknowledgement is slower than the poll interval
        admin.add_inbound(contact(3), OUR_NUMBER, "third")
        gated = GatedHook(smsnexus_conn_id=smsnexus_conn)
        walk = asyncio.create_task(cursor.next_batches(gated))
        await asyncio.wait_for(gated.paged.wait(), WAIT)  # the walk is paging
        await cursor.settle(second["handed"])  # the acknowledgement lands now
        gated.go_on.set()
        return await asyncio.wait_for(walk, WAIT)

    batches = asyncio.run(scenario())
    handed = [message for batch in batches for message in batch["messages"]]

    newest = max(m["id"] for m in admin.messages(direction="inbound"))
    assert first not in [m["id"] for m in handed], "an acknowledged reply was handed on again"
    assert [m["id"] for m in handed] == [newest]  # the third reply, and only it
    assert not any(m["possibly_repeated"] for m in handed)


@pytest.mark.parametrize("switches", SWITCHES.values(), ids=SWITCHES.keys())
def test_a_step_back_of_the_servers_clock_loses_no_reply(smsnexus_conn, smsnexus_emulator, store, switches):
    admin = smsnexus_emulator.admin
    admin.configure(**switches)
    before = admin.add_inbound(contact(1), OUR_NUMBER, "before the step")["id"]
    after_ids: list[int] = []

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger().run()
        try:
            taken = await take_until(agen, before)
            # The server's clock is set back two hours (more than the trigger's old look-back of one hour):
            # replies created now carry created_at values before those already handed on.
            admin.configure(clock_offset_seconds=-7200)
            after_ids.append(admin.add_inbound(contact(2), OUR_NUMBER, "after the step")["id"])
            return taken + await take_until(agen, after_ids[0])
        finally:
            await agen.aclose()

    handed_on = ids(asyncio.run(run()))

    assert len(handed_on) == len(set(handed_on)), "a reply was handed on twice"
    assert sorted(handed_on) == inbound_ids(admin, after_ids[0]), "a reply was lost"


def test_a_reply_listed_late_within_the_listing_delay_is_handed_on_once(
    smsnexus_emulator, store, monkeypatch: pytest.MonkeyPatch
):
    # The connection says the server lists a message within three hours of its created_at.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
        smsnexus_emulator.connection_json(**{**TEST_CONNECTION_EXTRAS, "listing_delay": 3 * 3600}),
    )
    admin = smsnexus_emulator.admin
    admin.configure(late_visibility_ms=HOUR_MS)  # the 1st, 3rd, ... new message held back
    held, listed = (admin.add_inbound(contact(i), OUR_NUMBER, f"reply {i}")["id"] for i in range(2))
    last_ids: list[int] = []

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger().run()
        try:
            taken = await take_until(agen, listed)
            admin.configure(clock_offset_seconds=2 * 3600)  # two hours pass on the server's clock
            admin.add_inbound(contact(2), OUR_NUMBER, "later, held back")
            later = admin.add_inbound(contact(3), OUR_NUMBER, "later")["id"]
            taken += await take_until(agen, later)
            admin.configure(late_visibility_ms=0)  # listed now: two hours late, within the listing delay
            last_ids.append(admin.add_inbound(contact(4), OUR_NUMBER, "the last one")["id"])
            return taken + await take_until(agen, last_ids[0])
        finally:
            await agen.aclose()

    handed_on = ids(asyncio.run(run()))

    assert handed_on[0] == listed  # the emulator did hold the first one back
    assert len(handed_on) == len(set(handed_on)), "a reply was handed on twice"
    assert sorted(handed_on) == inbound_ids(admin, last_ids[0]), "a reply listed late was lost"
    assert held in handed_on


def test_a_walk_reads_from_the_listed_horizon_not_the_whole_history(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    admin.seed_messages(41_000, random_seed=8)
    history = admin.messages(direction="inbound")
    assert len(history) >= 10_000
    reply = admin.add_inbound(contact(1), OUR_NUMBER, "new")["id"]

    async def walks() -> tuple[list[list[int]], list[int]]:
        cursor = inbound.InboundCursor(make_trigger(after_id=max(m["id"] for m in history)), store)
        await cursor.load()
        hook = SMSNexusAsyncHook(smsnexus_conn_id=smsnexus_conn)
        found, costs = [], []
        for text in ("one", "two", "three"):
            before = admin.stats()["requests"]["other"]
            batches = await cursor.next_batches(hook)
            costs.append(admin.stats()["requests"]["other"] - before)
            found.append([m["id"] for batch in batches for m in batch["messages"]])
            for batch in batches:
                await cursor.mark_yielded(batch)
                await cursor.settle(batch["handed"])
            admin.add_inbound(contact(2), OUR_NUMBER, text)
        return found, costs

    found, costs = asyncio.run(walks())
    later = [m["id"] for m in admin.messages(direction="inbound") if m["id"] > reply]

    assert found == [[reply], later[:1], later[1:2]]
    assert costs[0] <= 4  # the place of after_id found from the ids listed in the last hour(s)
    assert costs[1:] == [1, 1]  # then one page from the listed horizon on


# -- since="first-run": the start taken on the first run, kept through restarts ---------------------------


def test_first_run_keeps_the_literal_in_the_watchers_identity():
    trigger = make_trigger(after_id=None, since=inbound.SINCE_FIRST_RUN)
    _, kwargs = trigger.serialize()
    rebuilt = SMSNexusInboundMessageTrigger(**json.loads(json.dumps(kwargs)))

    assert kwargs["since"] == "first-run"
    assert rebuilt.state_key == trigger.state_key
    assert trigger.state_key != make_trigger(after_id=None, since="2026-01-01T00:00:00Z").state_key


async def _wait_start_stored(store: MemoryPositionStore) -> str:
    """The start the trigger stored in its position, once it has (before its first walk)."""

    async def stored() -> str:
        while not any(v.get("start") for v in store.values.values()):
            await asyncio.sleep(0.01)
        (position,) = store.values.values()
        return position["start"]

    return await asyncio.wait_for(stored(), WAIT)


def seed_history(admin) -> list[int]:
    """Inbound history before the first run: old messages, and texts to our number a minute before the
    server's present (more than the clock's uncertainty and the test connection's listing_delay of 0)."""
    admin.seed_messages(60, start="2025-01-01T00:00:00Z", end="2025-06-01T00:00:00Z")
    for i in range(3):
        admin.add_inbound(contact(i), OUR_NUMBER, f"old {i}")
    admin.configure(clock_offset_seconds=60)
    return [m["id"] for m in admin.messages(direction="inbound")]


@pytest.mark.parametrize("switches", SWITCHES.values(), ids=SWITCHES.keys())
def test_first_run_hands_on_no_history_and_every_reply_after_its_start_once(
    smsnexus_conn, smsnexus_emulator, store, switches
):
    admin = smsnexus_emulator.admin
    history = seed_history(admin)
    admin.configure(**switches)
    last: list[int] = []

    async def run() -> list[dict[str, Any]]:
        agen = make_trigger(after_id=None, since=inbound.SINCE_FIRST_RUN).run()
        first = asyncio.ensure_future(anext(agen))
        try:
            await _wait_start_stored(store)  # the start is placed: anything sent now comes after it
            new = admin.add_inbound(contact(5), OUR_NUMBER, "new")["id"]
            taken = [(await asyncio.wait_for(first, WAIT)).payload]
            if taken[0]["message"]["id"] != new:
                taken += await take_until(agen, new)
            last.append(admin.add_inbound(contact(6), OUR_NUMBER, "newer")["id"])
            return taken + await take_until(agen, last[0])
        finally:
            first.cancel()
            await agen.aclose()

    handed_on = ids(asyncio.run(run()))

    assert history, "the emulator holds no history: the scenario would prove nothing"
    assert not set(handed_on) & set(history), "a message from before the first run was handed on"
    assert len(handed_on) == len(set(handed_on)), "a reply was handed on twice"
    assert sorted(handed_on) == [i for i in inbound_ids(admin, last[0]) if i not in history], (
        "a reply was lost"
    )


def test_a_restart_keeps_the_start_of_the_first_run(smsnexus_conn, smsnexus_emulator, store):
    admin = smsnexus_emulator.admin
    history = seed_history(admin)

    async def first_run() -> tuple[str, list[dict[str, Any]]]:
        agen = make_trigger(after_id=None, since=inbound.SINCE_FIRST_RUN).run()
        first = asyncio.ensure_future(anext(agen))
        try:
            start = await _wait_start_stored(store)
            new = admin.add_inbound(contact(5), OUR_NUMBER, "in the first run")["id"]
            taken = [(await asyncio.wait_for(first, WAIT)).payload]
            assert ids(taken) == [new]
            return start, taken
        finally:
            first.cancel()
            await agen.aclose()

    start, before = asyncio.run(first_run())
    between = admin.add_inbound(contact(6), OUR_NUMBER, "while the triggerer was down")["id"]
    # Another minute on the server's clock: a start taken again now would come after `between`.
    admin.configure(clock_offset_seconds=120)
    last = admin.add_inbound(contact(7), OUR_NUMBER, "after the restart")["id"]

    async def second_run() -> list[dict[str, Any]]:
        agen = make_trigger(after_id=None, since=inbound.SINCE_FIRST_RUN).run()  # a new instance
        try:
            return await take_until(agen, last)
        finally:
            await agen.aclose()

    after = asyncio.run(second_run())
    handed_on = ids(before) + ids(after)
    (position,) = store.values.values()

    assert ids(after) == [between, last]
    assert position["start"] == start
    assert not set(handed_on) & set(history)
    assert sorted(handed_on) == [i for i in inbound_ids(admin, last) if i not in history]
