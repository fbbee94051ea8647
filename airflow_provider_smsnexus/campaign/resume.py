"""Resuming a campaign: what the send ledger already knows of its rows, applied before anything is sent.

A row already ``sent`` (by an earlier attempt or another partition) ends ``already_sent``; a row left
``unknown`` stays so with its reason; a row an earlier attempt left ``pending`` is noted, to be settled by a
lookup before any send. Reads only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_smsnexus.campaign.ledger_schema import STATE_PENDING, STATE_SENT, STATE_UNKNOWN
from airflow_provider_smsnexus.campaign.model import ALREADY_SENT, UNKNOWN

#: Why a row recorded as sent under another account is ``unknown``.
OTHER_ACCOUNT = (
    "the ledger records this text as sent from another account (another base URL or API token): not sent "
    "again, and not counted as sent here. If only the token was rotated, it was sent; otherwise use another "
    "campaign_id for this account"
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence

    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.campaign.ledger_schema import LedgerEntry
    from airflow_provider_smsnexus.campaign.model import CampaignRow


def apply_ledger(
    ledger: SendLedger,
    campaign_id: str,
    rows: Sequence[CampaignRow],
    log: logging.Logger,
    *,
    account: str | None = None,
) -> None:
    """Mark rows already sent (or left ``unknown``) in ``campaign_id``; note those left pending.

    A row recorded ``sent`` under another account fingerprint (another base URL or token) is ``unknown``:
    the ledger cannot tell a rotated token from another account, so it neither trusts nor repeats that send.

    :param ledger: the send ledger.
    :param campaign_id: the campaign.
    :param rows: the campaign's rows; only undecided ones are looked at.
    :param log: where a warning about changed texts goes.
    :param account: this attempt's account fingerprint; None checks nothing.
    """
    candidates = [row for row in rows if row.outcome is None]
    if not candidates:
        return
    by_recipient: dict[str, list[LedgerEntry]] = {}
    for entry in ledger.entries(campaign_id, {row.recipient for row in candidates}):
        by_recipient.setdefault(entry.recipient, []).append(entry)
    changed = 0
    for row in candidates:
        entries = by_recipient.get(row.recipient or "", [])
        sent = [entry for entry in entries if entry.state == STATE_SENT]
        own = next((entry for entry in entries if entry.message_hash == row.message_hash), None)
        if sent:
            entry = next((e for e in sent if e.message_hash == row.message_hash), sent[0])
            if account is not None and entry.account not in (None, account):
                row.settle(UNKNOWN, OTHER_ACCOUNT)
                continue
            row.found(ALREADY_SENT, None, message_id=entry.message_id, credits=entry.credits)
            row.pending_server_at = entry.pending_server_at  # when it left, for the report
            if entry.message_hash != row.message_hash:
                changed += 1
                row.reason = "a different text was already sent to this recipient in this campaign"
        elif own is not None and own.state == STATE_UNKNOWN:
            row.settle(UNKNOWN, own.reason or "left unknown by an earlier attempt")
        elif any(e.state == STATE_PENDING and e.message_hash != row.message_hash for e in entries):
            row.settle(
                UNKNOWN,
                "an earlier attempt left a different text to this recipient pending in this campaign: "
                "rerun with that text to settle it first",
            )
        elif own is not None and own.state == STATE_PENDING:
            row.stale = own
    if changed:
        log.warning(
            "%d recipients were already sent a different text in campaign %s: not sending them again",
            changed,
            campaign_id,
        )
