"""The send ledger: a durable record of every message a campaign sends, with leased claims, so that none is
sent twice.

One row per (campaign, normalised recipient, message hash), in one of the states ``claimed``, ``pending``,
``sent``, ``failed``, ``unknown`` (see :mod:`~airflow_provider_smsnexus.campaign.ledger_schema`).

A claim is a lease (``lease_owner``, ``lease_expires_at``): while it is live nobody else sends, looks up or
claims the row, and every write of the owner is fenced (``WHERE lease_owner = me AND lease_expires_at > now``)
so that an owner whose lease was taken over can mark nothing. ``account`` (a fingerprint of the base URL and
the token, never the token) scopes the known message ids. Every change is committed before the method
returns; :meth:`SendLedger.claim_many` and :meth:`SendLedger.mark_sent_many` commit many rows at once (a claim
is not a pending mark, and a ``sent`` mark lost in a crash leaves the row pending, settled by lookup), and the
single writes of concurrent threads (their pending marks) are committed together, each thread returning once
its own is durable. The writes are statements built once per ledger
(:mod:`~airflow_provider_smsnexus.campaign.ledger_writes`), run by the ledger's
:class:`~airflow_provider_smsnexus.campaign.ledger_transactions.LedgerTransactions` (on SQLite and PostgreSQL,
on the DB-API connection). Lease times are the workers' clocks: they are assumed to agree to within a third of the lease.

.. seealso:: "The send ledger" and "Exactly once" in :doc:`/guides/sending`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.ledger_schema import (
    DEFAULT_TABLE_NAME,
    MAX_REASON_LENGTH,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SENT,
    STATE_UNKNOWN,
    LedgerEntry,
    campaign_key,
    connection_engine,
    create_or_upgrade,
    default_ledger_path,
    entry_of,
    key_params,
    ledger_table,
    sqlite_engine,
    statement_for,
    table_exists,
)
from airflow_provider_smsnexus.campaign.ledger_transactions import LedgerTransactions
from airflow_provider_smsnexus.campaign.ledger_writes import (
    ClaimTerms,
    claim_batch,
    claim_one,
    fenced_writes,
    release_leases,
    renew_leases,
)
from airflow_provider_smsnexus.utils.times import utcnow

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Engine

    from airflow_provider_smsnexus.campaign.ledger_writes import ClaimItem

log = logging.getLogger(__name__)

__all__ = ["SendLedger"]


class SendLedger:
    """
    The durable record of a campaign's sends (see the module documentation for the states and leases).

    Thread-safe: one ledger may be shared by a pool of sending threads. Build it with
    :meth:`for_connection` (an Airflow SQL connection, or the embedded SQLite file when None),
    :meth:`sqlite`, or directly from a SQLAlchemy engine.

    :param engine: the SQLAlchemy engine of the database that holds the table.
    :param table_name: the table's name (created when missing, upgraded when older).
    :param schema: the table's schema, for databases that have schemas.
    :param owns_engine: dispose of the engine in :meth:`close`.
    :param clock: the time of the lease checks (tests give a controllable one).
    :param direct: run the hot statements on the DB-API connection where the driver is known (the default);
        False runs every statement through SQLAlchemy.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        schema: str | None = None,
        owns_engine: bool = False,
        clock: Callable[[], datetime] = utcnow,
        direct: bool = True,
    ) -> None:
        self.engine = engine
        self.table = ledger_table(table_name, schema)
        self.clock = clock
        #: How the ledger runs its transactions (held connection, write lock, group commit, statements).
        self.transactions = LedgerTransactions(engine, direct=direct)
        self._owns_engine = owns_engine
        self._table_ready = False

    def __repr__(self) -> str:
        # The URL of a database connection may carry a password: show the dialect and table only.
        return f"{type(self).__name__}({self.engine.dialect.name}, table={self.table.fullname!r})"

    def __enter__(self) -> SendLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def sqlite(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> SendLedger:
        """
        A ledger in an SQLite file, created with its directory when missing.

        :param path: the file; :func:`default_ledger_path` when None.
        :param kwargs: passed to :class:`SendLedger` (``table_name``).
        """
        file = Path(path) if path is not None else default_ledger_path()
        engine = sqlite_engine(file)
        return cls(engine, owns_engine=True, **kwargs)

    @classmethod
    def for_connection(cls, conn_id: str | None, **kwargs: Any) -> SendLedger:
        """
        The ledger in the database of an Airflow SQL connection, or the embedded SQLite file.

        :param conn_id: an Airflow connection whose hook offers ``get_sqlalchemy_engine()`` (PostgreSQL,
            MySQL, ... through their providers); None for the SQLite file under ``AIRFLOW_HOME``.
        :param kwargs: passed to :class:`SendLedger` (``table_name``, ``schema``).
        """
        if not conn_id:
            return cls.sqlite(**kwargs)
        engine = connection_engine(conn_id)
        return cls(engine, owns_engine=True, **kwargs)

    def close(self) -> None:
        """Release the database connections (the engine's too, when the ledger created it)."""
        self.transactions.close()
        if self._owns_engine:
            self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the table when missing, add the columns an older version lacked; safe when racing."""
        if not self._table_ready:
            create_or_upgrade(self.engine, self.table, self.transactions.writing)
            self._table_ready = True

    def _readable(self) -> bool:
        """Whether there is a table to read (a read never creates it: a dry run writes nothing)."""
        if not self._table_ready:
            if not table_exists(self.engine, self.table):
                return False
            self.create_table()
        return True

    # -- reads ----------------------------------------------------------------------------------------

    def entries(self, campaign_id: str, recipients: Iterable[str] | None = None) -> list[LedgerEntry]:
        """
        The ledger rows of a campaign, optionally only those of some recipients.

        Creates nothing and returns ``[]`` when the table does not exist yet (a dry run writes nothing).

        :param campaign_id: the campaign.
        :param recipients: keep only rows of these normalised recipients (None: all).
        """
        import sqlalchemy as sa

        if not self._readable():
            return []
        wanted = set(recipients) if recipients is not None else None
        query = sa.select(self.table).where(self.table.c.campaign_id == campaign_key(campaign_id))
        found = []
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                if wanted is None or row.recipient in wanted:
                    found.append(entry_of(row))
        return found

    def get(self, campaign_id: str, recipient: str, message_hash: str) -> LedgerEntry | None:
        """One ledger row, or None."""
        if not self._readable():
            return None
        select = statement_for(self.transactions.statements, "key_select", self.table)
        with self.engine.connect() as conn:
            row = conn.execute(select, key_params(campaign_key(campaign_id), recipient, message_hash)).first()
        return entry_of(row) if row is not None else None

    def known_message_ids(self, message_ids: Iterable[str], *, account: str | None) -> set[str]:
        """Which of these message ids the ledger already holds for a row of this account (any campaign)."""
        import sqlalchemy as sa

        ids = sorted({str(i) for i in message_ids})
        if not ids:
            return set()
        self.create_table()
        known: set[str] = set()
        columns = self.table.c
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(columns.message_id).where(
                    columns.message_id.in_(ids[start : start + 500]), columns.account == account
                )
                known.update(conn.execute(query).scalars())
        return known

    # -- leases (each call committed before it returns) ------------------------------------------------

    def claim(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        owner: str,
        from_number: str,
        account: str | None,
        lease_seconds: float,
    ) -> LedgerEntry | None:
        """
        Lease a row for ``owner``: a new row, or one that is neither sent nor unknown and whose lease is free
        (absent, expired, released, or already this owner's). Committed at once.

        :return: the row as it is under the new lease (its ``state`` says whether an earlier attempt left
            it ``pending``, which must be settled by a lookup before any send), or None when the row is
            sent, unknown, or leased by another live owner.
        """
        item = (recipient, message_hash, from_number)
        return self.claim_many(
            campaign_id, [item], owner=owner, account=account, lease_seconds=lease_seconds
        )[0]

    def claim_many(
        self,
        campaign_id: str,
        items: Sequence[ClaimItem],
        *,
        owner: str,
        account: str | None,
        lease_seconds: float,
    ) -> list[LedgerEntry | None]:
        """
        :meth:`claim` for many rows in one transaction (one commit): safe, since a claim is not a pending mark.

        :param items: ``(recipient, message_hash, from_number)`` of each row.
        :return: per item, what :meth:`claim` returns.
        """
        import sqlalchemy as sa

        self.create_table()
        now = self.clock()
        terms = ClaimTerms(
            campaign_key(campaign_id), owner, account, now, now + timedelta(seconds=lease_seconds)
        )
        insert = statement_for(self.transactions.statements, "insert", self.table, self.engine)
        if insert is not None and items:
            try:
                return self._claim_batch(insert, items, terms)
            except sa.exc.DBAPIError as exc:
                # E.g. a deadlock with another batch: the transaction rolled back whole; claim one at a time.
                log.warning(
                    "Send ledger: a batch claim failed (%s); claiming one row at a time", type(exc).__name__
                )
        return [
            self.get(campaign_id, item[0], item[1])
            if claim_one(self.transactions, self.table, item, terms)
            else None
            for item in items
        ]

    def _claim_batch(
        self, insert: Any, items: Sequence[ClaimItem], terms: ClaimTerms
    ) -> list[LedgerEntry | None]:
        """The claims of :meth:`claim_many` in one transaction (see
        :func:`~airflow_provider_smsnexus.campaign.ledger_writes.claim_batch`)."""
        return claim_batch(self.transactions, self.table, insert, items, terms)

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend every live lease of ``owner`` (one UPDATE); an expired lease is never revived.

        :return: how many rows it still holds.
        """
        self.create_table()
        return renew_leases(self.transactions, self.table, owner, self.clock(), lease_seconds)

    def release(self, owner: str) -> int:
        """End every lease of ``owner`` (its rows become free to claim, or to settle when pending)."""
        self.create_table()
        return release_leases(self.transactions, self.table, owner)

    # -- fenced writes of the owner (each committed before it returns) ---------------------------------

    def mark_pending(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        owner: str,
        server_at: datetime | None = None,
        uncertainty: float | None = None,
        foreign_ids: Iterable[str] = (),
        lease_seconds: float | None = None,
    ) -> datetime | None:
        """
        Record that the owner's request is about to leave; call it *right before* the request.

        The mark renews the owner's lease to ``lease_seconds`` from now and records ``send_by``, the same
        moment: the owner promises to let the request leave before it (its own clock) or not at all.

        :param server_at: this moment estimated in the server's clock; ``uncertainty`` its half-width (s).
        :param foreign_ids: ids of messages with this text to this recipient listed before this mark (never
            this attempt's own, so a lookup of this mark skips them).
        :param lease_seconds: the owner's lease; None keeps the lease as it is and sets no ``send_by``.

        :return: the mark's time (the owner's clock), or None when ``owner`` no longer holds a live lease
            (nothing may then be sent).
        """
        now = self.clock()
        values: dict[str, Any] = {
            "state": STATE_PENDING,
            "pending_at": now,
            "pending_server_at": server_at,
            "pending_uncertainty": uncertainty,
            "foreign_ids": ",".join(sorted(set(foreign_ids))) or None,
            "reason": None,
        }
        if lease_seconds is not None:
            values["send_by"] = values["lease_expires_at"] = now + timedelta(seconds=lease_seconds)
        done = self._fenced_many(
            campaign_id, owner, [(recipient, message_hash, values)], now, count_attempt=True
        )
        return now if done[0] else None

    def mark_sent(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        owner: str,
        message_id: Any,
        credits: int | None,
    ) -> bool:
        """Record that SMS Nexus holds the message (its answer, or a lookup); False when the lease was lost."""
        return self.mark_sent_many(
            campaign_id, [(recipient, message_hash, message_id, credits)], owner=owner
        )[0]

    def mark_sent_many(
        self, campaign_id: str, marks: Sequence[tuple[str, str, Any, int | None]], *, owner: str
    ) -> list[bool]:
        """
        :meth:`mark_sent` for many rows in one transaction (one commit): a grouped commit of answers already
        held (one row: committed in a group with other threads' single writes). A crash before it leaves
        these rows pending, which a rerun settles by lookup.

        :param marks: ``(recipient, message_hash, message_id, credits)`` of each row.
        :return: per mark, whether it was written (False: the lease was lost).
        """
        updates = [
            (recipient, message_hash, {
                "state": STATE_SENT, "message_id": None if message_id is None else str(message_id),
                "credits": credits, "reason": None, "lease_expires_at": None,
            })
            for recipient, message_hash, message_id, credits in marks
        ]  # fmt: skip
        return self._fenced_many(campaign_id, owner, updates)

    def mark_failed(
        self, campaign_id: str, recipient: str, message_hash: str, *, owner: str, reason: str
    ) -> bool:
        """Record that the message provably was not sent (may be sent again); False when the lease was lost."""
        values = {"state": STATE_FAILED, "reason": reason[:MAX_REASON_LENGTH], "lease_expires_at": None}
        return self._fenced_many(campaign_id, owner, [(recipient, message_hash, values)])[0]

    def note_unknown(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        owner: str,
        reason: str,
        ambiguous: bool = False,
    ) -> bool:
        """Record why a row could not be settled: it stays ``pending`` (a rerun looks it up again), or, when
        the evidence is ``ambiguous``, becomes ``unknown`` (never resent automatically)."""
        values = {
            "state": STATE_UNKNOWN if ambiguous else STATE_PENDING,
            "reason": reason[:MAX_REASON_LENGTH],
        }
        return self._fenced_many(campaign_id, owner, [(recipient, message_hash, values)])[0]

    def _fenced_many(
        self,
        campaign_id: str,
        owner: str,
        updates: Sequence[tuple[str, str, dict[str, Any]]],
        now: datetime | None = None,
        *,
        count_attempt: bool = False,
    ) -> list[bool]:
        """The owner's fenced UPDATEs at ``now`` (default: the clock's; see
        :func:`~airflow_provider_smsnexus.campaign.ledger_writes.fenced_writes`), each failed one logged."""
        if not updates:
            return []
        self.create_table()
        now = self.clock() if now is None else now
        counts = fenced_writes(
            self.transactions,
            self.table,
            campaign_key(campaign_id),
            owner,
            now,
            updates,
            count_attempt=count_attempt,
        )
        done = [count == 1 for count in counts]
        for (recipient, _, values), ok in zip(updates, done):
            if not ok:
                log.warning(
                    "Send ledger: %s no longer holds the lease on a row of campaign %s (%s); not writing %s",
                    owner,
                    campaign_id,
                    recipient,
                    values.get("state"),
                )
        return done
