"""The bulk operator's steps around the sender: plan a recipient table, drop suppressed numbers, report.

Each function is one step of
:meth:`SMSNexusBulkSendOperator.execute() <airflow_provider_smsnexus.operators.sms.SMSNexusBulkSendOperator.execute>`;
none sends. Recipient and suppression arguments may be callables, held by :class:`Verbatim` so that Airflow's
templating does not call them with the Jinja context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import DRY_RUN

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence

    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.campaign.plan import RowSpec
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
    from airflow_provider_smsnexus.campaign.sources import load_table

    text_columns = [c for c in (spec.to_column, spec.from_column, spec.media_url_column) if c]
    frame = load_table(unwrap(recipients), text_columns=text_columns)
    template = MessageTemplate(message_template, macros=macros, filters=filters)
    rows = plan_rows(frame, spec, template, context)
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
) -> None:
    """Mark rows whose number is on the suppression list or opted out by texting STOP."""
    from airflow_provider_smsnexus.campaign.plan import opted_out_numbers, suppress
    from airflow_provider_smsnexus.campaign.sources import load_numbers

    if all(row.outcome is not None for row in rows):
        return
    reasons: dict[str, str] = {}
    if honor_opt_outs:
        reasons.update(opted_out_numbers(hook.iter_messages(direction="inbound")))
    if suppression_list is not None:
        listed = load_numbers(unwrap(suppression_list), column=column, default_region=default_region)
        reasons.update(dict.fromkeys(listed, "on the suppression list"))
    suppress(rows, reasons)


def settle_dry_run(rows: Sequence[CampaignRow]) -> None:
    """Settle the rows a dry run would have sent as ``dry_run``."""
    for row in rows:
        row.settle(DRY_RUN, "left pending by an earlier attempt" if row.stale else None)


def write_campaign_report(
    rows: Sequence[CampaignRow], destination: str | None, log: logging.Logger, *, quiet: bool = False
) -> None:
    """Write the report when ``destination`` is set; ``quiet`` logs a failure instead of raising it."""
    from airflow_provider_smsnexus.campaign.report import write_report

    if not destination:
        return
    try:
        where = write_report([row.report_row() for row in rows], destination)
    except Exception:
        log.exception("Could not write the campaign report to %s", destination)
        if not quiet:
            raise
        return
    log.info("Wrote the report of %d rows to %s", len(rows), where)
