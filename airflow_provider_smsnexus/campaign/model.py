"""The row model of a campaign: one input row and what became of it, the outcomes, and the engine's defaults.

Everything else in :mod:`airflow_provider_smsnexus.campaign` and both operators take their outcome names and
defaults from here, so the package has no import circle and every fact is defined once.

.. seealso:: "Exactly once" in :doc:`/guides/sending` (the outcome table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusValidationError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_smsnexus.campaign.ledger_schema import LedgerEntry

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
#: Outside its send window now: the task defers until the window opens (never the outcome of a finished run).
WAITING = "waiting"
#: Not sent, and not to be by this campaign: its window never opens (unknown zone with ``unknown_zone="skip"``,
#: zones whose windows never overlap) or opens after the campaign's ``send_deadline``.
OUTSIDE_WINDOW = "outside_window"
OUTCOMES = (
    SENT,
    FAILED,
    INVALID,
    DUPLICATE,
    SUPPRESSED,
    ALREADY_SENT,
    UNKNOWN,
    DRY_RUN,
    NOT_ATTEMPTED,
    WAITING,
    OUTSIDE_WINDOW,
)

#: The lookup's clock uncertainty while no ``Date`` header of the server has been seen (the operators'
#: ``clock_skew`` default); once one has, the measured uncertainty is used instead.
CLOCK_SKEW = timedelta(seconds=60)
#: The share of its lease an owner may spend between starting its pending mark and letting the request leave.
#: The rest (a third) covers the workers' clocks disagreeing, as the lease itself assumes.
SEND_CUTOFF_SHARE = 2 / 3
#: How many times a message that provably did not arrive is sent again within one run.
RESEND_ROUNDS = 2
#: How long a claim on a ledger row lives unless its owner renews it (it renews every third of it).
LEASE_SECONDS = 30.0
#: How long to wait for rows that another live attempt holds before reporting them ``unknown``.
LEASE_WAIT_SECONDS = 600.0
#: The resolution of the API's ``created_at`` (whole seconds, truncated).
CREATED_AT_RESOLUTION = timedelta(seconds=1)


def as_int(value: Any) -> int | None:
    """An integer from an answer's field, or None when it is missing or not a number."""
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def reason_of(exc: BaseException | None) -> str:
    """A row's reason from an error: the server's field errors for a 422, else the error's text."""
    if exc is None:
        return "no reason recorded"
    if isinstance(exc, SMSNexusValidationError) and exc.errors:
        fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.errors.items())
        return f"rejected by SMS Nexus (422): {fields}"
    if isinstance(exc, SMSNexusError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def outcome_unknown(exc: BaseException, *, marked: bool) -> bool:
    """Whether a send that raised ``exc`` may have created the message: its request may have left (``marked``:
    its pending mark was written) and the error is a lost or unreadable answer, a 5xx, or not SMS Nexus's."""
    status = exc.status_code if isinstance(exc, SMSNexusError) else None
    return marked and (
        isinstance(exc, (SMSNexusSendOutcomeUnknownError, SMSNexusResponseError))
        or not isinstance(exc, SMSNexusError)
        or (status is not None and status >= 500)
    )


def stops_campaign(exc: BaseException, *, unknown: bool) -> bool:
    """Whether a send's error stops the whole campaign (every further send would meet it too)."""
    if not isinstance(exc, SMSNexusError):
        return True  # not an answer of SMS Nexus: a bug or a broken environment
    if not unknown and (exc.status_code is None or exc.status_code in (401, 403, 404, 429)):
        return True  # refused for every row alike (token, account, URL, rate limit), or unreachable
    # The balance ran out: every further send would be refused the same way.
    return isinstance(exc, SMSNexusValidationError) and "credits" in exc.errors


def default_campaign_id(context: Mapping[str, Any], task: Any, *, partitioned: bool = False) -> str:
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
    #: This attempt's latest pending mark: local time, the server-time estimate, and its uncertainty (s).
    pending_at: datetime | None = None
    pending_server_at: datetime | None = None
    pending_uncertainty: float | None = None
    #: The latest pending mark's fence: the moment before which the request left, or never (local time).
    send_by: datetime | None = None
    #: When the send's outcome became unknown (starts the settle wait before the lookup).
    error_at: datetime | None = None
    error: BaseException | None = None
    #: The ledger entry as this attempt claimed it, when an earlier attempt left it pending (to settle first).
    stale: LedgerEntry | None = None
    #: Another live attempt held the row's lease when this one tried to claim it.
    deferred: bool = False
    #: Ids of messages with this row's text to this recipient that existed before this attempt's send.
    foreign_ids: set[str] = field(default_factory=set)
    #: The row's value in the send window's ``zone_column`` (None without one), and its time zones.
    zone_value: Any = None
    zones: tuple[str, ...] = ()
    #: This machine's moment after which the row's request may not leave (its send window closes); None: any.
    send_until: datetime | None = None

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
        self.credits = as_int(credits)

    @property
    def key(self) -> tuple[str, str]:
        """``(recipient, message_hash)``: the row's identity within its campaign."""
        return self.recipient or "", self.message_hash or ""

    def report_row(self) -> dict[str, Any]:
        """The row of the Parquet report."""
        from airflow_provider_smsnexus.campaign.render import raw_text

        return {
            "row_number": self.row_number,
            "recipient": self.recipient or raw_text(self.raw_to),
            "outcome": self.outcome or NOT_ATTEMPTED,
            "message_id": self.message_id,
            "credits": self.credits,
            "reason": self.reason,
            "zones": ",".join(self.zones) or None,
            "local_time": self.local_time(),
        }

    def local_time(self) -> str | None:
        """When the message was created, in the recipient's (first) time zone: from the server's answer, or
        for a row an earlier run sent, the server-time estimate of its pending mark."""
        from airflow_provider_smsnexus.campaign.send_timing import local_moment
        from airflow_provider_smsnexus.utils.times import as_utc

        created = (self.message or {}).get("created_at") or self.pending_server_at
        if not self.zones or created is None or self.outcome not in (SENT, ALREADY_SENT):
            return None
        return local_moment(self.zones[0], as_utc(created, "created_at"))
