"""SMSNexusInboundMessageTrigger: an event trigger for an ``AssetWatcher`` that hands on each new inbound
SMS once, its position kept in the asset's state store so a triggerer restart neither loses nor repeats.

How the position survives a restart (Airflow 3.3): the trigger declares a shared stream in *ack mode*
(:meth:`create_shared_stream_producer`). The triggerer tells the producer which raw events (batches of
new messages) have had every trigger event derived from them **persisted** in the metadata database;
only then does the producer record the batch's ids as handed on in the asset state store. Before
yielding a batch it records its ids as ``yielded``. So after a restart:

- ids recorded as handed on were handed on and persisted: never handed on again;
- ids yielded but not recorded as handed on may or may not have been persisted when the triggerer died:
  they are handed on again **flagged** ``possibly_repeated: true`` (the only repeats there can be: the
  window between the metadata database commit and the position write, about one triggerer sync);
- any other id in the window was never handed on: handed on normally.

Each walk reads the inbound list from the *listed horizon* of the walk before it: the server's present at
that walk's start, measured from its ``Date`` headers, less the clock's uncertainty and the connection's
``listing_delay`` (:class:`~airflow_provider_smsnexus.triggers.inbox.InboxWindow`). The position is that edge
and the set of ids handed on since, not only the newest id: a message listed late, with an id below one
already handed on, is still handed on, once. Ids below the edge fold into a floor. The exact guarantee:
every inbound message is handed on exactly once (or, after a crash in the window above, again with the flag)
provided the server lists it within ``listing_delay`` of its ``created_at``; a step back of the server's
clock, seen by the next walk, moves the window back with it.

``since="first-run"`` (:data:`SINCE_FIRST_RUN`) starts from the trigger's first run: on the first load with no
stored position, before its first walk, the trigger takes the listed horizon of that moment (server clock)
as its start and stores it in the position; every later load (a restart) keeps that stored start. Messages
created before it are never handed on; every message created after the first walk began is.

.. seealso:: "Replies as Asset events" in :doc:`/guides/two-way`, for the guarantee and its assumptions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import SharedStreamProducer

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusResponseError
from airflow_provider_smsnexus.triggers.base import TRANSIENT_ERRORS
from airflow_provider_smsnexus.triggers.inbox import (
    MESSAGES_PATH,
    Edge,
    InboxWindow,
    ReplyFilter,
    ahorizon,
    aread_inbound,
    message_id,
)
from airflow_provider_smsnexus.utils.times import as_utc, created_at_of, iso_utc, utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable, Iterable, Sequence

    from airflow.triggers.shared_stream import AdvanceItem

#: Messages per raw event of the shared stream: keeps a burst far below the triggerer's queue bound.
BATCH_SIZE = 100
#: The asset-state key prefix under which a trigger keeps its position.
STATE_KEY_PREFIX = "smsnexus.inbound."
#: ``since`` for "from the trigger's first run on": the start is taken then and kept in the stored position.
SINCE_FIRST_RUN = "first-run"


class MemoryPositionStore:
    """An in-process stand-in for the asset state store (``aget``/``aset``), for code run outside a
    triggerer; the position it holds dies with the process."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def open_position_store(asset_name: str) -> Any:
    """The state store of the watched asset, as the triggerer offers it (``aget``/``aset``)."""
    from airflow.sdk.execution_time.context import AssetStateStoreAccessor

    return AssetStateStoreAccessor(name=asset_name)


class InboundCursor:
    """
    The position of one trigger: which ids were handed on for good, which were on their way, and the
    next batches to hand on.

    The stored position (a JSON object in the asset state store):

    - ``edge``: where the next walk starts (:class:`~airflow_provider_smsnexus.triggers.inbox.Edge`): every
      message created before it was handed on for good (the stored edge stays at or below the messages
      still on their way, so a restart reads them again);
    - ``floor_id``: every message with this id or a smaller one was handed on for good, or is not wanted
      (``after_id``); ids handed on and created before the edge fold into it;
    - ``handed``: ``[id, created_at epoch seconds]`` of each message above ``floor_id`` handed on for good;
    - ``settled_id``: the newest message handed on for good (or ``floor_id``);
    - ``yielded``: ids handed on but not (yet) confirmed stored: flagged ``possibly_repeated`` if they
      are handed on again after a restart;
    - ``start``: the floor of ``created_at`` (``since``); for ``since="first-run"`` the listed horizon taken
      before the first walk, read back by every later load.

    A set of ids, not a single "newest id", because ids need not become visible in increasing order: a
    message listed late, below an id already handed on, is still handed on (once). A message found by a walk
    stays at or above the stored edge and the floor until it is handed on for good, so a restart finds it
    again. New messages are those above the floor and not taken, both read at the moment a walk ends: an
    acknowledgement that folds ids into the floor while a walk is paging never makes that walk hand one on
    again.

    :param trigger: the trigger whose kwargs fix the filter, the floor and the state key.
    :param store: where the position lives (``aget``/``aset``).
    """

    def __init__(self, trigger: SMSNexusInboundMessageTrigger, store: Any) -> None:
        self.trigger = trigger
        self.store = store
        self.floor_id = trigger.after_id or 0
        self.window = InboxWindow(self.floor_id, trigger.since_dt)
        self._handed: dict[int, int] = {}  # id -> created_at (epoch seconds), handed on for good
        self._yielded: dict[int, int] = {}  # handed on, not confirmed stored
        self._found: dict[int, int] = {}  # found by a walk, not handed on yet
        self._repeat: set[int] = set()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the stored position; ids yielded but not settled before are handed on flagged."""
        stored = await self.store.aget(self.trigger.state_key, None)
        state = stored if isinstance(stored, dict) else {}
        self.floor_id = max(int(state.get("floor_id") or 0), self.trigger.after_id or 0)
        self.window.edge = Edge.from_json(state.get("edge"))
        if self.trigger.since_first_run and state.get("start"):
            self.window.since = as_utc(state["start"], "start")  # never a new "now" after a restart
        floor = self.floor_id
        self._handed = {int(i): int(c) for i, c in state.get("handed") or () if int(i) > floor}
        self._repeat = {int(i) for i in state.get("yielded") or () if int(i) > floor} - set(self._handed)
        if self._repeat:
            self.trigger.log.warning(
                "%d message(s) were handed on before a restart without confirmation that their events "
                "were stored: handing them on again, flagged possibly_repeated",
                len(self._repeat),
            )

    def _is_new(self, row_id: int) -> bool:
        return row_id > self.floor_id and not (
            row_id in self._handed or row_id in self._yielded or row_id in self._found
        )

    async def next_batches(self, hook: Any) -> list[dict[str, Any]]:
        """One walk of the inbound list: the new messages, in batches of at most :data:`BATCH_SIZE`."""
        if self.trigger.since_first_run and self.window.since is None:
            await self._place_first_run(hook)
        rows = await aread_inbound(hook, self.window, self.trigger.log)
        # No await from here on: the floor and the taken ids are read as they are when the walk ended.
        rows = [row for row in rows if self._is_new(message_id(row))]
        batches = []
        for first in range(0, len(rows), BATCH_SIZE):
            chunk = rows[first : first + BATCH_SIZE]
            batches.append(
                {
                    "messages": [
                        {**row, "possibly_repeated": message_id(row) in self._repeat} for row in chunk
                    ],
                    "handed": [[message_id(row), _epoch(row)] for row in chunk],
                }
            )
        self._found.update((message_id(row), _epoch(row)) for row in rows)
        return batches

    async def _place_first_run(self, hook: Any) -> None:
        """Take the listed horizon of now (server clock) as the start, and store it before the first walk."""
        start = (await ahorizon(hook))(utcnow())
        async with self._lock:
            self.window.since = start
            await self.store.aset(self.trigger.state_key, self._snapshot())
        self.trigger.log.info(
            "First run: handing on inbound messages created from %s (server clock) on", iso_utc(start)
        )

    def _snapshot(self) -> dict[str, Any]:
        unsettled = [*self._found.values(), *self._yielded.values()]
        edge = self.window.edge
        if edge is not None and unsettled:
            edge = edge.lowered(_moment(min(unsettled)))  # found again after a restart
        return {
            "edge": edge.as_json() if edge is not None else None,
            "floor_id": self.floor_id,
            "handed": [[i, self._handed[i]] for i in sorted(self._handed)],
            "settled_id": max(self._handed, default=self.floor_id),
            "yielded": sorted(self._yielded),
            "start": iso_utc(self.window.since) if self.window.since else None,
        }

    async def mark_yielded(self, batch: dict[str, Any]) -> None:
        """Record, before a batch is handed on, that its ids may be on their way."""
        async with self._lock:
            for row_id, created in batch["handed"]:
                self._found.pop(row_id, None)
                self._yielded[row_id] = created
            await self.store.aset(self.trigger.state_key, self._snapshot())

    async def settle(self, handed: Sequence[Sequence[int]], *, withdraw: bool = False) -> None:
        """Record that the messages ``handed`` (``[id, created_at epoch]``) were handed on for good.

        :param withdraw: the other yielded messages were not handed on after all (the consumer stopped):
            they are neither settled nor flagged later, and stay above the stored edge and floor.
        """
        if not handed and not withdraw:
            return
        async with self._lock:
            for row_id, created in handed:
                self._handed[int(row_id)] = int(created)
                self._yielded.pop(int(row_id), None)
                self._found.pop(int(row_id), None)
                self._repeat.discard(int(row_id))
            if withdraw:
                self._found.update(self._yielded)
                self._yielded.clear()
            self._fold_old()
            await self.store.aset(self.trigger.state_key, self._snapshot())

    def _fold_old(self) -> None:
        """Fold the ids handed on for good and created before the edge into ``floor_id``, below every id
        still on its way."""
        edge = self.window.edge
        if edge is None or not self._handed:
            return
        cut = edge.server.timestamp()
        below = min([*self._found, *self._yielded], default=None)
        old = [i for i, created in self._handed.items() if created < cut and (below is None or i < below)]
        if not old:
            return
        self.floor_id = max(self.floor_id, *old)
        self._handed = {i: c for i, c in self._handed.items() if i > self.floor_id}
        self._repeat = {i for i in self._repeat if i > self.floor_id}


def _epoch(row: dict[str, Any]) -> int:
    created = created_at_of(row)
    if created is None:
        raise SMSNexusResponseError(
            f"{MESSAGES_PATH} lists message {row.get('id')!r} without a readable created_at: the window "
            "of replies is kept by creation time"
        )
    return int(created.timestamp())


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class SMSNexusInboundMessageTrigger(BaseEventTrigger):
    """
    Fire one event per new inbound SMS, for an ``AssetWatcher``: a DAG scheduled on the asset runs for
    new replies, each message in its asset event's ``extra["payload"]["message"]``.

    Polls ``GET /api/messages?direction=inbound`` through :class:`SMSNexusAsyncHook` (its rate limiter and
    retries), reading every page of the date window whatever the server's order; the window starts at the
    listed horizon of the walk before (so a walk reads about one ``poll_interval`` of traffic, plus the
    connection's ``listing_delay``). The event payload is ``{"message": {...}, "possibly_repeated": bool}``;
    see the module docstring for the guarantee.

    Either ``since`` or ``after_id`` must be given, and fixed (not ``now()``): the kwargs identify the
    watcher, and a value that changed on every DAG parse would make a new trigger each time. For "from now
    on", give ``since="first-run"``: the identity keeps the literal, and the start is taken on the first run.

    :param asset_name: the name of the watched asset, whose state store keeps the position.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param from_numbers: only messages from these contacts (E.164); None for any contact.
    :param to_number: only messages sent to this number of the account; None for any.
    :param pattern: only texts matching this regular expression (``re.search``, case-insensitive).
    :param since: only messages created at or after this moment (the server's ``created_at``), or
        :data:`SINCE_FIRST_RUN` (``"first-run"``): from the listed horizon when the trigger first runs (for an
        ``AssetWatcher``, when its DAG is first unpaused), that start kept in the stored position.
    :param after_id: only messages with a greater id.
    :param poll_interval: seconds between walks of the inbound list (default 30).
    """

    def __init__(
        self,
        *,
        asset_name: str,
        smsnexus_conn_id: str = DEFAULT_CONN_ID,
        from_numbers: Sequence[str] | str | None = None,
        to_number: str | None = None,
        pattern: str | None = None,
        since: datetime | str | None = None,
        after_id: int | None = None,
        poll_interval: float = 30.0,
    ) -> None:
        super().__init__()
        if not asset_name or not isinstance(asset_name, str):
            raise SMSNexusError("asset_name: give the name of the watched asset (it keeps the position)")
        if since is None and after_id is None:
            raise SMSNexusError(
                "since / after_id: give a fixed start (a datetime or ISO string, or a message id), or "
                f"since={SINCE_FIRST_RUN!r} to start from the first run; messages before it are never handed on"
            )
        if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int)):
            raise SMSNexusError(f"after_id must be an integer message id, not {after_id!r}")
        if not float(poll_interval) > 0:
            raise SMSNexusError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        self.asset_name = asset_name
        self.smsnexus_conn_id = smsnexus_conn_id
        self.reply_filter = ReplyFilter(from_numbers=from_numbers, to_number=to_number, pattern=pattern)
        self.since_first_run = since == SINCE_FIRST_RUN
        self.since_dt = None if self.since_first_run else as_utc(since, "since")
        self.after_id = after_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-safe keyword arguments that rebuild this trigger."""
        since = iso_utc(self.since_dt) if self.since_dt else None
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "asset_name": self.asset_name,
                "smsnexus_conn_id": self.smsnexus_conn_id,
                **self.reply_filter.as_kwargs(),
                "since": SINCE_FIRST_RUN if self.since_first_run else since,
                "after_id": self.after_id,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def state_key(self) -> str:
        """The asset-state key of this trigger's position: one per connection, filter and start."""
        _, kwargs = self.serialize()
        identity = {k: kwargs[k] for k in kwargs if k != "poll_interval"}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return STATE_KEY_PREFIX + digest

    def _event(self, row: dict[str, Any]) -> TriggerEvent:
        repeated = bool(row.get("possibly_repeated"))
        message = {k: v for k, v in row.items() if k != "possibly_repeated"}
        return TriggerEvent({"message": message, "possibly_repeated": repeated})

    def _events(self, batch: dict[str, Any]) -> Iterable[TriggerEvent]:
        return [self._event(row) for row in batch["messages"] if self.reply_filter.matches(row)]

    # -- the triggerer's path: a shared stream in ack mode ----------------------------------------------

    def shared_stream_key(self) -> Hashable | None:
        """One stream per trigger identity: sharing is only the way to the triggerer's persist acks."""
        return ("smsnexus-inbound", self.state_key)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        """The producer that walks the inbound list and settles the position once events are stored."""
        return _InboundProducer(cls(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Hand on the matching messages of each batch, before taking the next batch."""
        async for batch in shared_stream:
            for event in self._events(batch):
                yield event

    # -- the stand-alone path: run() (a consumer that pulls on has taken the events) ---------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """
        Walk the inbound list every ``poll_interval`` seconds and yield one event per new message.

        Used where the triggerer does not take the shared stream (and by tests). Here "handed on" means
        "taken by the consumer": a message is settled once its event was returned to the consumer, and a
        consumer that closes the generator leaves nothing flagged behind.
        """
        cursor = InboundCursor(self, open_position_store(self.asset_name))
        await cursor.load()
        async for batch in _walks(self, cursor):
            await cursor.mark_yielded(batch)
            skipped = []  # messages that do not match: handed on (to nobody) with the next one taken
            for row, handed in zip(batch["messages"], batch["handed"]):
                if not self.reply_filter.matches(row):
                    skipped.append(handed)
                    continue
                try:
                    yield self._event(row)
                except GeneratorExit:
                    # The consumer took this event and stopped: the rest of the batch was not handed on.
                    await cursor.settle([*skipped, handed], withdraw=True)
                    raise
                await cursor.settle([*skipped, handed])
                skipped = []
            await cursor.settle(skipped)


async def _walks(
    trigger: SMSNexusInboundMessageTrigger, cursor: InboundCursor
) -> AsyncIterator[dict[str, Any]]:
    """The batches of every walk, forever; transient errors are logged and the walk retried."""
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook

    hook = SMSNexusAsyncHook(smsnexus_conn_id=trigger.smsnexus_conn_id)
    while True:
        try:
            batches = await cursor.next_batches(hook)
        except TRANSIENT_ERRORS as error:
            trigger.log.warning(
                "Reading inbound messages failed for now (%s); again in %.1f s",
                type(error).__name__,
                trigger.poll_interval,
            )
            batches = []
        for batch in batches:
            yield batch
        await asyncio.sleep(trigger.poll_interval)


class _InboundProducer(SharedStreamProducer):
    """Walks the inbound list for one trigger identity; settles the position when the triggerer reports
    a batch's events stored."""

    def __init__(self, trigger: SMSNexusInboundMessageTrigger) -> None:
        self.trigger = trigger
        self.cursor = InboundCursor(trigger, open_position_store(trigger.asset_name))

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        await self.cursor.load()
        async for batch in _walks(self.trigger, self.cursor):
            await self.cursor.mark_yielded(batch)
            yield batch, batch["handed"]

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        for item in batch:
            if not item.outcome.is_clean:
                # Raising ends the stream; the next start hands these on again, flagged.
                ids = [row_id for row_id, _ in item.broker_payload]
                raise SMSNexusError(
                    f"Inbound messages {ids[0]}..{ids[-1]} were not confirmed stored ({item.outcome}); "
                    "they are handed on again, flagged possibly_repeated, when the trigger starts again"
                )
            await self.cursor.settle(item.broker_payload)
