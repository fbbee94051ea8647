"""The send ledger's writes as statements run on its table through its transactions: claims (a batch in one
transaction where the dialect can skip rows already present, else one row at a time), renewals, releases, and
the owner's fenced marks.

:class:`~airflow_provider_smsnexus.campaign.ledger.SendLedger` calls these with its own
:class:`~airflow_provider_smsnexus.campaign.ledger_transactions.LedgerTransactions` and table; the statements
themselves are :mod:`~airflow_provider_smsnexus.campaign.ledger_schema`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.ledger_schema import (
    STATE_CLAIMED,
    STATE_FAILED,
    STATE_PENDING,
    LedgerEntry,
    entry_of,
    key_params,
    statement_for,
)
from airflow_provider_smsnexus.campaign.ledger_transactions import in_key_order

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Table

    from airflow_provider_smsnexus.campaign.ledger_transactions import LedgerTransactions, Write

#: One row to claim: ``(recipient, message_hash, from_number)``.
ClaimItem = tuple[str, str, str]


@dataclass(frozen=True)
class ClaimTerms:
    """What every claim of one call writes besides the row's key.

    :param campaign_key: the campaign as stored (see
        :func:`~airflow_provider_smsnexus.campaign.ledger_schema.campaign_key`).
    :param owner: the attempt that takes the leases.
    :param account: the account fingerprint the rows belong to.
    :param now: the moment of the claims (the ledger's clock).
    :param expires: when the leases run out unless renewed.
    """

    campaign_key: str
    owner: str
    account: str | None
    now: datetime
    expires: datetime

    def new_row(self, item: ClaimItem) -> dict[str, Any]:
        """The values of a new row claimed by :attr:`owner` (also the :class:`LedgerEntry` it reads back as)."""
        recipient, message_hash, from_number = item
        return {
            "campaign_id": self.campaign_key, "recipient": recipient, "message_hash": message_hash,
            "state": STATE_CLAIMED, "from_number": from_number, "attempts": 0, "created_at": self.now,
            "updated_at": self.now, "account": self.account, "lease_owner": self.owner,
            "lease_expires_at": self.expires,
        }  # fmt: skip

    def lease(self, recipient: str, message_hash: str) -> dict[str, Any]:
        """The parameters of :func:`~airflow_provider_smsnexus.campaign.ledger_schema.claim_update`."""
        return {
            **key_params(self.campaign_key, recipient, message_hash),
            "k_owner": self.owner,
            "k_now": self.now,
            "v_expires": self.expires,
            "v_account": self.account,
        }


def claim_batch(
    transactions: LedgerTransactions, table: Table, insert: Any, items: Sequence[ClaimItem], terms: ClaimTerms
) -> list[LedgerEntry | None]:
    """Claim many rows in one transaction: each is inserted (``insert`` skips a row already present) or, when
    present and free, leased.

    :param insert: the dialect's INSERT that skips present rows
        (:func:`~airflow_provider_smsnexus.campaign.ledger_schema.insert_new`).
    :return: per item, the row as it is under the new lease, or None when it is not this owner's.
    """
    update = statement_for(transactions.statements, "claim", table)
    select = statement_for(transactions.statements, "key_select", table)
    claimed: dict[tuple[str, str], LedgerEntry] = {}
    # Every batch locks its rows in key order: two batches never deadlock.
    with transactions.transaction() as transaction:
        for item in sorted(set(items)):
            recipient, message_hash, _ = item
            row = terms.new_row(item)
            if transaction.execute(insert, row) == 1:  # a new row: it is as written
                claimed[recipient, message_hash] = LedgerEntry(**row)
            elif transaction.execute(update, terms.lease(recipient, message_hash)) == 1:  # now ours: as it is
                found = transaction.rows(select, key_params(terms.campaign_key, recipient, message_hash))
                claimed[recipient, message_hash] = entry_of(found[0])
    return [claimed.get((recipient, message_hash)) for recipient, message_hash, _ in items]


def claim_one(transactions: LedgerTransactions, table: Table, item: ClaimItem, terms: ClaimTerms) -> bool:
    """Claim one row through SQLAlchemy (a dialect without an INSERT that skips, or after a failed batch):
    insert it, or lease it when present and free. Each step is committed at once.

    :return: whether :attr:`ClaimTerms.owner` now holds it.
    """
    import sqlalchemy as sa

    try:
        with transactions.writing(), transactions.engine.begin() as conn:
            conn.execute(table.insert().values(**terms.new_row(item)))
        return True
    except sa.exc.IntegrityError:
        update = statement_for(transactions.statements, "claim", table)
        with transactions.writing(), transactions.engine.begin() as conn:
            return conn.execute(update, terms.lease(item[0], item[1])).rowcount == 1


def renew_leases(
    transactions: LedgerTransactions, table: Table, owner: str, now: datetime, lease_seconds: float
) -> int:
    """Extend every live lease of ``owner`` (one UPDATE); an expired lease is never revived. Return how many
    rows it still holds."""
    with transactions.writing(), transactions.engine.begin() as conn:
        result = conn.execute(
            table.update()
            .where(
                table.c.lease_owner == owner,
                table.c.lease_expires_at > now,
                table.c.state.in_((STATE_CLAIMED, STATE_PENDING, STATE_FAILED)),
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
    return result.rowcount


def release_leases(transactions: LedgerTransactions, table: Table, owner: str) -> int:
    """End every lease of ``owner``; return how many rows it held."""
    with transactions.writing(), transactions.engine.begin() as conn:
        result = conn.execute(
            table.update()
            .where(table.c.lease_owner == owner, table.c.lease_expires_at.isnot(None))
            .values(lease_expires_at=None)
        )
    return result.rowcount


def fenced_writes(
    transactions: LedgerTransactions,
    table: Table,
    campaign_key: str,
    owner: str,
    now: datetime,
    updates: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    count_attempt: bool = False,
) -> list[int]:
    """UPDATEs that only the live owner of a row that is not sent can make, in one transaction; a single row's
    is committed in a group with the single writes other threads make at the same moment (see
    :class:`~airflow_provider_smsnexus.campaign.ledger_transactions.GroupCommit`).

    :param updates: ``(recipient, message_hash, values)`` of each row.
    :param count_attempt: add one to each row's ``attempts`` (a pending mark).
    :return: per update, its row count (0: the lease was lost).
    """
    writes: list[Write] = []
    for recipient, message_hash, values in updates:
        values = {"updated_at": now, **values}
        names = tuple(sorted(values))
        statement = statement_for(transactions.statements, ("fenced", names, count_attempt), table)
        params = {f"v_{name}": value for name, value in values.items()}
        params.update(key_params(campaign_key, recipient, message_hash), k_owner=owner, k_now=now)
        writes.append((statement, params, (campaign_key, recipient, message_hash)))
    if len(writes) == 1:
        return transactions.group_commit.submit(writes)
    return in_key_order(transactions.run_writes, writes)
