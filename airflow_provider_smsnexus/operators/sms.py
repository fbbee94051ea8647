"""Operators that send SMS through SMS Nexus: one message, or a whole campaign, each message exactly once.

Both operators record every send in a :class:`~airflow_provider_smsnexus.utils.ledger.SendLedger` before
and after its request, so a retry, a rerun after a killed worker, or an answer lost on the way back never
texts anyone twice: rows already sent are skipped, and rows whose outcome is unknown are looked up in
``/api/messages`` before anything is resent.

.. seealso:: The "Sending SMS", "SMSNexusBulkSendOperator" and "Exactly once" sections of the README.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.campaign import (
    MessageTemplate,
    TemplateRow,
    is_storage_path,
    load_numbers,
    load_table,
    media_url_problem,
    message_hash,
    message_problem,
    opted_out_numbers,
    parse_created_at,
    partition_of,
    raw_text,
    write_report,
)
from airflow_provider_smsnexus.utils.ledger import STATE_PENDING, STATE_SENT, SendLedger
from airflow_provider_smsnexus.utils.phone import is_missing, normalise_phone, normalise_phones
from airflow_provider_smsnexus.utils.segments import estimate_segments

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_smsnexus.utils.ledger import LedgerEntry

__all__ = [
    "CampaignRow",
    "CampaignSender",
    "SMSNexusBulkSendOperator",
    "SMSNexusCampaignError",
    "SMSNexusSendSmsOperator",
    "default_campaign_id",
]

# The outcome of each input row, as the report and the summary count them.
SENT = "sent"
FAILED = "failed"
INVALID = "invalid"
DUPLICATE = "duplicate"
SUPPRESSED = "suppressed"
ALREADY_SENT = "already_sent"
UNKNOWN = "unknown"
DRY_RUN = "dry_run"
NOT_ATTEMPTED = "not_attempted"

#: How far the server's clock may be behind the worker's when looking a message up.
CLOCK_SKEW = timedelta(seconds=60)
#: How long to let the server finish a send answered with a 5xx before looking for it.
SETTLE_SECONDS = 2.0
#: How long to let the server finish a send that got no answer at all (it may still be processing it).
NO_ANSWER_SETTLE_SECONDS = 5.0
#: How many times a message that provably did not arrive is sent again within one run.
RESEND_ROUNDS = 2
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def default_campaign_id(context: Mapping[str, Any], task: BaseOperator, *, partitioned: bool = False) -> str:
    """
    The campaign of a task instance: ``"<dag_id>.<task_id>.<run_id>"``, plus ``".<map_index>"`` when mapped.

    A retry of the same task instance gets the same campaign (and resumes it); a new DAG run gets a new one.
    Mapped partitions of one campaign (``partitioned``) share the campaign: they never share a recipient.

    :param context: the task context.
    :param task: the operator.
    :param partitioned: whether the rows are split into partitions of one campaign.
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or task.dag_id
    task_id = getattr(ti, "task_id", None) or task.task_id
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    if not run_id:
        raise SMSNexusCampaignError("The context has no run_id to name the campaign: set campaign_id")
    campaign = f"{dag_id}.{task_id}.{run_id}"
    map_index = getattr(ti, "map_index", None)
    if isinstance(map_index, int) and map_index >= 0 and not partitioned:
        campaign += f".{map_index}"
    return campaign


# -- one row of a campaign ---------------------------------------------------------------------------------


@dataclass(eq=False)
class CampaignRow:
    """
    One input row of a campaign and what became of it.

    :param row_number: the row's position in the input, from 1.
    :param raw_to: the recipient as given.
    :param recipient: the normalised (E.164) recipient, or None when invalid.
    :param from_number: the normalised sender.
    :param media_url: the media attachment's URL (an MMS), or None.
    :param body: the rendered text.
    :param credits_estimated: the credits the message is estimated to cost.
    :param message_hash: the ledger's hash of sender and text.
    :param outcome: what happened (``sent``, ``failed``, ``invalid``...), None while undecided.
    :param reason: why, for every outcome but ``sent``.
    """

    row_number: int
    raw_to: Any = None
    recipient: str | None = None
    from_number: str | None = None
    media_url: str | None = None
    body: str | None = None
    credits_estimated: int = 0
    message_hash: str | None = None
    outcome: str | None = None
    reason: str | None = None
    message_id: str | None = None
    credits: int | None = None
    #: The server's message dict, once known (from the send's answer or a lookup).
    message: dict[str, Any] | None = None
    #: ``attempts`` of this row's ledger entry when last read, None when it had none (optimistic claim).
    seen_attempts: int | None = None
    pending_at: datetime | None = None
    #: When the send's outcome became unknown (bounds the lookup window).
    error_at: datetime | None = None
    error: BaseException | None = None
    #: Ledger entries of this recipient left pending by an earlier attempt, to settle before sending.
    stale: list[LedgerEntry] = field(default_factory=list)

    def settle(self, outcome: str | None, reason: str | None = None) -> None:
        """Decide the row's outcome."""
        self.outcome, self.reason = outcome, reason

    def found(
        self, outcome: str, message: Mapping[str, Any] | None, *, message_id: Any, credits: Any
    ) -> None:
        """Record that SMS Nexus holds this row's message."""
        self.outcome, self.reason = outcome, None
        self.message = dict(message) if message is not None else None
        self.message_id = None if message_id is None else str(message_id)
        self.credits = _as_int(credits)

    def report_row(self) -> dict[str, Any]:
        """The row of the Parquet report."""
        return {
            "row_number": self.row_number,
            "recipient": self.recipient or raw_text(self.raw_to),
            "outcome": self.outcome or NOT_ATTEMPTED,
            "message_id": self.message_id,
            "credits": self.credits,
            "reason": self.reason,
        }


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """A row's reason from an error: the server's field errors for a 422, else the error's text."""
    if isinstance(exc, SMSNexusValidationError) and exc.errors:
        fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.errors.items())
        return f"rejected by SMS Nexus (422): {fields}"
    if isinstance(exc, SMSNexusError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _e164(value: Any) -> str | None:
    if isinstance(value, str) and _E164.match(value):
        return value
    return normalise_phone(value).number


# -- progress -----------------------------------------------------------------------------------------------


class _Progress:
    """Logs sent / failed / remaining, the rate and the ETA every ``every_rows`` rows or ``every_seconds``."""

    def __init__(
        self, log: logging.Logger, campaign_id: str, every_rows: int = 100, every_seconds: float = 10
    ):
        self.log = log
        self.campaign_id = campaign_id
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._last_done = 0

    def add(self, rows: int) -> None:
        self.total += rows

    def done(self, row: CampaignRow) -> None:
        self.counts[row.outcome or NOT_ATTEMPTED] += 1

    def seconds_to_next(self) -> float:
        return max(0.05, self._last_log + self.every_seconds - time.monotonic())

    def maybe_log(self, *, force: bool = False) -> None:
        done = sum(self.counts.values())
        now = time.monotonic()
        if (
            not force
            and done - self._last_done < self.every_rows
            and now - self._last_log < self.every_seconds
        ):
            return
        self._last_log, self._last_done = now, done
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed * 60
        remaining = self.total - done
        eta = f"{remaining / (done / elapsed):.0f}s" if done else "unknown"
        self.log.info(
            "Campaign %s: %d sent, %d failed, %d unknown, %d remaining of %d; %.1f/min, ETA %s",
            self.campaign_id,
            self.counts[SENT],
            self.counts[FAILED],
            self.counts[UNKNOWN],
            remaining,
            self.total,
            rate,
            eta,
        )


# -- the sending engine -------------------------------------------------------------------------------------


class CampaignSender:
    """
    Sends the rows of one campaign exactly once, through a hook and a ledger; shared by both operators.

    The steps, in the order an operator calls them:

    1. :meth:`load_ledger` marks rows already sent in this campaign, and notes entries left pending;
    2. :meth:`settle_stale` looks those pending entries up in ``/api/messages`` (found: already sent;
       provably absent: to send; lookup failed: ``unknown``, never resent blindly);
    3. :meth:`send` sends the undecided rows, ``max_concurrency`` at a time, each one marked pending
       (committed) before its request and sent/failed (committed) after it;
    4. :meth:`settle_unknown` looks up the rows whose answer was lost during this run, resends those the
       server provably does not hold (at most :data:`RESEND_ROUNDS` times), and marks the rest.

    A 401, 403, 404 or 429 (after the hook's waits), an unreachable server or a ledger failure stops the
    campaign (:attr:`fatal`): rows in flight finish, the others stay ``not_attempted``.

    :param hook: the SMS Nexus hook (its limiter paces the sends; it is shared by the threads).
    :param ledger: the send ledger.
    :param campaign_id: the campaign.
    :param log: where progress goes.
    :param max_concurrency: how many sends may be in flight at once.
    :param clock_skew: how far apart the worker's and the server's clocks may be; widens lookup windows.
    :param settle_seconds: the wait before looking up a send answered with a 5xx.
    :param no_answer_settle_seconds: the wait before looking up a send that got no answer at all.
    :param resend_rounds: how often a send the server provably does not hold is sent again in one run.
    """

    def __init__(
        self,
        hook: SMSNexusHook,
        ledger: SendLedger,
        campaign_id: str,
        *,
        log: logging.Logger,
        max_concurrency: int = 1,
        clock_skew: timedelta = CLOCK_SKEW,
        settle_seconds: float = SETTLE_SECONDS,
        no_answer_settle_seconds: float = NO_ANSWER_SETTLE_SECONDS,
        resend_rounds: int = RESEND_ROUNDS,
    ) -> None:
        self.hook = hook
        self.ledger = ledger
        self.campaign_id = campaign_id
        self.log = log
        self.max_concurrency = max(1, int(max_concurrency))
        self.clock_skew = clock_skew
        self.settle_seconds = settle_seconds
        self.no_answer_settle_seconds = no_answer_settle_seconds
        self.resend_rounds = resend_rounds
        self.fatal: BaseException | None = None
        self.progress = _Progress(log, campaign_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # 1. what the ledger knows

    def load_ledger(self, rows: Sequence[CampaignRow]) -> None:
        """Mark rows already sent in this campaign; note the pending entries each remaining row must settle."""
        candidates = [row for row in rows if row.outcome is None]
        if not candidates:
            return
        by_recipient: dict[str, list[LedgerEntry]] = defaultdict(list)
        for entry in self.ledger.entries(self.campaign_id, {row.recipient for row in candidates}):
            by_recipient[entry.recipient].append(entry)
        changed = 0
        for row in candidates:
            entries = by_recipient.get(row.recipient or "", [])
            sent = [entry for entry in entries if entry.state == STATE_SENT]
            if sent:
                entry = next((e for e in sent if e.message_hash == row.message_hash), sent[0])
                row.found(ALREADY_SENT, None, message_id=entry.message_id, credits=entry.credits)
                if entry.message_hash != row.message_hash:
                    changed += 1
                    row.reason = "a different text was already sent to this recipient in this campaign"
                continue
            own = next((entry for entry in entries if entry.message_hash == row.message_hash), None)
            row.seen_attempts = own.attempts if own is not None else None
            row.stale = [entry for entry in entries if entry.state == STATE_PENDING]
        if changed:
            self.log.warning(
                "%d recipients were already sent a different text in campaign %s: not sending them again",
                changed,
                self.campaign_id,
            )

    # 2. entries left pending by an earlier attempt

    def settle_stale(self, rows: Sequence[CampaignRow]) -> None:
        """Look up the pending entries noted by :meth:`load_ledger`; never resend one the server may hold."""
        stale_rows = [row for row in rows if row.stale and row.outcome is None]
        if not stale_rows:
            return
        pairs = [(row, entry) for row in stale_rows for entry in row.stale]
        self.log.info(
            "Campaign %s: %d messages were left pending by an earlier attempt; looking them up",
            self.campaign_id,
            len(pairs),
        )
        self._wait_for_requests_in_flight([entry for _, entry in pairs])
        windows = [
            (entry.recipient, entry.message_hash, (entry.pending_at or _utcnow()) - self.clock_skew, None)
            for _, entry in pairs
        ]
        try:
            found = self.lookup(windows)
        except Exception as exc:
            self.log.warning("Campaign %s: the lookup failed (%s); not resending", self.campaign_id, exc)
            for row in stale_rows:
                row.settle(UNKNOWN, f"left pending by an earlier attempt; the lookup failed: {_reason(exc)}")
                row.stale = []
            return
        recovered = 0
        for row, entry in pairs:
            message = found.get((entry.recipient, entry.message_hash))
            if message is not None:
                recovered += 1
                self.ledger.mark_sent(
                    self.campaign_id,
                    entry.recipient,
                    entry.message_hash,
                    message_id=message.get("id"),
                    credits=_as_int(message.get("credits_used")),
                )
                row.found(
                    ALREADY_SENT, message, message_id=message.get("id"), credits=message.get("credits_used")
                )
        for row in stale_rows:
            if row.outcome is None:
                for entry in row.stale:
                    if entry.message_hash != row.message_hash:
                        self.ledger.mark_failed(
                            self.campaign_id,
                            entry.recipient,
                            entry.message_hash,
                            reason="never sent: the text for this recipient changed before it was sent",
                        )
            row.stale = []
        self.log.info(
            "Campaign %s: %d of %d pending messages were found sent; the others will be sent now",
            self.campaign_id,
            recovered,
            len(pairs),
        )

    def _wait_for_requests_in_flight(self, entries: Sequence[LedgerEntry]) -> None:
        """
        Let requests of a killed attempt finish before looking for them: a send marked pending moments ago may
        still be inside the server, and "not found yet" must not be read as "not sent".
        """
        marks = [entry.pending_at for entry in entries if entry.pending_at is not None]
        if not marks:
            return
        in_flight_until = max(marks) + timedelta(seconds=self.hook.config.timeout + self.settle_seconds)
        wait = (in_flight_until - _utcnow()).total_seconds()
        if wait > 0:
            self.log.info(
                "Campaign %s: waiting %.1fs for requests of the earlier attempt that may still be in flight",
                self.campaign_id,
                wait,
            )
            time.sleep(wait)

    # 3. sending

    def send(self, rows: Iterable[CampaignRow]) -> None:
        """Send every undecided row, ``max_concurrency`` at a time, logging progress as it goes."""
        todo = [row for row in rows if row.outcome is None]
        if not todo:
            return
        self.progress.add(len(todo))
        # Resolve the hook's lazily built session and limiters once, before threads share them.
        _ = self.hook.session, self.hook.limiters
        queue = iter(todo)
        in_flight: dict[Any, CampaignRow] = {}
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="smsnexus-send") as pool:
            while True:
                while len(in_flight) < self.max_concurrency and not self._stop.is_set():
                    row = next(queue, None)
                    if row is None:
                        break
                    in_flight[pool.submit(self._send_one, row)] = row
                if not in_flight:
                    break
                done, _ = wait(
                    in_flight, timeout=self.progress.seconds_to_next(), return_when=FIRST_COMPLETED
                )
                for future in done:
                    row = in_flight.pop(future)
                    future.result()  # _send_one records every error on the row; anything else is a bug
                    self.progress.done(row)
                self.progress.maybe_log()
        for row in queue:
            row.settle(NOT_ATTEMPTED, f"not sent: the campaign stopped ({_reason(self.fatal)})")
        self.progress.maybe_log(force=True)

    def _send_one(self, row: CampaignRow) -> None:
        """Claim the row in the ledger, send it, record the outcome. Never raises."""
        if self._stop.is_set():
            row.settle(NOT_ATTEMPTED, f"not sent: the campaign stopped ({_reason(self.fatal)})")
            return
        key = (self.campaign_id, row.recipient or "", row.message_hash or "")
        try:
            pending_at = self.ledger.mark_pending(
                *key, row.from_number or "", seen_attempts=row.seen_attempts
            )
        except Exception as exc:
            self._abort(exc)
            row.settle(NOT_ATTEMPTED, f"not sent: the ledger could not record the send ({_reason(exc)})")
            return
        if pending_at is None:
            row.settle(
                UNKNOWN, "not sent by this task: another process changed its ledger row; rerun to settle"
            )
            return
        row.seen_attempts = (row.seen_attempts or 0) + 1
        row.pending_at = pending_at
        try:
            message = self.hook.send_sms(
                row.from_number or "", row.recipient or "", row.body or "", row.media_url
            )
        except Exception as exc:
            self._record_error(row, key, exc)
            return
        row.found(SENT, message, message_id=message.get("id"), credits=message.get("credits_used"))
        try:
            self.ledger.mark_sent(*key, message_id=row.message_id, credits=row.credits)
        except Exception as exc:
            # Sent, but not recorded: the row stays pending in the ledger and a rerun finds the message.
            self._abort(exc)
            row.reason = f"sent, but the ledger could not record it ({_reason(exc)})"

    def _record_error(self, row: CampaignRow, key: tuple[str, str, str], exc: Exception) -> None:
        row.error = exc
        status = exc.status_code if isinstance(exc, SMSNexusError) else None
        outcome_unknown = (
            isinstance(exc, (SMSNexusSendOutcomeUnknownError, SMSNexusResponseError))
            or not isinstance(exc, SMSNexusError)
            or (status is not None and status >= 500)
        )
        try:
            if outcome_unknown:
                row.error_at = _utcnow()
                row.settle(UNKNOWN, f"outcome unknown: {_reason(exc)}")
                self.ledger.note_pending(*key, reason=row.reason or "")
            else:
                row.settle(FAILED, _reason(exc))
                self.ledger.mark_failed(*key, reason=row.reason or "")
        except Exception as ledger_exc:
            self._abort(ledger_exc)
        if not isinstance(exc, SMSNexusError):
            self._abort(exc)  # not an answer of SMS Nexus: a bug or a broken environment, stop here
        elif not outcome_unknown and (status is None or status in (401, 403, 404, 429)):
            # Refused for every row alike (token, account, URL, rate limit) or the server is unreachable.
            self._abort(exc)
        elif isinstance(exc, SMSNexusValidationError) and "credits" in exc.errors:
            self._abort(exc)  # the balance ran out: every further send would be refused the same way

    def _abort(self, exc: BaseException) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal = exc
                self.log.error("Campaign %s stops: %s", self.campaign_id, _reason(exc))
        self._stop.set()

    # 4. answers lost during this run

    def settle_unknown(self, rows: Sequence[CampaignRow]) -> None:
        """Settle the rows whose answer was lost in this run: found, resent, or (absent at last) failed."""
        for round_number in range(self.resend_rounds + 1):
            unknown = [row for row in rows if row.outcome == UNKNOWN and row.error_at is not None]
            if not unknown or self._stop.is_set():
                return
            wait_for = max(row.error_at + timedelta(seconds=self._settle_seconds(row)) for row in unknown)
            pause = (wait_for - _utcnow()).total_seconds()
            if pause > 0:
                time.sleep(pause)
            self.log.info(
                "Campaign %s: looking up %d messages whose answer was lost", self.campaign_id, len(unknown)
            )
            windows = [
                (
                    row.recipient or "",
                    row.message_hash or "",
                    (row.pending_at or _utcnow()) - self.clock_skew,
                    (row.error_at or _utcnow()) + self.clock_skew,
                )
                for row in unknown
            ]
            try:
                found = self.lookup(windows)
            except Exception as exc:
                self.log.warning("Campaign %s: the lookup failed (%s); not resending", self.campaign_id, exc)
                for row in unknown:
                    row.reason = f"{row.reason}; the lookup failed: {_reason(exc)}; a rerun settles it"
                    row.error_at = None
                return
            resend = []
            for row in unknown:
                key = (self.campaign_id, row.recipient or "", row.message_hash or "")
                message = found.get(key[1:])
                if message is not None:
                    row.found(
                        SENT, message, message_id=message.get("id"), credits=message.get("credits_used")
                    )
                    self.ledger.mark_sent(*key, message_id=row.message_id, credits=row.credits)
                elif round_number < self.resend_rounds:
                    row.settle(None)
                    row.error_at = None
                    resend.append(row)
                else:
                    row.settle(
                        FAILED,
                        f"not sent: {row.seen_attempts} attempts got no answer and SMS Nexus holds no such "
                        f"message (last: {row.reason})",
                    )
                    self.ledger.mark_failed(*key, reason=row.reason or "")
            if resend:
                self.log.info(
                    "Campaign %s: %d messages provably did not arrive; sending them again",
                    self.campaign_id,
                    len(resend),
                )
                self.send(resend)

    def _settle_seconds(self, row: CampaignRow) -> float:
        answered = isinstance(row.error, SMSNexusError) and row.error.status_code is not None
        return self.settle_seconds if answered else self.no_answer_settle_seconds

    def lookup(
        self, windows: Sequence[tuple[str, str, datetime, datetime | None]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """
        Find messages in ``/api/messages``: same recipient, same sender and text, created in the window.

        Messages the ledger already records (for any row of any campaign) are never matched again.

        :param windows: ``(recipient, message_hash, start, end)``; ``end`` None means open.
        :return: ``(recipient, message_hash)`` -> the message found.
        """
        wanted: dict[tuple[str, str], list[tuple[datetime, datetime | None]]] = defaultdict(list)
        for recipient, digest, start, end in windows:
            wanted[(recipient, digest)].append((start, end))
        candidates: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for start, end in _merge_windows([(start, end) for *_, start, end in windows]):
            for message in self.hook.iter_messages(direction="outbound", start_date=start, end_date=end):
                body = message.get("body")
                recipient, sender = _e164(message.get("to")), _e164(message.get("from"))
                if not isinstance(body, str) or recipient is None or sender is None:
                    continue
                key = (recipient, message_hash(sender, body))
                if key in wanted:
                    candidates[key].append(message)
        known = self.ledger.known_message_ids(
            str(message.get("id")) for found in candidates.values() for message in found
        )
        result = {}
        for key, messages in candidates.items():
            messages.sort(key=lambda m: parse_created_at(m) or datetime.max.replace(tzinfo=timezone.utc))
            for message in messages:
                created = parse_created_at(message)
                if str(message.get("id")) in known or created is None:
                    continue
                if any(start <= created and (end is None or created < end) for start, end in wanted[key]):
                    result[key] = message
                    break
        return result


def _merge_windows(
    windows: Iterable[tuple[datetime, datetime | None]],
) -> list[tuple[datetime, datetime | None]]:
    """Merge overlapping time windows (``None`` as end means open) so each stretch is read once."""
    merged: list[tuple[datetime, datetime | None]] = []
    for start, end in sorted(windows, key=lambda window: window[0]):
        if merged and (merged[-1][1] is None or start <= merged[-1][1]):
            last_start, last_end = merged[-1]
            merged[-1] = (last_start, None if last_end is None or end is None else max(last_end, end))
        else:
            merged.append((start, end))
    return merged


# -- templated data that Airflow must leave alone ---------------------------------------------------------


class _Verbatim:
    """Holds a callable for a templated field: Airflow would otherwise call it with the Jinja context."""

    __slots__ = ("value",)

    def __init__(self, value: Callable[[], Any]) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<callable {getattr(self.value, '__name__', type(self.value).__name__)}>"


def _unwrap(value: Any) -> Any:
    return value.value() if isinstance(value, _Verbatim) else value


def _keep_callable(value: Any) -> Any:
    if callable(value) and not callable(getattr(type(value), "resolve", None)):
        return _Verbatim(value)
    return value


class _SMSNexusSendBase(BaseOperator):
    """What both operators share: the hook, the ledger, and templating that leaves data alone."""

    ui_color = "#d8f3dc"

    def __init__(
        self,
        *,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        campaign_id: str | None = None,
        ledger_conn_id: str | None = None,
        ledger_table: str = "smsnexus_send_ledger",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.campaign_id = campaign_id
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def open_ledger(self) -> SendLedger:
        """The send ledger: in ``ledger_conn_id``'s database, or the SQLite file under AIRFLOW_HOME."""
        return SendLedger.for_connection(self.ledger_conn_id, table_name=self.ledger_table)

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render strings, storage paths and XCom references; keep data (DataFrames, rows, numbers) as is.

        Recipient data is never a template: a ``{{`` in a customer's name must reach the text unchanged.
        """
        if (
            isinstance(content, str)
            or callable(getattr(type(content), "resolve", None))  # XComArg and friends
            or is_storage_path(content)
        ):
            return super().render_template(content, context, jinja_env, seen_oids)
        return content


class SMSNexusSendSmsOperator(_SMSNexusSendBase):
    """
    Send one SMS (or an MMS with ``media_url``) and return the message SMS Nexus created.

    A retry of the same task instance does not send again: the send is recorded in the send ledger like one
    row of a campaign, and a send whose answer was lost is looked up in ``/api/messages`` first.

    .. seealso:: The "SMSNexusSendSmsOperator" section of the README.

    :param from_number: the sender, a number of the account (E.164). Templated.
    :param to: the recipient (E.164, or national with ``default_region``). Templated.
    :param message: the text, at most 1600 characters. Templated.
    :param media_url: the URL of a media attachment, which makes it an MMS. Templated.
    :param default_region: region code for national numbers in ``to`` (``"US"``); None accepts E.164 only.
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param campaign_id: the ledger's campaign; default ``"<dag_id>.<task_id>.<run_id>"`` (+ map index).
        Templated.
    :param ledger_conn_id: an Airflow SQL connection holding the ledger; default an SQLite file under
        AIRFLOW_HOME.
    :param ledger_table: the ledger's table name.
    """

    template_fields: Sequence[str] = ("from_number", "to", "message", "media_url", "campaign_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"message": "txt"}

    def __init__(
        self,
        *,
        from_number: str,
        to: str,
        message: str,
        media_url: str | None = None,
        default_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.from_number = from_number
        self.to = to
        self.message = message
        self.media_url = media_url
        self.default_region = default_region

    def execute(self, context: Context) -> dict[str, Any]:
        row = self._row()
        campaign_id = self.campaign_id or default_campaign_id(context, self)
        with self.open_ledger() as ledger:
            sender = CampaignSender(self.hook, ledger, campaign_id, log=self.log)
            sender.load_ledger([row])
            sender.settle_stale([row])
            sender.send([row])
            sender.settle_unknown([row])
        if row.outcome == SENT:
            self.log.info("Sent message %s to %s (%s credits)", row.message_id, row.recipient, row.credits)
            return row.message or {}
        if row.outcome == ALREADY_SENT:
            self.log.info(
                "Message %s to %s was already sent by an earlier attempt", row.message_id, row.recipient
            )
            return row.message or {
                "id": _as_int(row.message_id) if (row.message_id or "").isdigit() else row.message_id,
                "from": row.from_number,
                "to": row.recipient,
                "body": row.body,
                "credits_used": row.credits,
            }
        if row.outcome == UNKNOWN:
            raise SMSNexusSendOutcomeUnknownError(
                f"The message to {row.recipient} may or may not have been sent ({row.reason}). It is left "
                "pending in the send ledger: a retry looks it up before sending again.",
                from_number=row.from_number,
                to=row.recipient,
            )
        lost = isinstance(row.error, (SMSNexusSendOutcomeUnknownError, SMSNexusResponseError))
        if isinstance(row.error, SMSNexusError) and not lost:
            raise row.error  # the server's own refusal (422, 401...), with its class
        raise SMSNexusError(f"The message to {row.recipient} was not sent: {row.reason}")

    def _row(self) -> CampaignRow:
        to = normalise_phone(self.to, self.default_region)
        if to.number is None:
            raise SMSNexusCampaignError(f"to={raw_text(self.to)!r} is not a usable phone number: {to.reason}")
        sender = normalise_phone(self.from_number, self.default_region)
        if sender.number is None:
            raise SMSNexusCampaignError(
                f"from_number={raw_text(self.from_number)!r} is not a usable phone number: {sender.reason}"
            )
        body = "" if self.message is None else str(self.message).strip()
        problem = message_problem(body) or (media_url_problem(self.media_url) if self.media_url else None)
        if problem:
            raise SMSNexusCampaignError(f"The message cannot be sent: {problem}")
        return CampaignRow(
            1,
            raw_to=self.to,
            recipient=to.number,
            from_number=sender.number,
            media_url=self.media_url or None,
            body=body,
            message_hash=message_hash(sender.number, body),
        )


class SMSNexusBulkSendOperator(_SMSNexusSendBase):
    """
    Send one personalised text per row of a recipient table, each exactly once, and report every row.

    The steps: read the table; normalise every number (E.164, ``default_region`` for national ones), render
    the template per row, and mark invalid rows with their reason; drop duplicates and suppressed numbers
    (the ``suppression_list`` and, with ``honor_opt_outs``, every number that texted STOP); skip rows the
    ledger already holds as sent and look up those left pending; check before the first send that every
    sender is an active number with the needed capability and that the estimated credits fit the balance;
    send, paced by the hook's limiter; write the report; return the summary.

    .. seealso:: The "SMSNexusBulkSendOperator", "Exactly once" and "Scaling out" sections of the README.

    :param recipients: the table: a pandas DataFrame, a list of dicts, a callable (no arguments) returning
        either, or a path to a CSV or Parquet file (local, or an object-storage URL). Templated (paths and
        XCom references; data is never rendered).
    :param message_template: the text, as a sandboxed Jinja template with StrictUndefined, rendered per row
        with the row as ``row`` (``{{ row.first_name }}``) and the task context (``{{ ds }}``,
        ``{{ params.x }}``). Not one of Airflow's template fields: this operator renders it itself, so the
        per-row placeholders survive. Naming a column the table lacks fails the task before any send.
    :param from_number: the sender for every row (E.164). Templated. Give this or ``from_column``.
    :param from_column: the column that holds each row's sender.
    :param to_column: the column of recipients (read as text, never as floats). Default ``"to"``.
    :param media_url_column: the column of media URLs (rows with one are sent as MMS).
    :param default_region: region code for national numbers (``"US"``); None accepts E.164 only.
    :param suppression_list: numbers never to text: a list, a DataFrame (column ``to_column`` or its only
        column), or a path (CSV, Parquet, or text with one number per line). Templated (paths).
    :param honor_opt_outs: skip every number whose latest keyword text to the account was STOP, STOPALL,
        UNSUBSCRIBE, CANCEL, END or QUIT (START or UNSTOP opts back in). Default True.
    :param dry_run: do everything but send: validate, check, write the report. Default False.
    :param campaign_id: the campaign in the ledger. Default ``"<dag_id>.<task_id>.<run_id>"``, plus the map
        index for a mapped task that is not partitioned. Templated.
    :param ledger_conn_id: an Airflow SQL connection (PostgreSQL...) for the ledger; shared by workers that
        run one campaign. Default: an SQLite file under AIRFLOW_HOME (one machine only).
    :param ledger_table: the ledger's table name.
    :param max_concurrency: sends in flight at once (default 1); the hook's limiter still paces them.
    :param num_partitions: split the rows into this many partitions by a stable hash of the recipient.
    :param partition: the partition this task sends (0-based); map it: ``.expand(partition=range(n))``.
    :param report_path: where to write the Parquet report (local path or object-storage URL). Templated.
    :param max_failure_rate: fail the task (after finishing and writing the report) when more than this
        share of the sends attempted failed. Default 0.05.
    :param mms_credits: the credits one MMS is estimated to cost (the API does not publish it). Default 3.
    :param smsnexus_conn_id: the SMS Nexus connection.
    """

    template_fields: Sequence[str] = (
        "recipients",
        "from_number",
        "campaign_id",
        "report_path",
        "suppression_list",
    )

    def __init__(
        self,
        *,
        recipients: Any,
        message_template: str,
        from_number: str | None = None,
        from_column: str | None = None,
        to_column: str = "to",
        media_url_column: str | None = None,
        default_region: str | None = None,
        suppression_list: Any = None,
        honor_opt_outs: bool = True,
        dry_run: bool = False,
        max_concurrency: int = 1,
        num_partitions: int = 1,
        partition: int = 0,
        report_path: str | None = None,
        max_failure_rate: float = 0.05,
        mms_credits: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (from_number is None) == (from_column is None):
            raise ValueError(
                "Give exactly one of from_number (one sender) and from_column (a sender per row)"
            )
        if int(max_concurrency) < 1:
            raise ValueError("max_concurrency must be 1 or more")
        if not 0 <= float(max_failure_rate) <= 1:
            raise ValueError("max_failure_rate is a share between 0 and 1")
        self.recipients = _keep_callable(recipients)
        self.message_template = message_template
        self.from_number = from_number
        self.from_column = from_column
        self.to_column = to_column
        self.media_url_column = media_url_column
        self.default_region = default_region
        self.suppression_list = _keep_callable(suppression_list)
        self.honor_opt_outs = honor_opt_outs
        self.dry_run = dry_run
        self.max_concurrency = int(max_concurrency)
        self.num_partitions = num_partitions
        self.partition = partition
        self.report_path = report_path
        self.max_failure_rate = float(max_failure_rate)
        self.mms_credits = mms_credits

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_partition()
        campaign_id = self.campaign_id or default_campaign_id(
            context, self, partitioned=self.num_partitions > 1
        )
        rows = self.plan_rows(context)
        sender = None
        credits_estimated = 0
        try:
            with self.open_ledger() as ledger:
                sender = CampaignSender(
                    self.hook, ledger, campaign_id, log=self.log, max_concurrency=self.max_concurrency
                )
                sender.load_ledger(rows)
                if not self.dry_run:
                    sender.settle_stale(rows)
                self.suppress(rows)
                to_send = [row for row in rows if row.outcome is None]
                credits_estimated = sum(row.credits_estimated for row in to_send)
                if to_send:
                    self.preflight(to_send, credits_estimated)
                if self.dry_run:
                    for row in to_send:
                        row.settle(DRY_RUN, "left pending by an earlier attempt" if row.stale else None)
                else:
                    sender.send(to_send)
                    sender.settle_unknown(to_send)
        except BaseException:
            self._write_report(rows, quiet=True)
            raise
        self._write_report(rows)
        summary = self.summarise(campaign_id, rows, credits_estimated)
        self.log.info("Campaign %s finished: %s", campaign_id, summary)
        self._raise_for_outcome(sender, summary)
        return summary

    # -- planning -------------------------------------------------------------------------------------

    def plan_rows(self, context: Context) -> list[CampaignRow]:
        """
        Read, validate, render and deduplicate the rows of this partition; nothing is sent.

        :return: one :class:`CampaignRow` per input row of the partition; rows that cannot be sent already
            carry their outcome (``invalid``, ``duplicate``) and reason.
        """
        frame = load_table(
            _unwrap(self.recipients),
            text_columns=[c for c in (self.to_column, self.from_column, self.media_url_column) if c],
        )
        self._check_columns(frame)
        template = MessageTemplate(
            self.message_template,
            macros=getattr(self.dag, "user_defined_macros", None) if self.has_dag() else None,
            filters=getattr(self.dag, "user_defined_filters", None) if self.has_dag() else None,
        )
        missing = template.missing_columns(frame.columns)
        if missing and len(frame.columns):
            raise SMSNexusCampaignError(
                f"message_template uses column(s) {', '.join(map(repr, missing))} that the recipients do not "
                f"have (columns: {', '.join(map(repr, map(str, frame.columns)))}); nothing was sent"
            )
        if frame.empty:
            self.log.info("The recipient table is empty: nothing to send")
            return []
        fixed_sender = None
        if self.from_number is not None:
            fixed_sender = normalise_phone(self.from_number, self.default_region)
            if fixed_sender.number is None:
                raise SMSNexusCampaignError(
                    f"from_number={raw_text(self.from_number)!r} is not a usable number: {fixed_sender.reason}"
                )
        render_context = dict(context)
        rows = []
        records = frame.to_dict("records")
        phones = normalise_phones(frame[self.to_column], self.default_region)
        for number, (record, phone) in enumerate(zip(records, phones), start=1):
            partition_key = phone.number or f"row:{number}"
            if self.num_partitions > 1 and partition_of(partition_key, self.num_partitions) != self.partition:
                continue
            row = CampaignRow(number, raw_to=record[self.to_column], recipient=phone.number)
            rows.append(row)
            if phone.number is None:
                row.settle(INVALID, phone.reason)
                continue
            self._prepare(
                row, record, fixed_sender.number if fixed_sender else None, template, render_context
            )
        self._mark_duplicates(rows)
        return rows

    def _check_partition(self) -> None:
        if not isinstance(self.num_partitions, int) or self.num_partitions < 1:
            raise SMSNexusCampaignError(
                f"num_partitions must be a whole number >= 1, not {self.num_partitions!r}"
            )
        if not isinstance(self.partition, int) or not 0 <= self.partition < self.num_partitions:
            raise SMSNexusCampaignError(
                f"partition must be between 0 and num_partitions - 1 = {self.num_partitions - 1}, "
                f"not {self.partition!r}"
            )

    def _check_columns(self, frame: Any) -> None:
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise SMSNexusCampaignError(
                f"The recipients have duplicate column names: {', '.join(duplicated)}"
            )
        if not len(frame.columns) and frame.empty:
            return
        needed = {"to_column": self.to_column, "from_column": self.from_column}
        needed["media_url_column"] = self.media_url_column
        absent = [f"{param}={name!r}" for param, name in needed.items() if name and name not in frame.columns]
        if absent:
            raise SMSNexusCampaignError(
                f"The recipients have no column for {', '.join(absent)} "
                f"(columns: {', '.join(map(repr, map(str, frame.columns)))}); nothing was sent"
            )

    def _prepare(
        self,
        row: CampaignRow,
        record: dict[Any, Any],
        fixed_sender: str | None,
        template: MessageTemplate,
        render_context: dict[str, Any],
    ) -> None:
        """Fill in a row with a valid recipient: sender, media URL, text; or mark it invalid."""
        if fixed_sender is None:
            sender = normalise_phone(record[self.from_column], self.default_region)
            if sender.number is None:
                row.settle(INVALID, f"invalid sender ({self.from_column}): {sender.reason}")
                return
            fixed_sender = sender.number
        row.from_number = fixed_sender
        if self.media_url_column:
            media = record[self.media_url_column]
            if not is_missing(media) and str(media).strip():
                row.media_url = str(media).strip()
                problem = media_url_problem(row.media_url)
                if problem:
                    row.settle(INVALID, problem)
                    return
        try:
            body = template.render(render_context, TemplateRow(record))
        except SMSNexusCampaignError:
            raise
        except Exception as exc:
            row.settle(INVALID, f"template error: {type(exc).__name__}: {raw_text(str(exc))}")
            return
        problem = message_problem(body)
        if problem:
            row.settle(INVALID, problem)
            return
        row.body = body
        row.message_hash = message_hash(fixed_sender, body)
        row.credits_estimated = self.mms_credits if row.media_url else estimate_segments(body).segments

    @staticmethod
    def _mark_duplicates(rows: Iterable[CampaignRow]) -> None:
        first: dict[str, int] = {}
        for row in rows:
            if row.outcome is not None or row.recipient is None:
                continue
            if row.recipient in first:
                row.settle(DUPLICATE, f"same number as row {first[row.recipient]}")
            else:
                first[row.recipient] = row.row_number

    # -- suppression and pre-flight -------------------------------------------------------------------------

    def suppress(self, rows: Sequence[CampaignRow]) -> None:
        """Mark rows whose number is on the suppression list or opted out by texting STOP."""
        candidates = [row for row in rows if row.outcome is None]
        if not candidates:
            return
        reasons: dict[str, str] = {}
        if self.honor_opt_outs:
            reasons.update(opted_out_numbers(self.hook.iter_messages(direction="inbound")))
        if self.suppression_list is not None:
            listed = load_numbers(
                _unwrap(self.suppression_list), column=self.to_column, default_region=self.default_region
            )
            reasons.update(dict.fromkeys(listed, "on the suppression list"))
        for row in candidates:
            if row.recipient in reasons:
                row.settle(SUPPRESSED, reasons[row.recipient])

    def preflight(self, rows: Sequence[CampaignRow], credits_estimated: int) -> None:
        """
        Check, before the first send, that every sender can send what its rows need and the credits suffice.

        :raises SMSNexusCampaignError: saying what is wrong; nothing has been sent.
        """
        needs: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            needs[row.from_number or ""]["mms" if row.media_url else "sms"] += 1
        account = {}
        for number in self.hook.get_phone_numbers():
            normalised = _e164(number.get("number")) if isinstance(number, dict) else None
            if normalised:
                account[normalised] = number
        problems = []
        for sender, kinds in sorted(needs.items()):
            info = account.get(sender)
            if info is None:
                problems.append(
                    f"{sender} is not a number of this SMS Nexus account "
                    f"(its numbers: {', '.join(sorted(account)) or 'none'})"
                )
                continue
            status = info.get("status", "active")
            if status != "active":
                problems.append(f"{sender} is {status!r}, not active")
            capabilities = info.get("capabilities") or ["sms"]
            for kind, count in sorted(kinds.items()):
                if kind not in capabilities:
                    problems.append(
                        f"{sender} cannot send {kind.upper()} (capabilities: {', '.join(capabilities)}) "
                        f"but {count} row(s) need it"
                    )
        if problems:
            raise SMSNexusCampaignError("Pre-flight check failed, nothing was sent: " + "; ".join(problems))
        balance = self.hook.get_balance().get("credits")
        if (
            isinstance(balance, (int, float))
            and not isinstance(balance, bool)
            and credits_estimated > balance
        ):
            raise SMSNexusCampaignError(
                f"Pre-flight check failed, nothing was sent: the {len(rows)} messages need about "
                f"{credits_estimated} credits but the balance is {balance}. Top up, or send fewer rows."
            )
        self.log.info(
            "Pre-flight check passed: %d messages, about %d credits of %s",
            len(rows),
            credits_estimated,
            balance,
        )

    # -- the result -------------------------------------------------------------------------------------------

    def summarise(
        self, campaign_id: str, rows: Sequence[CampaignRow], credits_estimated: int
    ) -> dict[str, Any]:
        """The task's XCom value: counts per outcome and credits."""
        counts = Counter(row.outcome for row in rows)
        return {
            "campaign_id": campaign_id,
            "total": len(rows),
            "invalid": counts[INVALID],
            "duplicates": counts[DUPLICATE],
            "suppressed": counts[SUPPRESSED],
            "already_sent": counts[ALREADY_SENT],
            "sent": counts[SENT],
            "failed": counts[FAILED],
            "unknown": counts[UNKNOWN],
            "credits_estimated": credits_estimated,
            "credits_used": sum(row.credits or 0 for row in rows if row.outcome == SENT),
            "dry_run": bool(self.dry_run),
        }

    def _write_report(self, rows: Sequence[CampaignRow], *, quiet: bool = False) -> None:
        """Write the report when ``report_path`` is set; ``quiet`` logs a failure instead of raising it."""
        if not self.report_path:
            return
        try:
            where = write_report([row.report_row() for row in rows], self.report_path)
        except Exception:
            self.log.exception("Could not write the campaign report to %s", self.report_path)
            if not quiet:
                raise
            return
        self.log.info("Wrote the report of %d rows to %s", len(rows), where)

    def _raise_for_outcome(self, sender: CampaignSender | None, summary: dict[str, Any]) -> None:
        if sender is not None and sender.fatal is not None:
            raise sender.fatal
        if summary["unknown"]:
            raise SMSNexusSendOutcomeUnknownError(
                f"{summary['unknown']} of {summary['total']} messages have an unknown outcome and stay pending in "
                "the send ledger. Run the task again: it looks them up in /api/messages before sending any again."
            )
        attempted = summary["sent"] + summary["failed"]
        if attempted and summary["failed"] / attempted > self.max_failure_rate:
            raise SMSNexusError(
                f"{summary['failed']} of {attempted} sends failed ({summary['failed'] / attempted:.1%}), more than "
                f"max_failure_rate={self.max_failure_rate:.1%}. Every row's reason is in the report."
            )
