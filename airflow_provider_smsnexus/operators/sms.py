"""Operators that send SMS through SMS Nexus: one message, or a whole campaign, each message exactly once.

Both are thin: the engine is :mod:`airflow_provider_smsnexus.campaign` (planning, pre-flight checks, the
leased send ledger, the sender and its lookups, the report).

.. seealso:: The "Sending SMS", "SMSNexusBulkSendOperator" and "Exactly once" sections of the README.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus.campaign.lease import lease_owner
from airflow_provider_smsnexus.campaign.ledger import DEFAULT_TABLE_NAME, SendLedger
from airflow_provider_smsnexus.campaign.model import (
    ALREADY_SENT,
    CLOCK_SKEW,
    DRY_RUN,
    LEASE_SECONDS,
    SENT,
    UNKNOWN,
    CampaignRow,
    default_campaign_id,
)
from airflow_provider_smsnexus.campaign.render import (
    media_url_problem,
    message_hash,
    message_problem,
    raw_text,
)
from airflow_provider_smsnexus.campaign.sender import CampaignSender, as_message
from airflow_provider_smsnexus.campaign.sources import is_storage_path
from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.phone import normalise_phone

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

__all__ = [
    "CampaignRow",
    "CampaignSender",
    "SMSNexusBulkSendOperator",
    "SMSNexusCampaignError",
    "SMSNexusSendSmsOperator",
    "default_campaign_id",
]


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
    """What both operators share: the hook, the ledger, the sender, and templating that leaves data alone."""

    ui_color = "#d8f3dc"

    def __init__(
        self,
        *,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        campaign_id: str | None = None,
        ledger_conn_id: str | None = None,
        ledger_table: str = DEFAULT_TABLE_NAME,
        clock_skew: timedelta | float = CLOCK_SKEW,
        lease_seconds: float = LEASE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.campaign_id = campaign_id
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.clock_skew = clock_skew if isinstance(clock_skew, timedelta) else timedelta(seconds=clock_skew)
        if self.clock_skew < timedelta(0) or float(lease_seconds) <= 0:
            raise ValueError("clock_skew must not be negative, and lease_seconds must be positive")
        self.lease_seconds = float(lease_seconds)

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def open_ledger(self) -> SendLedger:
        """The send ledger: in ``ledger_conn_id``'s database, or the SQLite file under AIRFLOW_HOME."""
        return SendLedger.for_connection(self.ledger_conn_id, table_name=self.ledger_table)

    def make_sender(
        self, ledger: SendLedger, campaign_id: str, context: Context, **kwargs: Any
    ) -> CampaignSender:
        """The campaign engine for this attempt, its leases owned by this task instance's try."""
        return CampaignSender(
            self.hook,
            ledger,
            campaign_id,
            log=self.log,
            owner=lease_owner(context),
            clock_skew=self.clock_skew,
            lease_seconds=self.lease_seconds,
            **kwargs,
        )

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


_SHARED_PARAMS = """
    :param smsnexus_conn_id: the SMS Nexus connection.
    :param campaign_id: the ledger's campaign. Templated.
    :param ledger_conn_id: an Airflow SQL connection (PostgreSQL...) holding the ledger; shared by workers
        that run one campaign. Default: an SQLite file under AIRFLOW_HOME (one machine only).
    :param ledger_table: the ledger's table name.
    :param clock_skew: the lookup's uncertainty about the server's clock while no ``Date`` header of the
        server was seen (once one was, the measured uncertainty is used). Default 60 s.
    :param lease_seconds: how long a claim on a ledger row lives unless renewed (renewed every third of it
        while the task runs); a dead attempt's rows are taken over after it. Default 30 s.
"""


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
    """

    __doc__ = (__doc__ or "") + _SHARED_PARAMS
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
        row = self.make_row()
        campaign_id = self.campaign_id or default_campaign_id(context, self)
        with self.open_ledger() as ledger:
            sender = self.make_sender(ledger, campaign_id, context)
            sender.load_ledger([row])
            sender.send_all([row])
        return self.result(row)

    def make_row(self) -> CampaignRow:
        """The message as a campaign row; raises :class:`SMSNexusCampaignError` for bad input."""
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

    def result(self, row: CampaignRow) -> dict[str, Any]:
        """The created message, or the error that says why there is none."""
        if row.outcome == SENT:
            self.log.info("Sent message %s to %s (%s credits)", row.message_id, row.recipient, row.credits)
            return row.message or {}
        if row.outcome == ALREADY_SENT:
            self.log.info(
                "Message %s to %s was already sent by an earlier attempt", row.message_id, row.recipient
            )
            return as_message(row)
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


class SMSNexusBulkSendOperator(_SMSNexusSendBase):
    """
    Send one personalised text per row of a recipient table, each exactly once, and report every row.

    The steps: plan the rows (normalise every number, render the template per row, mark invalid rows and
    duplicates with their reason); skip rows the ledger holds as sent; drop suppressed numbers (the
    ``suppression_list`` and, with ``honor_opt_outs``, every number that texted STOP); check before the first
    send that every sender is an active number with the needed capability and that the estimated credits fit
    the balance; send (leased ledger rows, paced by the hook's limiter, lost answers looked up); write the
    report; return the summary.

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
    :param max_concurrency: sends in flight at once (default 1); the hook's limiter still paces them.
    :param num_partitions: split the rows into this many partitions by a stable hash of the recipient.
    :param partition: the partition this task sends (0-based); map it: ``.expand(partition=range(n))``.
    :param report_path: where to write the Parquet report (local path or object-storage URL). Templated.
    :param max_failure_rate: fail the task (after finishing and writing the report) when more than this
        share of the sends attempted failed. Default 0.05.
    :param mms_credits: the credits one MMS is estimated to cost (the API does not publish it). Default 3.

    The campaign defaults to ``"<dag_id>.<task_id>.<run_id>"``, plus the map index for a mapped task that
    is not partitioned.
    """

    __doc__ = (__doc__ or "") + _SHARED_PARAMS
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
        from airflow_provider_smsnexus.campaign.report import raise_for_outcome, summarise

        self.row_spec().check()
        campaign_id = self.campaign_id or default_campaign_id(
            context, self, partitioned=self.num_partitions > 1
        )
        rows = self.plan_rows(context)
        sender, credits_estimated = None, 0
        try:
            with self.open_ledger() as ledger:
                sender = self.make_sender(ledger, campaign_id, context, max_concurrency=self.max_concurrency)
                sender.load_ledger(rows)
                self.suppress(rows)
                to_send = [row for row in rows if row.outcome is None]
                credits_estimated = sum(row.credits_estimated for row in to_send)
                if to_send:
                    self.preflight(to_send, credits_estimated)
                if self.dry_run:
                    for row in to_send:
                        row.settle(DRY_RUN, "left pending by an earlier attempt" if row.stale else None)
                else:
                    sender.send_all(to_send)
        except BaseException:
            self._write_report(rows, quiet=True)
            raise
        self._write_report(rows)
        summary = summarise(campaign_id, rows, credits_estimated, dry_run=self.dry_run)
        self.log.info("Campaign %s finished: %s", campaign_id, summary)
        raise_for_outcome(sender.fatal if sender else None, summary, self.max_failure_rate)
        return summary

    def row_spec(self) -> Any:
        """How this task reads its rows (see :class:`~airflow_provider_smsnexus.campaign.plan.RowSpec`)."""
        from airflow_provider_smsnexus.campaign.plan import RowSpec

        return RowSpec(
            to_column=self.to_column,
            from_number=self.from_number,
            from_column=self.from_column,
            media_url_column=self.media_url_column,
            default_region=self.default_region,
            num_partitions=self.num_partitions,
            partition=self.partition,
            mms_credits=self.mms_credits,
        )

    def plan_rows(self, context: Context) -> list[CampaignRow]:
        """Read, validate, render and deduplicate the rows of this partition; nothing is sent."""
        from airflow_provider_smsnexus.campaign.plan import plan_rows
        from airflow_provider_smsnexus.campaign.render import MessageTemplate
        from airflow_provider_smsnexus.campaign.sources import load_table

        text_columns = [c for c in (self.to_column, self.from_column, self.media_url_column) if c]
        frame = load_table(_unwrap(self.recipients), text_columns=text_columns)
        template = MessageTemplate(
            self.message_template,
            macros=getattr(self.dag, "user_defined_macros", None) if self.has_dag() else None,
            filters=getattr(self.dag, "user_defined_filters", None) if self.has_dag() else None,
        )
        rows = plan_rows(frame, self.row_spec(), template, context)
        if not rows and frame.empty:
            self.log.info("The recipient table is empty: nothing to send")
        return rows

    def suppress(self, rows: Sequence[CampaignRow]) -> None:
        """Mark rows whose number is on the suppression list or opted out by texting STOP."""
        from airflow_provider_smsnexus.campaign.plan import opted_out_numbers, suppress
        from airflow_provider_smsnexus.campaign.sources import load_numbers

        if all(row.outcome is not None for row in rows):
            return
        reasons: dict[str, str] = {}
        if self.honor_opt_outs:
            reasons.update(opted_out_numbers(self.hook.iter_messages(direction="inbound")))
        if self.suppression_list is not None:
            listed = load_numbers(
                _unwrap(self.suppression_list), column=self.to_column, default_region=self.default_region
            )
            reasons.update(dict.fromkeys(listed, "on the suppression list"))
        suppress(rows, reasons)

    def preflight(self, rows: Sequence[CampaignRow], credits_estimated: int) -> None:
        """Check senders, capabilities and credits before the first send (raises; nothing is sent)."""
        from airflow_provider_smsnexus.campaign.preflight import preflight

        preflight(self.hook, rows, credits_estimated, self.log)

    def _write_report(self, rows: Sequence[CampaignRow], *, quiet: bool = False) -> None:
        """Write the report when ``report_path`` is set; ``quiet`` logs a failure instead of raising it."""
        from airflow_provider_smsnexus.campaign.report import write_report

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
