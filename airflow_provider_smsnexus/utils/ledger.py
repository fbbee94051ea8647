"""Old import path of the send ledger, kept so that existing imports keep working.

The ledger lives in :mod:`airflow_provider_smsnexus.campaign.ledger`.
"""

from __future__ import annotations

from airflow_provider_smsnexus.campaign.ledger import (
    DEFAULT_TABLE_NAME,
    MAX_CAMPAIGN_LENGTH,
    MAX_REASON_LENGTH,
    STATE_CLAIMED,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SENT,
    STATE_UNKNOWN,
    LedgerEntry,
    SendLedger,
    campaign_key,
    default_ledger_path,
)

__all__ = [
    "DEFAULT_TABLE_NAME",
    "MAX_CAMPAIGN_LENGTH",
    "MAX_REASON_LENGTH",
    "STATE_CLAIMED",
    "STATE_FAILED",
    "STATE_PENDING",
    "STATE_SENT",
    "STATE_UNKNOWN",
    "LedgerEntry",
    "SendLedger",
    "campaign_key",
    "default_ledger_path",
]
