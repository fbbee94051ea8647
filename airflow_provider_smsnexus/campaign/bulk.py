"""A bulk campaign, run once: plan the recipient table, drop suppressed numbers, check before the first send,
send through the leased ledger, write the report and return the summary.

:class:`BulkCampaign` is the one entry of
:class:`~airflow_provider_smsnexus.operators.sms.SMSNexusBulkSendOperator`; the functions below are its steps
(none sends). Recipient and suppression arguments may be callables, held by :class:`Verbatim` so that
Airflow's templating does not call them with the Jinja context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import DRY_RUN

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_smsnexus.campaign.lease import SendAttempt
    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.campaign.plan import RowSpec
    from airflow_provider_smsnexus.campaign.send_window import SendWindow
    from airflow_provider_smsnexus.campaign.sender import CampaignSender
    from airflow_provider_smsnexus.campaign.windowing import WindowVerdict
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook


class Verbatim:
    """Holds a callable for a templated field: Airflow would otherwise call it with the Jinja context."""

    __slots__ = ("value",)

    def __init__(self, value: Callable[[], Any]) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<callable {getattr(self.value, '__name__', type(self.value).__name__)}>"


def keep_callable(value: Any) -> Any:
    """``value``, with a plain callable (not an XComArg) wrapped in :class:`Verbatim`."""
    if callable(value) and not callable(getattr(type(value), "resolve", None)):
        return Verbatim(value)
    return value


def unwrap(value: Any) -> Any:
    """The data behind a field: a :class:`Verbatim` callable is called, anything else is returned as is."""
    return value.value() if isinstance(value, Verbatim) else value


@dataclass(frozen=True)
class BulkCampaign:
    """
    One campaign of the bulk operator (its arguments, checked): :meth:`run` takes it from the recipient table
    to the summary, each row sent at most once.

    :param hook: the SMS Nexus hook (its limiter paces the sends).
    :param recipients: the recipient table, or a :class:`Verbatim` callable returning it.
    :param message_template: the Jinja text rendered per row.
    :param spec: how the rows are read (columns, region, partition, MMS credits).
    :param log: where progress goes.
    :param suppression_list: numbers never to text (see :func:`suppress_rows`); None: none.
    :param honor_opt_outs: skip numbers whose latest keyword text was STOP (and the like).
    :param dry_run: do everything but send.
    :param max_concurrency: sends in flight at once.
    :param report_path: where the Parquet report goes; None: no report.
    :param max_failure_rate: the share of failed sends above which :meth:`run` raises (after the report).
    :param macros: the DAG's ``user_defined_macros``, for the template.
    :param filters: the DAG's ``user_defined_filters``, for the template.
    :param send_window: the local hours in which each row may be texted (see :doc:`/guides/sending`); None:
        any time. Rows outside theirs are ``waiting``, and the summary's ``resume_at`` says when to run again.
    :param send_deadline: rows whose window opens after this moment are ``outside_window``; None: none.
    """

    hook: SMSNexusHook
    recipients: Any
    message_template: str
    spec: RowSpec
    log: logging.Logger
    suppression_list: Any = None
    honor_opt_outs: bool = True
    dry_run: bool = False
    max_concurrency: int = 1
    report_path: str | None = None
    max_failure_rate: float = 0.05
    macros: Mapping[str, Any] | None = None
    filters: Mapping[str, Any] | None = None
    send_window: SendWindow | None = None
    send_deadline: datetime | None = None

    def run(
        self, ledger: SendLedger, campaign_id: str, context: Mapping[str, Any], attempt: SendAttempt
    ) -> dict[str, Any]:
        """
        Run the campaign: plan, skip rows the ledger holds as sent, suppress, check, send, report.

        :param ledger: the send ledger (open; the caller closes it).
        :param campaign_id: the campaign, as the summary names it (the sender scopes it to the server's run).
        :param context: the task context (for the template, and the lease owner).
        :param attempt: this attempt's lease owner and lease terms.
        :return: the summary (counts per outcome, credits).
        :raises SMSNexusCampaignError: before any send for a plan or check that fails; after the report when
            the campaign stopped, left rows unknown, or failed more than ``max_failure_rate``.
        """
        from airflow_provider_smsnexus.campaign.report import raise_for_outcome, summarise

        self.spec.check()
        check_report_path(self.report_path)
        rows = self.plan(context)
        sender, credits_estimated = None, 0
        try:
            sender = self.sender(ledger, campaign_id, attempt)
            sender.load_ledger(rows)
            self.suppress(rows)
            to_send = [row for row in rows if row.outcome is None]
            credits_estimated = sum(row.credits_estimated for row in to_send)
            if to_send:
                self.preflight(to_send, credits_estimated)
            verdict = self.windowed(to_send)
            sendable = to_send if verdict is None else verdict.now
            if self.dry_run:
                settle_dry_run(sendable)
            else:
                sender.send_all(sendable)
                verdict = self.rewindowed(verdict, sendable)
        except BaseException:
            write_campaign_report(rows, self.report_path, self.log, quiet=True)
            raise
        summary = summarise(campaign_id, rows, credits_estimated, dry_run=self.dry_run)
        if verdict is not None and self.send_window is not None:
            from airflow_provider_smsnexus.campaign.windowing import note_zones

            note_zones(rows, self.send_window)
            summary.update(window_summary(rows, verdict))
            self.log.info("Send window %s: %s", self.send_window.describe(), summary["schedule"])
        self.log.info("Campaign %s finished: %s", campaign_id, summary)
        try:
            write_campaign_report(rows, self.report_path, self.log, summary=summary)
        finally:  # the campaign's own failure, if any, wins over the report's (logged, and its context)
            raise_for_outcome(sender.fatal if sender else None, summary, self.max_failure_rate)
        return summary

    def plan(self, context: Mapping[str, Any]) -> list[CampaignRow]:
        """Read, validate, render and deduplicate the rows of this partition; nothing is sent."""
        return plan_table(
            self.recipients,
            self.message_template,
            self.spec,
            context,
            macros=self.macros,
            filters=self.filters,
            log=self.log,
        )

    def windowed(self, rows: Sequence[CampaignRow]) -> WindowVerdict | None:
        """The send window's verdict on ``rows`` now (those outside it are settled); None without a window."""
        from airflow_provider_smsnexus.campaign.windowing import apply_window

        if self.send_window is None or not rows:
            return None
        return apply_window(rows, self.send_window, self.hook, deadline=self.send_deadline)

    def rewindowed(self, verdict: WindowVerdict | None, sent: Sequence[CampaignRow]) -> WindowVerdict | None:
        """``verdict``, with the rows whose window closed while they waited for their turn judged again."""
        from airflow_provider_smsnexus.campaign.model import WAITING
        from airflow_provider_smsnexus.campaign.windowing import WindowVerdict
        from airflow_provider_smsnexus.utils.times import utcnow

        late = [row for row in sent if row.outcome == WAITING]
        again = self.windowed(late) if verdict is not None else None
        if verdict is None or again is None:
            return verdict
        resume = [moment for moment in (verdict.resume_at, again.resume_at) if moment is not None]
        for row in again.now:  # open again by the clock's estimate: the next run sends them
            row.settle(WAITING, "its send window closed as its turn came; it is tried again at once")
            resume.append(utcnow())
        return WindowVerdict(verdict.now, min(resume, default=None), verdict.schedule)

    def sender(self, ledger: SendLedger, campaign_id: str, attempt: SendAttempt) -> CampaignSender:
        """The sender of this attempt, its leases owned by ``attempt``."""
        from airflow_provider_smsnexus.campaign.sender import CampaignSender

        return CampaignSender.for_attempt(
            self.hook, ledger, campaign_id, attempt, log=self.log, max_concurrency=self.max_concurrency
        )

    def suppress(self, rows: Sequence[CampaignRow]) -> None:
        """Mark rows whose number is on the suppression list or opted out by texting STOP."""
        suppress_rows(
            self.hook,
            rows,
            honor_opt_outs=self.honor_opt_outs,
            suppression_list=self.suppression_list,
            column=self.spec.to_column,
            default_region=self.spec.default_region,
            log=self.log,
        )

    def preflight(self, rows: Sequence[CampaignRow], credits_estimated: int) -> None:
        """Check senders, capabilities and credits before the first send (raises; nothing is sent)."""
        from airflow_provider_smsnexus.campaign.preflight import preflight

        preflight(self.hook, rows, credits_estimated, self.log)


def plan_table(
    recipients: Any,
    message_template: str,
    spec: RowSpec,
    context: Mapping[str, Any],
    *,
    macros: Mapping[str, Any] | None = None,
    filters: Mapping[str, Any] | None = None,
    log: logging.Logger,
) -> list[CampaignRow]:
    """Read, validate, render and deduplicate the rows of this partition; nothing is sent."""
    from airflow_provider_smsnexus.campaign.plan import plan_rows
    from airflow_provider_smsnexus.campaign.render import MessageTemplate
    from airflow_provider_smsnexus.campaign.sources import load_rows

    text_columns = [
        c for c in (spec.to_column, spec.from_column, spec.media_url_column, spec.zone_column) if c
    ]
    frame, places = load_rows(unwrap(recipients), what="recipient", text_columns=text_columns)
    template = MessageTemplate(message_template, macros=macros, filters=filters)
    rows = plan_rows(frame, spec, template, context, places)
    if not rows and frame.empty:
        log.info("The recipient table is empty: nothing to send")
    return rows


def suppress_rows(
    hook: SMSNexusHook,
    rows: Sequence[CampaignRow],
    *,
    honor_opt_outs: bool,
    suppression_list: Any,
    column: str,
    default_region: str | None,
    log: logging.Logger | None = None,
) -> None:
    """
    Mark rows whose number is on the suppression list or opted out by texting STOP; log how many, from where.

    The suppression list is read whole first: an entry that is not a usable number stops the campaign
    (:class:`~airflow_provider_smsnexus.exceptions.SMSNexusSuppressionListError`) before anything is sent.
    A row's reason names where its number is listed (``on the suppression list: line 3 of stop.csv``).
    """
    from airflow_provider_smsnexus.campaign.plan import opted_out_numbers, suppress
    from airflow_provider_smsnexus.campaign.sources import read_suppression_list

    if all(row.outcome is not None for row in rows):
        return
    listed = read_suppression_list(unwrap(suppression_list), column=column, default_region=default_region)
    opted_out = opted_out_numbers(hook.iter_messages(direction="inbound")) if honor_opt_outs else {}
    reasons = dict(opted_out)
    reasons.update({number: f"on the suppression list: {place}" for number, place in listed.numbers.items()})
    suppressed = suppress(rows, reasons)
    if log is not None:
        by_list = sum(row.recipient in listed.numbers for row in suppressed)
        if suppression_list is not None:
            log.info(
                "Suppression list from %s: %d numbers; %d rows suppressed by it",
                listed.source,
                len(listed.numbers),
                by_list,
            )
        if honor_opt_outs:
            log.info(
                "Opt-outs (STOP replies): %d numbers; %d rows suppressed by them",
                len(opted_out),
                len(suppressed) - by_list,
            )


def window_summary(rows: Sequence[CampaignRow], verdict: WindowVerdict) -> dict[str, Any]:
    """The summary's send-window entries: rows waiting or outside their window, the schedule, and when to
    run again for the waiting rows (ISO UTC, this machine's clock; None when none waits)."""
    from airflow_provider_smsnexus.campaign.model import OUTSIDE_WINDOW, WAITING
    from airflow_provider_smsnexus.utils.times import iso_utc

    waiting = sum(row.outcome == WAITING for row in rows)
    return {
        "waiting": waiting,
        "outside_window": sum(row.outcome == OUTSIDE_WINDOW for row in rows),
        "schedule": [list(entry) for entry in verdict.schedule],
        "resume_at": iso_utc(verdict.resume_at) if waiting and verdict.resume_at is not None else None,
    }


def settle_dry_run(rows: Sequence[CampaignRow]) -> None:
    """Settle the rows a dry run would have sent as ``dry_run``."""
    for row in rows:
        row.settle(DRY_RUN, "left pending by an earlier attempt" if row.stale else None)


def check_report_path(destination: str | None) -> None:
    """Check before the first send that the report can be written (nothing to check without one).

    :raises SMSNexusDestinationError: naming ``report_path`` and the path.
    """
    from airflow_provider_smsnexus.campaign.report import check_destination

    if destination:
        check_destination(destination, parameter="report_path")


def write_campaign_report(
    rows: Sequence[CampaignRow],
    destination: str | None,
    log: logging.Logger,
    *,
    summary: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> None:
    """
    Write the report when ``destination`` is set.

    :param summary: the campaign's summary, carried by the error when the report cannot be written.
    :param quiet: log a failure instead of raising it (the campaign is already failing with its own error).
    :raises SMSNexusDestinationError: naming ``report_path``, with ``summary``, when the write fails.
    """
    from airflow_provider_smsnexus.campaign.report import write_report
    from airflow_provider_smsnexus.exceptions import SMSNexusDestinationError

    if not destination:
        return
    try:
        where = write_report([row.report_row() for row in rows], destination)
    except Exception as exc:
        log.exception("Could not write the campaign report to report_path=%s", destination)
        if quiet:
            return
        raise SMSNexusDestinationError(
            f"report_path={str(destination)!r} could not be written after the campaign ran "
            f"({type(exc).__name__}: {exc}). The campaign's summary: {dict(summary or {})}. Run the task again "
            "to write the report: the send ledger holds every text sent, so none is sent twice.",
            parameter="report_path",
            path=str(destination),
            summary=dict(summary) if summary is not None else None,
        ) from exc
    log.info("Wrote the report of %d rows to %s", len(rows), where)
