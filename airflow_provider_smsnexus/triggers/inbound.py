"""SMSNexusInboundMessageTrigger: an event trigger for an ``AssetWatcher`` that hands on each new inbound
SMS once, its position kept in the asset's state store so a triggerer restart neither loses nor repeats.

How the position survives a restart (Airflow 3.3): the trigger declares a shared stream in *ack mode*
(:meth:`create_shared_stream_producer`). The triggerer tells the producer which raw events (batches of
new messages, by id) have had every trigger event derived from them **persisted** in the metadata
database; only then does the producer write the batch's last id as the position into the asset state
store. Before yielding a batch it writes the batch's last id as ``yielded_id``. So after a restart:

- ids up to ``settled_id`` were handed on and persisted: never handed on again;
- ids in (``settled_id``, ``yielded_id``] may or may not have been persisted when the triggerer died: they
  are handed on again **flagged** ``possibly_repeated: true`` (the only repeats there can be: the window
  between the metadata database commit and the position write, about one triggerer sync);
- ids above ``yielded_id`` were never handed on: handed on normally.

.. seealso:: the "Replies as Asset events" section of the README, for the guarantee and its assumptions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import SharedStreamProducer

from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusRateLimitError,
    SMSNexusServerError,
)
from airflow_provider_smsnexus.hooks._times import as_utc, iso_utc
from airflow_provider_smsnexus.triggers._inbox import (
    DEFAULT_LOOKBACK_SECONDS,
    ReplyFilter,
    aread_inbound_after,
    message_id,
    window_start,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
    from datetime import datetime

    from airflow.triggers.shared_stream import AdvanceItem

#: Messages per raw event of the shared stream: keeps a burst far below the triggerer's queue bound.
BATCH_SIZE = 100
#: The asset-state key prefix under which a trigger keeps its position.
STATE_KEY_PREFIX = "smsnexus.inbound."


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
    The position of one trigger: what was yielded, what is settled, and the next batches to hand on.

    :param trigger: the trigger whose kwargs fix the filter, the floor and the state key.
    :param store: where the position lives (``aget``/``aset``).
    """

    def __init__(self, trigger: SMSNexusInboundMessageTrigger, store: Any) -> None:
        self.trigger = trigger
        self.store = store
        self.state: dict[str, Any] = {}
        self._repeat_through = 0
        self._read_id = 0
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the stored position; ids yielded but not settled before are handed on flagged."""
        stored = await self.store.aget(self.trigger.state_key, None)
        floor = self.trigger.after_id or 0
        state = stored if isinstance(stored, dict) else {}
        self.state = {
            "settled_id": max(int(state.get("settled_id") or 0), floor),
            "settled_created_at": state.get("settled_created_at"),
            "yielded_id": max(int(state.get("yielded_id") or 0), floor),
        }
        self._repeat_through = self.state["yielded_id"]
        self._read_id = self.state["settled_id"]
        if self._repeat_through > self._read_id:
            self.trigger.log.warning(
                "Messages after id %d up to id %d were handed on before a restart without confirmation "
                "that their events were stored: handing them on again, flagged possibly_repeated",
                self._read_id,
                self._repeat_through,
            )

    async def next_batches(self, hook: Any) -> list[dict[str, Any]]:
        """One walk of the inbound list: the new messages, in batches of at most :data:`BATCH_SIZE`."""
        trigger = self.trigger
        start = window_start(self.state["settled_created_at"], trigger.since_dt, trigger.lookback_seconds)
        rows = await aread_inbound_after(hook, self._read_id, since=trigger.since_dt, start=start)
        batches = []
        for first in range(0, len(rows), BATCH_SIZE):
            chunk = rows[first : first + BATCH_SIZE]
            last = chunk[-1]
            batches.append(
                {
                    "messages": [
                        {**row, "possibly_repeated": message_id(row) <= self._repeat_through} for row in chunk
                    ],
                    "through_id": message_id(last),
                    "through_created_at": last.get("created_at"),
                }
            )
        if rows:
            self._read_id = message_id(rows[-1])
        return batches

    async def mark_yielded(self, batch: dict[str, Any]) -> None:
        """Record, before a batch is handed on, that its ids may be on their way."""
        async with self._lock:
            self.state["yielded_id"] = max(self.state["yielded_id"], batch["through_id"])
            await self.store.aset(self.trigger.state_key, dict(self.state))

    async def settle(
        self, through_id: int, through_created_at: str | None, *, withdraw: bool = False
    ) -> None:
        """Record that every message up to ``through_id`` was handed on for good.

        :param withdraw: the messages after it were not handed on after all (the consumer stopped).
        """
        async with self._lock:
            if through_id > self.state["settled_id"]:
                self.state["settled_id"] = through_id
                self.state["settled_created_at"] = through_created_at
            elif not withdraw:
                return
            if withdraw:
                self.state["yielded_id"] = self.state["settled_id"]
            await self.store.aset(self.trigger.state_key, dict(self.state))


class SMSNexusInboundMessageTrigger(BaseEventTrigger):
    """
    Fire one event per new inbound SMS, for an ``AssetWatcher``: a DAG scheduled on the asset runs for
    new replies, each message in its asset event's ``extra["payload"]["message"]``.

    Polls ``GET /api/messages?direction=inbound`` through :class:`SMSNexusAsyncHook` (its rate limiter and
    retries), reading every page of the date window whatever the server's order. The event payload is
    ``{"message": {...}, "possibly_repeated": bool}``; see the module docstring for the guarantee.

    Either ``since`` or ``after_id`` must be given, and fixed (not ``now()``): the kwargs identify the
    watcher, and a value that changed on every DAG parse would make a new trigger each time.

    :param asset_name: the name of the watched asset, whose state store keeps the position.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param from_numbers: only messages from these contacts (E.164); None for any contact.
    :param to_number: only messages sent to this number of the account; None for any.
    :param pattern: only texts matching this regular expression (``re.search``, case-insensitive).
    :param since: only messages created at or after this moment (the server's ``created_at``).
    :param after_id: only messages with a greater id.
    :param poll_interval: seconds between walks of the inbound list (default 30).
    :param lookback_seconds: how far before the newest handed-on message a walk's date window opens.
    """

    def __init__(
        self,
        *,
        asset_name: str,
        smsnexus_conn_id: str = "smsnexus_default",
        from_numbers: Sequence[str] | str | None = None,
        to_number: str | None = None,
        pattern: str | None = None,
        since: datetime | str | None = None,
        after_id: int | None = None,
        poll_interval: float = 30.0,
        lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    ) -> None:
        super().__init__()
        if not asset_name or not isinstance(asset_name, str):
            raise SMSNexusError("asset_name: give the name of the watched asset (it keeps the position)")
        if since is None and after_id is None:
            raise SMSNexusError(
                "since / after_id: give a fixed start (a datetime or ISO string, or a message id); "
                "messages before it are never handed on"
            )
        if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int)):
            raise SMSNexusError(f"after_id must be an integer message id, not {after_id!r}")
        if not float(poll_interval) > 0:
            raise SMSNexusError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        self.asset_name = asset_name
        self.smsnexus_conn_id = smsnexus_conn_id
        self.reply_filter = ReplyFilter(from_numbers=from_numbers, to_number=to_number, pattern=pattern)
        self.since_dt = as_utc(since, "since")
        self.after_id = after_id
        self.poll_interval = float(poll_interval)
        self.lookback_seconds = float(lookback_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-safe keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "asset_name": self.asset_name,
                "smsnexus_conn_id": self.smsnexus_conn_id,
                **self.reply_filter.as_kwargs(),
                "since": iso_utc(self.since_dt) if self.since_dt else None,
                "after_id": self.after_id,
                "poll_interval": self.poll_interval,
                "lookback_seconds": self.lookback_seconds,
            },
        )

    @property
    def state_key(self) -> str:
        """The asset-state key of this trigger's position: one per connection, filter and start."""
        _, kwargs = self.serialize()
        identity = {k: kwargs[k] for k in kwargs if k not in ("poll_interval", "lookback_seconds")}
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
            for row in batch["messages"]:
                if not self.reply_filter.matches(row):
                    continue
                try:
                    yield self._event(row)
                except GeneratorExit:
                    await cursor.settle(message_id(row), row.get("created_at"), withdraw=True)
                    raise
                await cursor.settle(message_id(row), row.get("created_at"))
            await cursor.settle(batch["through_id"], batch["through_created_at"])


async def _walks(
    trigger: SMSNexusInboundMessageTrigger, cursor: InboundCursor
) -> AsyncIterator[dict[str, Any]]:
    """The batches of every walk, forever; transient errors are logged and the walk retried."""
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook

    hook = SMSNexusAsyncHook(smsnexus_conn_id=trigger.smsnexus_conn_id)
    while True:
        try:
            batches = await cursor.next_batches(hook)
        except (SMSNexusRateLimitError, SMSNexusServerError) as error:
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
            yield batch, (batch["through_id"], batch["through_created_at"])

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        for item in batch:
            if not item.outcome.is_clean:
                # Raising ends the stream; the next start hands these on again, flagged.
                raise SMSNexusError(
                    f"Inbound messages up to id {item.broker_payload[0]} were not confirmed stored "
                    f"({item.outcome}); the position stays at id {self.cursor.state['settled_id']}"
                )
            await self.cursor.settle(*item.broker_payload)
