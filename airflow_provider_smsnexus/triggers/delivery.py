"""SMSNexusDeliveryTrigger: wait in the triggerer until a campaign's messages reach a final status
(``delivered`` / ``failed``), reading every page of the outbound list whatever its order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.triggers.base import PollingTrigger
from airflow_provider_smsnexus.triggers.inbox import DEFAULT_LOOKBACK_SECONDS, message_id
from airflow_provider_smsnexus.utils.times import as_utc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from airflow.triggers.base import TriggerEvent

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook

FINAL_STATUSES = ("delivered", "failed")


def delivery_counts(statuses: dict[int, str | None], campaign_id: str | None = None) -> dict[str, Any]:
    """Counts per final status, the messages still pending (or not listed), and the delivery rate."""
    total = len(statuses)
    delivered = sum(1 for status in statuses.values() if status == "delivered")
    failed = sum(1 for status in statuses.values() if status == "failed")
    missing = sum(1 for status in statuses.values() if status is None)
    return {
        "campaign_id": campaign_id,
        "total": total,
        "delivered": delivered,
        "failed": failed,
        "pending": total - delivered - failed,
        "not_listed": missing,
        "delivery_rate": delivered / total if total else None,
        "complete": delivered + failed == total,
    }


def window_from(oldest: datetime | str | None) -> datetime | None:
    """The outbound walk's window start: the oldest send less the look-back (the server's clock may
    differ from the one that wrote the ledger)."""
    moment = as_utc(oldest, "oldest") if oldest is not None else None
    return None if moment is None else moment - timedelta(seconds=DEFAULT_LOOKBACK_SECONDS)


def _note(rows: list[dict[str, Any]], statuses: dict[int, str | None]) -> None:
    for row in rows:
        key = message_id(row)
        if key in statuses:
            statuses[key] = row.get("status")


async def aread_statuses(
    hook: SMSNexusAsyncHook, ids: Iterable[int], start: datetime | None
) -> dict[int, str | None]:
    """The listed status of each message id (None when not listed), from one full walk."""
    statuses: dict[int, str | None] = dict.fromkeys(ids)
    async for rows in hook.iter_message_pages(direction="outbound", start_date=start):
        _note(rows, statuses)
    return statuses


def read_statuses(hook: SMSNexusHook, ids: Iterable[int], start: datetime | None) -> dict[int, str | None]:
    """The synchronous twin of :func:`aread_statuses`, for poke mode."""
    statuses: dict[int, str | None] = dict.fromkeys(ids)
    for rows in hook.iter_message_pages(direction="outbound", start_date=start):
        _note(rows, statuses)
    return statuses


class SMSNexusDeliveryTrigger(PollingTrigger):
    """
    Poll the outbound list until every given message is ``delivered`` or ``failed``, or the deadline.

    Yields one event: ``{"status": "success", "counts": {...}, "statuses": {id: status}}`` when all are
    final, ``{"status": "timeout", ...}`` with the same keys at the deadline, or ``{"status": "error", ...}``.

    :param message_ids: the campaign's sent message ids.
    :param campaign_id: the campaign, for the counts.
    :param oldest: when the oldest message was sent (narrows the walk's date window).
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param poke_interval: seconds between walks.
    :param deadline: epoch seconds after which the trigger reports what it has.
    """

    def __init__(
        self,
        *,
        message_ids: list[int],
        campaign_id: str | None = None,
        oldest: str | None = None,
        smsnexus_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__(smsnexus_conn_id=smsnexus_conn_id, poke_interval=poke_interval, deadline=deadline)
        self.message_ids = [int(value) for value in message_ids]
        self.campaign_id = campaign_id
        self.oldest = oldest

    def arguments(self) -> dict[str, Any]:
        """The messages awaited, their campaign and the oldest send."""
        return {"message_ids": self.message_ids, "campaign_id": self.campaign_id, "oldest": self.oldest}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Walk every ``poke_interval`` seconds; yield one event and return."""
        hook = self.async_hook()
        start = window_from(self.oldest)
        last: dict[int, str | None] = dict.fromkeys(self.message_ids)

        def payload(status: str) -> dict[str, Any]:
            statuses = {str(key): value for key, value in last.items()}
            return {"status": status, "counts": delivery_counts(last, self.campaign_id), "statuses": statuses}

        async def check() -> dict[str, Any] | None:
            last.update(await aread_statuses(hook, self.message_ids, start))
            done = all(status in FINAL_STATUSES for status in last.values())
            return payload("success") if done else None

        async def timed_out() -> dict[str, Any]:
            return payload("timeout")

        what = f"final statuses of {len(self.message_ids)} messages"
        yield await self.wait_for(check, what=what, on_timeout=timed_out)
