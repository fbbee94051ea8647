"""The sender: sends the rows of one campaign exactly once, through the hook and the leased ledger.

Per row: claim a lease (one attempt at a time per row); right before the request leaves, the fenced pending
mark (``before_send``: durable before the request leaves; the marks of requests about to leave at the same
moment share one commit); after the answer, a fenced ``sent`` or ``failed``. Claims are taken in batches of
the rows the limiter lets leave within about a second (a claim is not a pending mark), and ``sent`` marks are
committed in groups (a crash before the group's commit leaves those rows pending: a rerun settles them by
lookup; no unsent row is ever marked sent). With ``max_concurrency=1`` rows are sent in the calling thread.
A row an earlier attempt left pending is claimed, then settled by lookup once its request can no longer be
in flight; an answer lost in this run is looked up, and only a message the server provably does not hold is
sent again. Rows another live attempt holds are waited for, never touched (nor looked up).

.. seealso:: "Exactly once" in :doc:`/guides/sending`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.lease import (
    Heartbeat,
    LeaseLost,
    SendCutoffPassed,
    account_fingerprint,
    lease_owner,
    mark_pending_fenced,
    run_scoped,
)
from airflow_provider_smsnexus.campaign.ledger_schema import STATE_PENDING, STATE_SENT, STATE_UNKNOWN
from airflow_provider_smsnexus.campaign.model import (
    ALREADY_SENT,
    CLOCK_SKEW,
    FAILED,
    LEASE_SECONDS,
    LEASE_WAIT_SECONDS,
    NOT_ATTEMPTED,
    RESEND_ROUNDS,
    SEND_CUTOFF_SHARE,
    SENT,
    UNKNOWN,
    WAITING,
    outcome_unknown,
    reason_of,
    stops_campaign,
)
from airflow_provider_smsnexus.campaign.reconcile import Reconciler
from airflow_provider_smsnexus.campaign.report import Progress
from airflow_provider_smsnexus.campaign.resume import apply_ledger
from airflow_provider_smsnexus.campaign.settle import RowSettler
from airflow_provider_smsnexus.campaign.windowing import WindowClosed
from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.utils.times import utcnow

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Sequence
    from datetime import timedelta

    from airflow_provider_smsnexus.campaign.lease import SendAttempt
    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.campaign.ledger_schema import LedgerEntry
    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook


#: The most rows claimed in one transaction, and the seconds of sending (at the limiter's pace) claimed ahead.
CLAIM_BATCH = 100
CLAIM_AHEAD_SECONDS = 1.0
#: ``sent`` marks committed together: at most this many, none waiting longer than this many seconds.
SENT_GROUP = 100
SENT_GROUP_SECONDS = 1.0


class CampaignSender:
    """
    Sends the rows of one campaign exactly once (see the module documentation); shared by both operators.

    Call :meth:`load_ledger` (marks rows already sent; reads only), then :meth:`send_all`. Rows whose outcome
    stays open after their send are settled by the :class:`~airflow_provider_smsnexus.campaign.settle.RowSettler`
    it holds.

    A 401, 403, 404 or 429 (after the hook's waits), an unreachable server or a ledger failure stops the
    campaign (:attr:`fatal`): rows in flight finish, the others stay ``not_attempted``.

    :param hook: the SMS Nexus hook (its limiter paces the sends; it is shared by the threads).
    :param ledger: the send ledger.
    :param campaign_id: the campaign.
    :param log: where progress goes.
    :param owner: this attempt's lease owner id (see :func:`~airflow_provider_smsnexus.campaign.lease.lease_owner`).
    :param max_concurrency: how many sends may be in flight at once.
    :param clock_skew: the lookup's clock uncertainty while no ``Date`` header of the server was seen.
    :param listing_delay: the listing-delay bound (s): a message the server created is listed by
        ``/api/messages`` within it of the moment its send's answer, or the absence of one, was seen; lookups
        wait it out, and only a message absent then is sent again. Default: the connection's
        ``listing_delay`` extra.
    :param resend_rounds: how often a send the server provably does not hold is sent again in one run.
    :param lease_seconds: the lease on a row; renewed every third of it while this attempt lives.
    :param lease_wait_seconds: how long to wait for rows another live attempt holds before reporting them.
    """

    def __init__(
        self,
        hook: SMSNexusHook,
        ledger: SendLedger,
        campaign_id: str,
        *,
        log: logging.Logger,
        owner: str | None = None,
        max_concurrency: int = 1,
        clock_skew: timedelta = CLOCK_SKEW,
        listing_delay: float | None = None,
        resend_rounds: int = RESEND_ROUNDS,
        lease_seconds: float = LEASE_SECONDS,
        lease_wait_seconds: float = LEASE_WAIT_SECONDS,
    ) -> None:
        self.hook = hook
        self.ledger = ledger
        self.campaign_id = campaign_id
        self.log = log
        self.owner = owner or lease_owner()
        self.max_concurrency = max(1, int(max_concurrency))
        self.listing_delay = hook.config.listing_delay if listing_delay is None else float(listing_delay)
        self.resend_rounds = resend_rounds
        self.lease_seconds = lease_seconds
        self.lease_wait_seconds = lease_wait_seconds
        self.account = account_fingerprint(hook.config.base_url, hook.config.token)
        self.reconciler = Reconciler(hook, ledger, self.account, clock_skew=clock_skew)
        self.fatal: BaseException | None = None
        self.progress = Progress(log, campaign_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # Rows sent whose ``sent`` mark waits for the next grouped commit (until then their ledger row is pending).
        self._unrecorded: list[CampaignRow] = []
        self._unrecorded_since = 0.0
        self._settler: RowSettler | None = None

    @classmethod
    def for_attempt(
        cls,
        hook: SMSNexusHook,
        ledger: SendLedger,
        campaign_id: str,
        attempt: SendAttempt,
        *,
        log: logging.Logger,
        max_concurrency: int = 1,
    ) -> CampaignSender:
        """The sender of one attempt: its leases owned by ``attempt.owner``, on the attempt's lease terms."""
        return cls(
            hook, ledger, campaign_id, log=log, owner=attempt.owner, clock_skew=attempt.clock_skew,
            lease_seconds=attempt.lease_seconds, max_concurrency=max_concurrency,
        )  # fmt: skip

    # -- what the ledger knows -------------------------------------------------------------------------

    def load_ledger(self, rows: Sequence[CampaignRow]) -> None:
        """Mark rows already sent (or left ``unknown``) in this campaign; note those left pending. Reads only."""
        self._settler_for_run()
        apply_ledger(self.ledger, self.campaign_id, rows, self.log, account=self.account)

    def _settler_for_run(self) -> RowSettler:
        """The settler of this attempt's open rows, built once the ledger's campaign is scoped to the server run
        that answers (see :func:`~airflow_provider_smsnexus.campaign.lease.run_scoped`: before the ledger is
        read)."""
        if self._settler is None:
            self.campaign_id = run_scoped(self.campaign_id, self.hook)
            self._settler = RowSettler(
                self.ledger,
                self.reconciler,
                self.campaign_id,
                self.owner,
                log=self.log,
                stop=self._stop,
                abort=self._abort,
                send=self.send,
                request_seconds=float(self.hook.config.request_seconds),
                retry=self._process,
                listing_delay=self.listing_delay,
                resend_rounds=self.resend_rounds,
                lease_seconds=self.lease_seconds,
                lease_wait_seconds=self.lease_wait_seconds,
            )
        return self._settler

    # -- the whole send --------------------------------------------------------------------------------

    def send_all(self, rows: Sequence[CampaignRow]) -> None:
        """Send every undecided row exactly once, settle what the lookups can, wait for rows others hold.

        Leases are renewed by a heartbeat meanwhile, and released at the end.
        """
        todo = [row for row in rows if row.outcome is None]
        if not todo:
            return
        settler = self._settler_for_run()
        with Heartbeat(self.ledger, self.owner, self.lease_seconds):
            try:
                self._note_existing(todo)
                self._process(todo)
                settler.wait_for_deferred(todo)
                self._stopped([row for row in todo if row.deferred and row.outcome is None])
            finally:
                try:
                    self.ledger.release(self.owner)
                except Exception as exc:  # the leases then simply expire
                    self.log.warning("Could not release the leases of %s: %s", self.owner, reason_of(exc))

    def _process(self, rows: Sequence[CampaignRow]) -> None:
        """Send the rows, then settle those left open: pending marks of earlier attempts, lost answers."""
        settler = self._settler_for_run()
        self.send(rows)
        # Rows left pending whose lease this attempt now holds (a row another attempt holds is deferred).
        settler.settle_stale(
            [row for row in rows if row.stale is not None and row.outcome is None and not row.deferred]
        )
        settler.settle_unknown(rows)

    def _stopped(self, rows: Iterable[CampaignRow]) -> None:
        """Settle rows this attempt will not send because the campaign stopped."""
        for row in rows:
            row.settle(NOT_ATTEMPTED, f"not sent: the campaign stopped ({reason_of(self.fatal)})")

    def _note_existing(self, rows: Sequence[CampaignRow]) -> None:
        """List the messages that already carry a row's text, so that no lookup takes one for this attempt's."""
        try:
            existing = self.reconciler.existing([row.key for row in rows])
        except SMSNexusError as exc:
            self._abort(exc)
            for row in rows:
                row.settle(
                    NOT_ATTEMPTED, f"not sent: could not list recent messages first ({reason_of(exc)})"
                )
            return
        for row in rows:
            row.foreign_ids |= existing.get(row.key, set())

    # -- sending ---------------------------------------------------------------------------------------

    def send(self, rows: Iterable[CampaignRow]) -> None:
        """Send every undecided row, ``max_concurrency`` at a time, logging progress as it goes.

        A row an earlier attempt left pending is claimed like the others but not sent: once this attempt
        holds its lease, the settler's ``settle_stale`` looks it up (only the lease holder looks a row up).
        """
        todo = [row for row in rows if row.outcome is None and not row.deferred]
        if not todo:
            return
        self.progress.add(len(todo))
        self.hook.sends_per_second()  # resolves the lazy limiters before threads share them (the pool builds itself)
        started = self._send_inline(todo) if self.max_concurrency == 1 else self._send_pooled(todo)
        self._record_sent(force=True)
        self._stopped(todo[started:])
        self.progress.maybe_log(force=True)

    def _send_inline(self, todo: Sequence[CampaignRow]) -> int:
        """Send one row at a time in this thread (no hand-off to a sending thread); return how many started."""
        claims: dict[int, Any] = {}
        for position, row in enumerate(todo):
            if self._stop.is_set():
                return position
            if id(row) not in claims:
                self._claim(todo[position : position + self._claim_ahead()], claims)
            self._send_one(row, claims.pop(id(row)))
            self.progress.done(row)
            self._record_sent()
            self.progress.maybe_log()
        return len(todo)

    def _send_pooled(self, todo: Sequence[CampaignRow]) -> int:
        """Send ``max_concurrency`` rows at a time from a pool of threads; return how many started."""
        claims: dict[int, Any] = {}
        position = 0
        in_flight: dict[Any, CampaignRow] = {}
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="smsnexus-send") as pool:
            while True:
                while (
                    len(in_flight) < self.max_concurrency and not self._stop.is_set() and position < len(todo)
                ):
                    row = todo[position]
                    if id(row) not in claims:
                        self._claim(todo[position : position + self._claim_ahead()], claims)
                    position += 1
                    in_flight[pool.submit(self._send_one, row, claims.pop(id(row)))] = row
                if not in_flight:
                    break
                timeout = min(self.progress.seconds_to_next(), SENT_GROUP_SECONDS)
                done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    row = in_flight.pop(future)
                    future.result()  # _send_one records every error on the row; anything else is a bug
                    self.progress.done(row)
                self._record_sent()
                self.progress.maybe_log()
        return position

    def _claim_ahead(self) -> int:
        """How many rows to claim at once: those the send limiter lets leave in about a second."""
        per_second = self.hook.sends_per_second()
        return max(self.max_concurrency, min(CLAIM_BATCH, int(per_second * CLAIM_AHEAD_SECONDS)))

    def _claim(self, rows: Sequence[CampaignRow], claims: dict[int, Any]) -> None:
        """Claim the leases of ``rows`` in one transaction; note each row's entry (or the ledger's error)."""
        try:
            entries: Sequence[Any] = self.ledger.claim_many(
                self.campaign_id,
                [(*row.key, row.from_number or "") for row in rows],
                owner=self.owner,
                account=self.account,
                lease_seconds=self.lease_seconds,
            )
        except Exception as exc:
            entries = [exc] * len(rows)
        for row, entry in zip(rows, entries):
            claims[id(row)] = entry

    def _record_sent(self, *, force: bool = False) -> None:
        """Commit the waiting ``sent`` marks as one group: when forced, when the group is full, or when it has
        waited long enough."""
        with self._lock:
            if not self._unrecorded or (
                not force
                and len(self._unrecorded) < SENT_GROUP
                and time.monotonic() - self._unrecorded_since < SENT_GROUP_SECONDS
            ):
                return
            rows, self._unrecorded = self._unrecorded, []
        try:
            recorded = self.ledger.mark_sent_many(
                self.campaign_id,
                [(*row.key, row.message_id, row.credits) for row in rows],
                owner=self.owner,
            )
        except Exception as exc:
            # Sent, but not recorded: the rows stay pending in the ledger and a rerun finds the messages.
            self._abort(exc)
            for row in rows:
                row.reason = f"sent, but the ledger could not record it ({reason_of(exc)})"
            return
        for row, ok in zip(rows, recorded):
            if not ok:
                # We hold the server's answer, so the row is ``sent``; the lease's new owner settles its ledger
                # row by lookup (it finds this message, created after the pending mark).
                row.reason = (
                    "sent by this attempt, but its lease had been taken over: the new owner records it"
                )
                self.log.warning(
                    "Campaign %s: sent %s after losing its lease", self.campaign_id, row.recipient
                )

    def _send_one(self, row: CampaignRow, entry: LedgerEntry | Exception | None) -> None:
        """Send a row under the lease claimed for it (``entry``: None when not claimed, or the ledger's error),
        record the outcome. Never raises."""
        if self._stop.is_set():
            self._stopped([row])
            return
        try:
            if isinstance(entry, Exception):
                raise entry
            if entry is None:
                self._not_claimed(row)
                return
        except Exception as exc:
            self._abort(exc)
            row.settle(NOT_ATTEMPTED, f"not sent: the ledger could not record the claim ({reason_of(exc)})")
            return
        if entry.state == STATE_PENDING and not self._settler_for_run().cleared(row, entry.pending_at):
            row.stale = entry  # an earlier mark's request may have left: settle it by lookup first
            return
        row.stale = None  # no longer pending (e.g. failed since): nothing to look up
        self._send(row)

    def _not_claimed(self, row: CampaignRow) -> None:
        entry = self.ledger.get(self.campaign_id, *row.key)
        if entry is not None and entry.state == STATE_SENT:
            row.found(ALREADY_SENT, None, message_id=entry.message_id, credits=entry.credits)
            row.reason = "sent by another attempt of this campaign"
        elif entry is not None and entry.state == STATE_UNKNOWN:
            row.settle(UNKNOWN, entry.reason or "left unknown by another attempt")
        else:
            row.deferred = True  # another live attempt holds it: wait for it (never touch it, nor look it up)
            row.stale = None  # if it is still pending once free, the claim that takes it says so

    def _send(self, row: CampaignRow) -> None:
        try:
            fence = (self.ledger, self.reconciler, self.campaign_id, row)
            message = self._call_send(
                row, partial(mark_pending_fenced, *fence, owner=self.owner, lease_seconds=self.lease_seconds)
            )
        except SendCutoffPassed as passed:
            self._give_up_send(row, passed.spent)
            return
        except WindowClosed:
            row.settle(WAITING, "its send window closed before its turn came; it waits for the next opening")
            return
        except LeaseLost:
            row.settle(
                UNKNOWN,
                "not sent by this attempt: its lease on the row was taken over before the request left "
                "(the attempt that holds it now settles it)",
            )
            self.log.warning(
                "Campaign %s: lost the lease on %s before sending it", self.campaign_id, row.recipient
            )
            return
        except Exception as exc:
            self._record_error(row, exc)
            return
        row.found(SENT, message, message_id=message.get("id"), credits=message.get("credits_used"))
        with self._lock:  # the ``sent`` mark joins the next grouped commit (see _record_sent)
            if not self._unrecorded:
                self._unrecorded_since = time.monotonic()
            self._unrecorded.append(row)

    def _give_up_send(self, row: CampaignRow, spent: float) -> None:
        """Nothing left for a row whose fence passed: settle its mark by lookup like an earlier attempt's."""
        self.log.warning(
            "Campaign %s: %.1f s passed between the pending mark of %s and its request (the lease allows "
            "%.1f s): not sending it now; it is looked up once no request can still be unlisted",
            self.campaign_id, spent, row.recipient, self.lease_seconds * SEND_CUTOFF_SHARE,
        )  # fmt: skip
        try:
            row.stale = self.ledger.get(self.campaign_id, *row.key)
        except Exception as exc:
            self._abort(exc)
        if row.stale is None or row.stale.state != STATE_PENDING:
            row.settle(UNKNOWN, "not sent by this attempt: its pending mark outlived the lease's fence")

    def _call_send(self, row: CampaignRow, mark: Callable[[], None]) -> dict[str, Any]:
        """Send one row; ``mark`` (its fenced pending mark) runs here, in the sender's own frame, right before
        each attempt's request leaves: the hook hands control back instead of calling up into the campaign."""
        attempts = self.hook.send_sms_attempts(
            row.from_number or "", row.recipient or "", row.body or "", row.media_url
        )
        while True:
            try:
                next(attempts)
            except StopIteration as done:
                return done.value
            try:
                if row.send_until is not None and utcnow() > row.send_until:
                    raise WindowClosed(row.send_until)
                mark()
            except BaseException as exc:
                attempts.throw(exc)  # the hook gives the request's place in the budget back, and raises exc

    def _record_error(self, row: CampaignRow, exc: Exception) -> None:
        row.error = exc
        unknown = outcome_unknown(exc, marked=row.pending_at is not None)
        try:
            if unknown:
                row.error_at = utcnow()
                row.settle(UNKNOWN, f"outcome unknown: {reason_of(exc)}")
                self.ledger.note_unknown(
                    self.campaign_id, *row.key, owner=self.owner, reason=row.reason or ""
                )
            else:
                row.settle(FAILED, reason_of(exc))
                self.ledger.mark_failed(self.campaign_id, *row.key, owner=self.owner, reason=row.reason or "")
        except Exception as ledger_exc:
            self._abort(ledger_exc)
        if stops_campaign(exc, unknown=unknown):
            self._abort(exc)

    def _abort(self, exc: BaseException) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal = exc
                self.log.error("Campaign %s stops: %s", self.campaign_id, reason_of(exc))
        self._stop.set()
