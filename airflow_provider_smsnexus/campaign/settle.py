"""Settling the rows whose outcome is still open: lookups of sends whose answer was lost in this run and of
rows an earlier (dead) attempt left pending, and waiting for rows another live attempt holds.

:class:`RowSettler` is held by :class:`~airflow_provider_smsnexus.campaign.sender.CampaignSender`, which gives
it the ledger, the reconciler, its settings, and the two sender steps it needs (sending rows a lookup cleared,
and processing rows another attempt freed).
"""

from __future__ import annotations

import time
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import (
    ALREADY_SENT,
    FAILED,
    SENT,
    UNKNOWN,
    reason_of,
)
from airflow_provider_smsnexus.campaign.reconcile import ABSENT, FOUND
from airflow_provider_smsnexus.utils.times import utcnow

if TYPE_CHECKING:
    import logging
    import threading
    from collections.abc import Callable, Sequence

    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.campaign.ledger_schema import LedgerEntry
    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.campaign.reconcile import Reconciler, Window

#: What a row's clearance is when no lookup cleared it.
_NOT_CLEARED = object()


@dataclass(eq=False)
class RowSettler:
    """
    Settles the open rows of one attempt of a campaign: lookups and waits (see the module documentation).

    :param ledger: the send ledger.
    :param reconciler: the lookups on the server's clock.
    :param campaign_id: the ledger's campaign (scoped to the server's run).
    :param owner: this attempt's lease owner id.
    :param log: where progress goes.
    :param stop: set when the campaign stops: nothing more is looked up or waited for.
    :param abort: stops the campaign with an error (a ledger write that failed).
    :param send: sends rows (those a lookup proved absent are sent again through it).
    :param retry: processes rows again (send, then settle: those another attempt no longer holds).
    :param request_seconds: the longest time a request may take (the hook's).
    :param listing_delay: the listing-delay bound (s) the lookups wait out.
    :param resend_rounds: how often a send the server provably does not hold is sent again.
    :param lease_seconds: the lease on a row.
    :param lease_wait_seconds: how long to wait for rows another live attempt holds.
    """

    ledger: SendLedger
    reconciler: Reconciler
    campaign_id: str
    owner: str
    _: KW_ONLY
    log: logging.Logger
    stop: threading.Event
    abort: Callable[[BaseException], None]
    send: Callable[[Sequence[CampaignRow]], None]
    retry: Callable[[Sequence[CampaignRow]], None]
    request_seconds: float
    listing_delay: float
    resend_rounds: int
    lease_seconds: float
    lease_wait_seconds: float
    # Rows this attempt may send although their ledger row is pending: the lookup of that mark (its
    # ``pending_at``) proved the message absent.
    _cleared: dict[int, datetime | None] = field(default_factory=dict, init=False, repr=False)

    def cleared(self, row: CampaignRow, pending_at: datetime | None) -> bool:
        """Whether a lookup of the pending mark made at ``pending_at`` proved the row's message absent (the
        clearance is used up: a later mark is looked up anew)."""
        return self._cleared.pop(id(row), _NOT_CLEARED) == pending_at

    # -- rows an earlier attempt left pending ------------------------------------------------------------

    def settle_stale(self, rows: Sequence[CampaignRow]) -> None:
        """Look up rows left pending (by a dead or paused attempt, or by this one when its mark took too long)
        once their requests can no longer be unlisted: after the mark's ``send_by``, the request's longest
        time and the listing delay. Resend those the server provably does not hold; never on ambiguous
        evidence."""
        if not rows or self.stop.is_set():
            return
        self.log.info(
            "Campaign %s: %d messages were left pending by an earlier attempt; looking them up",
            self.campaign_id,
            len(rows),
        )
        flight = timedelta(seconds=self.request_seconds + self.listing_delay)
        fences = [self._send_by(row.stale) for row in rows if row.stale is not None]
        self._sleep_until(max(fences) + flight, "the requests of the earlier attempt to be listed")
        windows = []
        for row, send_by in zip(rows, fences):
            entry = row.stale
            assert entry is not None
            server_at, uncertainty = entry.pending_server_at, entry.pending_uncertainty
            if server_at is None or uncertainty is None:  # written by an older version: local time only
                server_at = self.reconciler.server_time(entry.pending_at or utcnow())[0]
                uncertainty = self.reconciler.clock_skew.total_seconds()
            until = server_at + (send_by - (entry.pending_at or send_by)) + flight
            windows.append(
                self.reconciler.window(
                    row.key,
                    server_at,
                    uncertainty,
                    until=until,
                    foreign_ids=entry.foreign_ids,
                    local_at=entry.pending_at,
                )
            )
        self._settle(rows, windows, found_outcome=ALREADY_SENT, last_round=False, stale=True)

    # -- answers lost during this run ----------------------------------------------------------------------

    def settle_unknown(self, rows: Sequence[CampaignRow]) -> None:
        """Settle the rows whose answer was lost in this run: found, resent, or (absent at last) failed."""
        for round_number in range(self.resend_rounds + 1):
            unknown = [row for row in rows if row.outcome == UNKNOWN and row.error_at is not None]
            if not unknown or self.stop.is_set():
                return
            # The listing delay runs from the moment the answer, or its absence, was seen.
            wait_for = max(row.error_at for row in unknown) + timedelta(seconds=self.listing_delay)
            self._sleep_until(wait_for, "the messages of lost answers to be listed")
            self.log.info(
                "Campaign %s: looking up %d messages whose answer was lost", self.campaign_id, len(unknown)
            )
            windows = []
            for row in unknown:
                # An unknown outcome always follows a pending mark (see _record_error).
                mark, server_at = row.pending_at or utcnow(), row.pending_server_at or utcnow()
                flight = ((row.error_at or mark) - mark).total_seconds() + self.listing_delay
                until = server_at + timedelta(seconds=max(flight, 0.0))
                windows.append(
                    self.reconciler.window(
                        row.key,
                        server_at,
                        row.pending_uncertainty or 0.0,
                        until=until,
                        foreign_ids=row.foreign_ids,
                        local_at=row.pending_at,
                    )
                )
            for row in unknown:
                row.error_at = None
            self._settle(unknown, windows, found_outcome=SENT, last_round=round_number == self.resend_rounds)

    def _settle(
        self,
        rows: Sequence[CampaignRow],
        windows: Sequence[Window],
        *,
        found_outcome: str,
        last_round: bool,
        stale: bool = False,
    ) -> None:
        try:
            verdicts = self.reconciler.lookup(windows)
        except Exception as exc:
            self.log.warning(
                "Campaign %s: the lookup failed (%s); not resending", self.campaign_id, reason_of(exc)
            )
            for row in rows:
                before = "left pending by an earlier attempt" if stale else row.reason
                row.settle(UNKNOWN, f"{before}; the lookup failed: {reason_of(exc)}; a rerun settles it")
                self._write(self.ledger.note_unknown, row, reason=row.reason or "")
            return
        resend = []
        for row, verdict in zip(rows, verdicts):
            if verdict.kind == FOUND:
                message = verdict.message or {}
                row.found(
                    found_outcome, message, message_id=message.get("id"), credits=message.get("credits_used")
                )
                if stale:
                    row.reason = "sent by an earlier attempt (found in /api/messages)"
                self._write(self.ledger.mark_sent, row, message_id=row.message_id, credits=row.credits)
            elif verdict.kind == ABSENT and not last_round:
                # Cleared to send under this very mark only: a later mark (another attempt's) is looked up anew.
                self._cleared[id(row)] = row.stale.pending_at if row.stale else row.pending_at
                row.settle(None)
                row.stale = None
                resend.append(row)
            elif verdict.kind == ABSENT:
                row.settle(
                    FAILED,
                    f"not sent: the requests got no answer and SMS Nexus holds no such message (last: {row.reason})",
                )
                self._write(self.ledger.mark_failed, row, reason=row.reason or "")
            else:
                row.settle(UNKNOWN, verdict.reason)
                self._write(self.ledger.note_unknown, row, reason=row.reason or "", ambiguous=True)
        if resend:
            self.log.info(
                "Campaign %s: %d messages provably did not arrive; sending them",
                self.campaign_id,
                len(resend),
            )
            self.send(resend)
            # A resend may meet a newer mark to settle first (another attempt's, or its own past the fence).
            self.settle_stale([row for row in resend if row.stale is not None and row.outcome is None])

    def _write(self, method: Any, row: CampaignRow, **values: Any) -> None:
        try:
            method(self.campaign_id, *row.key, owner=self.owner, **values)
        except Exception as exc:
            self.abort(exc)

    def _send_by(self, entry: LedgerEntry) -> datetime:
        """The latest moment the entry's owner let its request leave: its mark's fence, or for a mark written
        without one (an older version), the mark plus this attempt's lease."""
        if entry.send_by is not None:
            return entry.send_by
        return (entry.pending_at or utcnow()) + timedelta(seconds=self.lease_seconds)

    # -- rows another live attempt holds -----------------------------------------------------------------

    def wait_for_deferred(self, rows: Sequence[CampaignRow]) -> None:
        """Wait for the rows another live attempt holds: process each once it is free, report those still held
        after ``lease_wait_seconds``; rows still waiting when the campaign stops are left open."""
        deadline = time.monotonic() + self.lease_wait_seconds
        while not self.stop.is_set():
            deferred = [row for row in rows if row.deferred and row.outcome is None]
            if not deferred:
                return
            retry = []
            entries = {
                (e.recipient, e.message_hash): e
                for e in self.ledger.entries(self.campaign_id, {row.recipient for row in deferred})
            }
            now = self.ledger.clock()
            for row in deferred:
                entry = entries.get(row.key)
                if entry is None or not entry.leased_by_other(self.owner, now):
                    row.deferred = False
                    retry.append(row)
            if retry:
                self.retry(retry)
                continue
            if time.monotonic() > deadline:
                for row in deferred:
                    holder = entries[row.key].lease_owner
                    row.settle(UNKNOWN, f"not sent by this attempt: another live attempt ({holder}) holds it")
                return
            self.stop.wait(min(1.0, self.lease_seconds / 3))

    def _sleep_until(self, moment: Any, what: str) -> None:
        pause = (moment - utcnow()).total_seconds()
        if pause > 0:
            self.log.info("Campaign %s: waiting %.1fs for %s", self.campaign_id, pause, what)
            time.sleep(pause)
