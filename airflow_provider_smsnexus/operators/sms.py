"""Operators that send SMS through SMS Nexus: one message, or a whole campaign, each message exactly once.

Both are thin: each opens the send ledger and calls the engine, :mod:`airflow_provider_smsnexus.campaign`,
once (:func:`~airflow_provider_smsnexus.campaign.single.send_message`,
:class:`~airflow_provider_smsnexus.campaign.bulk.BulkCampaign`), which plans, checks, sends and reports.

.. seealso:: :doc:`/guides/sending`, and "Exactly once" there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_smsnexus.campaign.bulk import BulkCampaign, keep_callable
from airflow_provider_smsnexus.campaign.model import default_campaign_id
from airflow_provider_smsnexus.campaign.plan import RowSpec
from airflow_provider_smsnexus.campaign.send_window import SendWindow
from airflow_provider_smsnexus.campaign.single import send_message
from airflow_provider_smsnexus.operators._send_base import SHARED_PARAMS, SendOperatorBase
from airflow_provider_smsnexus.utils.rate_budget import BULK
from airflow_provider_smsnexus.utils.times import as_utc

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.sdk import Context

    from airflow_provider_smsnexus.campaign.model import CampaignRow

__all__ = ["SMSNexusBulkSendOperator", "SMSNexusSendSmsOperator"]


class SMSNexusSendSmsOperator(SendOperatorBase):
    """
    Send one SMS (or an MMS with ``media_url``) and return the message SMS Nexus created.

    A retry of the same task instance does not send again: the send is recorded in the send ledger like one
    row of a campaign, and a send whose answer was lost is looked up in ``/api/messages`` first.

    .. seealso:: "SMSNexusSendSmsOperator" in :doc:`/guides/sending`.

    :param from_number: the sender, a number of the account (E.164). Templated.
    :param to: the recipient (E.164, or national with ``default_region``). Templated.
    :param message: the text, at most 1600 characters. Templated.
    :param media_url: the URL of a media attachment, which makes it an MMS. Templated.
    :param default_region: region code for national numbers in ``to`` (``"US"``); None accepts E.164 only.
    """

    __doc__ = (__doc__ or "") + SHARED_PARAMS
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
        campaign_id = self.campaign_id or default_campaign_id(context, self)
        with self.open_ledger() as ledger:
            return send_message(
                self.hook,
                ledger,
                campaign_id,
                self.attempt(context),
                to=self.to,
                from_number=self.from_number,
                message=self.message,
                media_url=self.media_url,
                default_region=self.default_region,
                log=self.log,
            )


class SMSNexusBulkSendOperator(SendOperatorBase):
    """
    Send one personalised text per row of a recipient table, each exactly once, and report every row.

    The steps: check that the report can be written (before anything else); plan the rows (normalise every
    number, render the template per row, mark invalid rows and duplicates with their reason); skip rows the ledger holds as sent; drop suppressed numbers (the
    ``suppression_list`` and, with ``honor_opt_outs``, every number that texted STOP); check before the first
    send that every sender is an active number with the needed capability and that the estimated credits fit
    the balance; send (leased ledger rows, paced by the hook's limiter, lost answers looked up); write the
    report; return the summary.

    .. seealso:: "SMSNexusBulkSendOperator", "Exactly once" and "Scaling out" in :doc:`/guides/sending`.

    :param recipients: the table: a pandas DataFrame, a list of dicts, a callable (no arguments) returning
        either, or a path to a CSV or Parquet file (local, or an object-storage URL). Templated (paths and
        XCom references; data is never rendered).
    :param message_template: the text, as a sandboxed Jinja template with StrictUndefined, rendered per row
        with the row as ``row`` (``{{ row.first_name }}``) and the task context (``{{ ds }}``,
        ``{{ params.x }}``). Not one of Airflow's template fields: this operator renders it itself, so the
        per-row placeholders survive. Naming a column the table lacks fails the task before any send. A
        row's missing value (None, NaN, NA, NaT) prints as an empty string whatever filters follow, and
        ``| default("there")`` replaces it; a value the row lacks (``{{ row.meta.tier }}`` without a
        ``tier``) makes that row invalid, and the other rows are sent.
    :param from_number: the sender for every row (E.164). Templated. Give this or ``from_column``.
    :param from_column: the column that holds each row's sender.
    :param to_column: the column of recipients (read as text, never as floats). Default ``"to"``.
    :param media_url_column: the column of media URLs (rows with one are sent as MMS).
    :param default_region: region code for national numbers (``"US"``); None accepts E.164 only: a number
        without ``+`` (``2015550142``, or ``12125550100`` from a numeric column) makes its row ``invalid``.
    :param suppression_list: numbers never to text: a list, a DataFrame (column ``to_column`` or its only
        column), or a path (CSV, Parquet, or text with one number per line; UTF-8 with or without a BOM; a
        first line with no digit is a header). An entry that is not a usable number fails the task before
        any send (:class:`~airflow_provider_smsnexus.exceptions.SMSNexusSuppressionListError`, naming the
        line). Templated (paths).
    :param honor_opt_outs: skip every number whose latest keyword text to the account was STOP, STOPALL,
        UNSUBSCRIBE, CANCEL, END or QUIT, the whole text in any case, trailing punctuation ignored
        (``Stop.``); START or UNSTOP opts back in. Default True.
    :param dry_run: do everything but send: validate, check, write the report. Default False.
    :param max_concurrency: sends in flight at once (default 1); the hook's limiter still paces them.
    :param num_partitions: split the rows into this many partitions by a stable hash of the recipient.
    :param partition: the partition this task sends (0-based); map it: ``.expand(partition=range(n))``.
    :param report_path: where to write the Parquet report (local path or object-storage URL). Templated.
        Checked before the first send (its folder is created, a file is created there and removed): one that
        cannot be written raises :class:`~airflow_provider_smsnexus.exceptions.SMSNexusDestinationError`
        and nothing is sent. Default None: no report
        (:func:`~airflow_provider_smsnexus.campaign.report.default_report_dir` is the provider's folder for
        them, ``$AIRFLOW_HOME/smsnexus/reports``).
    :param max_failure_rate: fail the task (after finishing and writing the report) when more than this
        share of the sends attempted failed. Default 0.05.
    :param mms_credits: the credits one MMS is estimated to cost (the API does not publish it). Default 3.
    :param send_window: the local hours (and days) in which each recipient may be texted, in the recipient's
        own time zone: ``"us_federal"`` (08:00-21:00 every day), a dict such as ``{"start": "09:00", "end":
        "20:00", "days": "mon-fri", "unknown_zone": "skip", "zone_column": "tz"}`` or ``{"at": "10:00"}``
        (local-time delivery), or a :class:`~airflow_provider_smsnexus.campaign.send_window.SendWindow`.
        Rows outside their window wait: the task defers to the triggerer (holding no worker slot) until the
        earliest opening, then sends those rows, and so on. Default None: any time. Templated. See "Send
        windows" in :doc:`/guides/sending`.
    :param send_deadline: rows whose window opens after this moment (an aware datetime or ISO 8601 text) are
        not sent (``outside_window``). Default None: no deadline. Templated.

    The campaign defaults to ``"<dag_id>.<task_id>.<run_id>"``, plus the map index for a mapped task that
    is not partitioned.
    """

    __doc__ = (__doc__ or "") + SHARED_PARAMS
    #: In a shared rate budget (the connection's ``rate_budget``), a campaign leaves interactive calls first.
    hook_priority = BULK
    template_fields: Sequence[str] = (
        "recipients",
        "from_number",
        "campaign_id",
        "report_path",
        "suppression_list",
        "send_window",
        "send_deadline",
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
        send_window: Any = None,
        send_deadline: datetime | str | None = None,
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
        self.recipients = keep_callable(recipients)
        self.message_template = message_template
        self.from_number = from_number
        self.from_column = from_column
        self.to_column = to_column
        self.media_url_column = media_url_column
        self.default_region = default_region
        self.suppression_list = keep_callable(suppression_list)
        self.honor_opt_outs = honor_opt_outs
        self.dry_run = dry_run
        self.max_concurrency = int(max_concurrency)
        self.num_partitions = num_partitions
        self.partition = partition
        self.report_path = report_path
        self.max_failure_rate = float(max_failure_rate)
        self.mms_credits = mms_credits
        if not _templated(send_window):
            SendWindow.parse(send_window)  # a bad window fails the DAG's parse, not its run
        self.send_window = send_window
        self.send_deadline = send_deadline

    def execute(self, context: Context) -> dict[str, Any]:
        campaign_id = self.campaign_id or default_campaign_id(
            context, self, partitioned=self.num_partitions > 1
        )
        with self.open_ledger() as ledger:
            summary = self.bulk_campaign().run(ledger, campaign_id, context, self.attempt(context))
        if summary.get("resume_at") and not self.dry_run:
            self.wait_for_the_window(summary)
        return summary

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Back from waiting for a send window: run again (the ledger skips every row already sent)."""
        return self.execute(context)

    def wait_for_the_window(self, summary: dict[str, Any]) -> None:
        """Defer to the triggerer until the earliest waiting row's window opens (no worker slot is held)."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        resume_at = as_utc(summary["resume_at"], "resume_at")
        self.log.info(
            "%d rows wait for their send window; the task defers until %s",
            summary["waiting"],
            summary["resume_at"],
        )
        self.defer(trigger=DateTimeTrigger(moment=resume_at), method_name="execute_complete")

    def bulk_campaign(self) -> BulkCampaign:
        """This task's campaign: its arguments as the engine takes them (nothing is read or sent yet)."""
        dag = self.dag if self.has_dag() else None
        window = SendWindow.parse(self.send_window)
        return BulkCampaign(
            self.hook,
            self.recipients,
            self.message_template,
            RowSpec(
                to_column=self.to_column,
                from_number=self.from_number,
                from_column=self.from_column,
                media_url_column=self.media_url_column,
                default_region=self.default_region,
                num_partitions=self.num_partitions,
                partition=self.partition,
                mms_credits=self.mms_credits,
                zone_column=window.zone_column if window is not None else None,
            ),
            self.log,
            suppression_list=self.suppression_list,
            honor_opt_outs=self.honor_opt_outs,
            dry_run=self.dry_run,
            max_concurrency=self.max_concurrency,
            report_path=self.report_path,
            max_failure_rate=self.max_failure_rate,
            macros=getattr(dag, "user_defined_macros", None),
            filters=getattr(dag, "user_defined_filters", None),
            send_window=window,
            send_deadline=as_utc(self.send_deadline, "send_deadline"),
        )

    def plan_rows(self, context: Context) -> list[CampaignRow]:
        """Only the planning step of this task's campaign (the benchmark's measure): read, validate, render and
        deduplicate the rows of this partition; nothing is sent."""
        return self.bulk_campaign().plan(context)


def _templated(value: Any) -> bool:
    """Whether a value still holds Jinja (rendered only when the task runs)."""
    return (isinstance(value, str) and "{{" in value) or (
        isinstance(value, dict) and any(map(_templated, value.values()))
    )
