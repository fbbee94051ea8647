"""SMSNexusReplyTrigger: wait in the triggerer for the first reply from one number after a message or
a moment, optionally matching a pattern; each check reads the inbound list only from where the last one
ended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.triggers.base import PollingTrigger
from airflow_provider_smsnexus.triggers.inbox import (
    Edge,
    InboxWindow,
    ReplyFilter,
    aread_inbound,
    normalize_numbers,
)
from airflow_provider_smsnexus.utils.times import as_utc, iso_utc

if TYPE_CHECKING:
    import logging
    from collections.abc import AsyncIterator
    from datetime import datetime

    from airflow.triggers.base import TriggerEvent


class SMSNexusReplyTrigger(PollingTrigger):
    """
    Poll the inbound messages until one from ``from_number`` comes after ``after_id`` / ``after``.

    Yields one event: ``{"status": "success", "reply": {...}}`` with the first matching reply (lowest
    id), ``{"status": "timeout", "message": ...}`` after ``deadline``, or ``{"status": "error", ...}`` for an
    error that waiting cannot fix (401, 403, a malformed answer). A reply from ``from_number`` that does not
    match ``pattern`` is logged and passed over.

    Each check reads the inbound list from where the check before it ended (its listed horizon), so a check
    costs about one page however long the account's history; see "Waiting for a reply" in
    :doc:`/guides/two-way`.

    :param from_number: the contact whose reply is awaited, E.164 with its ``+`` (a number without a country
        raises :class:`~airflow_provider_smsnexus.exceptions.SMSNexusInvalidNumberError`).
    :param to_number: only replies to this number of the account; None for any.
    :param pattern: only texts matching this regular expression (``re.search``, case-insensitive).
    :param after_id: only messages with a greater id (e.g. the id of the question sent).
    :param after: only messages created at or after this moment (the server's ``created_at``).
    :param position: where the first check starts reading (``Edge.as_json()``: a sensor's position after its
        own look, or the question's ``created_at``); None to place ``after_id`` / ``after`` itself.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param poke_interval: seconds between checks.
    :param deadline: epoch seconds after which the trigger gives up with a ``timeout`` event.
    """

    def __init__(
        self,
        *,
        from_number: str,
        to_number: str | None = None,
        pattern: str | None = None,
        after_id: int | None = None,
        after: datetime | str | None = None,
        position: dict[str, Any] | None = None,
        smsnexus_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__(smsnexus_conn_id=smsnexus_conn_id, poke_interval=poke_interval, deadline=deadline)
        self.reply_filter = ReplyFilter(
            from_numbers=normalize_numbers(from_number, "from_number"), to_number=to_number, pattern=pattern
        )
        self.after_id = None if after_id is None else int(after_id)
        self.after = as_utc(after, "after")
        self.position = Edge.from_json(position)

    def arguments(self) -> dict[str, Any]:
        """The awaited contact, the filter and the starting point."""
        kwargs = self.reply_filter.as_kwargs()
        return {
            "from_number": kwargs["from_numbers"][0],
            "to_number": kwargs["to_number"],
            "pattern": kwargs["pattern"],
            "after_id": self.after_id,
            "after": iso_utc(self.after) if self.after else None,
            "position": self.position.as_json() if self.position is not None else None,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check every ``poke_interval`` seconds; yield one event and return."""
        hook = self.async_hook()
        window = InboxWindow(self.after_id or 0, self.after, self.position)
        passed_over: set[int] = set()

        async def check() -> dict[str, Any] | None:
            rows = await aread_inbound(hook, window, self.log)
            reply = first_reply(rows, self.reply_filter, log=self.log, passed_over=passed_over)
            return None if reply is None else {"status": "success", "reply": reply}

        yield await self.wait_for(check, what=f"a reply from {self.reply_filter.from_numbers[0]}")


def first_reply(
    rows: list[dict[str, Any]],
    reply_filter: ReplyFilter,
    *,
    log: logging.Logger | None = None,
    passed_over: set[int] | None = None,
    expected: str | None = None,
) -> dict[str, Any] | None:
    """
    The matching message with the lowest id among ``rows`` (sorted by id), or None.

    :param log: where a reply from the awaited contact that does not match is said (once per id, with
        ``passed_over``), before the wait goes on.
    :param passed_over: the ids already said; updated.
    :param expected: what a matching reply looks like, for that log line (default: the pattern).
    """
    for row in rows:
        if reply_filter.matches(row):
            return row
        if log is None or not reply_filter.from_awaited(row):
            continue
        row_id = row.get("id")
        if passed_over is not None:
            if row_id in passed_over:
                continue
            passed_over.add(row_id)  # type: ignore[arg-type]
        log.info(
            "Passed over reply %s from %s: %r (%s); still waiting",
            row_id,
            row.get("from"),
            row.get("body"),
            expected or f"it does not match {reply_filter.pattern!r}",
        )
    return None
