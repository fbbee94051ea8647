"""One message as a campaign of one row: the row built from the operator's arguments, sent, and the result.

:func:`send_message` is the one entry of
:class:`~airflow_provider_smsnexus.operators.sms.SMSNexusSendSmsOperator`: it sends the message through the
same leased ledger and sender as a campaign, turning the arguments into that row (or a typed error naming the
bad argument) and the settled row into the created message (or the error that says why none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, SENT, UNKNOWN, CampaignRow, as_int
from airflow_provider_smsnexus.campaign.render import (
    media_url_problem,
    message_hash,
    message_problem,
)
from airflow_provider_smsnexus.campaign.sender import CampaignSender
from airflow_provider_smsnexus.exceptions import (
    SMSNexusCampaignError,
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
)
from airflow_provider_smsnexus.utils.phone import phone_argument

if TYPE_CHECKING:
    import logging

    from airflow_provider_smsnexus.campaign.lease import SendAttempt
    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook


def send_message(
    hook: SMSNexusHook,
    ledger: SendLedger,
    campaign_id: str,
    attempt: SendAttempt,
    *,
    to: Any,
    from_number: Any,
    message: Any,
    media_url: str | None,
    default_region: str | None,
    log: logging.Logger,
) -> dict[str, Any]:
    """
    Send one message exactly once across attempts, as a campaign of one row, and return what SMS Nexus created.

    :param hook: the SMS Nexus hook.
    :param ledger: the send ledger (open; the caller closes it).
    :param campaign_id: the ledger's campaign.
    :param attempt: this attempt's lease owner and lease terms.
    :param to: the recipient (E.164, or national with ``default_region``).
    :param from_number: the sender, a number of the account.
    :param message: the text.
    :param media_url: the URL of a media attachment (an MMS), or None.
    :param default_region: region code for national numbers; None accepts E.164 only.
    :param log: where the outcome is logged.
    :raises SMSNexusCampaignError: for a bad argument (nothing sent); the error of a send that failed or whose
        outcome is unknown (see :func:`message_result`).
    """
    row = message_row(
        to=to, from_number=from_number, message=message, media_url=media_url, default_region=default_region
    )
    sender = CampaignSender.for_attempt(hook, ledger, campaign_id, attempt, log=log)
    sender.load_ledger([row])
    sender.send_all([row])
    return message_result(row, log)


def message_row(
    *, to: Any, from_number: Any, message: Any, media_url: str | None, default_region: str | None
) -> CampaignRow:
    """The message as a campaign row; raises :class:`SMSNexusCampaignError` naming the bad argument
    (:class:`~airflow_provider_smsnexus.exceptions.SMSNexusInvalidNumberError` for a number)."""
    recipient = phone_argument(to, "to", default_region)
    sender = phone_argument(from_number, "from_number", default_region)
    body = "" if message is None else str(message).strip()
    problem = message_problem(body) or (media_url_problem(media_url) if media_url else None)
    if problem:
        raise SMSNexusCampaignError(f"The message cannot be sent: {problem}")
    return CampaignRow(
        1,
        raw_to=to,
        recipient=recipient,
        from_number=sender,
        media_url=media_url or None,
        body=body,
        message_hash=message_hash(sender, body),
    )


def as_message(row: CampaignRow) -> dict[str, Any]:
    """The message of a row already sent by an earlier attempt, as far as the ledger knows it."""
    return row.message or {
        "id": as_int(row.message_id) if (row.message_id or "").isdigit() else row.message_id,
        "from": row.from_number,
        "to": row.recipient,
        "body": row.body,
        "credits_used": row.credits,
    }


def message_result(row: CampaignRow, log: logging.Logger) -> dict[str, Any]:
    """The created message of a settled row, or the error that says why there is none."""
    if row.outcome == SENT:
        log.info("Sent message %s to %s (%s credits)", row.message_id, row.recipient, row.credits)
        return row.message or {}
    if row.outcome == ALREADY_SENT:
        log.info("Message %s to %s was already sent by an earlier attempt", row.message_id, row.recipient)
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
