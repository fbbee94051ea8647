"""The send ledger: a durable record of every message a campaign sends, with leased claims, so that none is
sent twice.

One row per (campaign, normalised recipient, message hash), in one of these states:

``claimed``
    leased by one attempt; no request has left for it yet (a dead owner's claimed row is simply sent again);
``pending``
    the request may have left: written by the owner right before it does (``pending_at``, and its estimate
    in the server's time); a pending row whose owner died is settled by looking it up in ``/api/messages``;
``sent``
    SMS Nexus holds the message (from its answer, or found by a lookup): id and credits kept;
``failed``
    SMS Nexus refused it, or it provably did not arrive: may be claimed and sent again;
``unknown``
    the evidence is ambiguous (two messages could be this row's): never resent automatically.

A claim is a lease (``lease_owner``, ``lease_expires_at``): while it is live nobody else sends, looks up or
claims the row, and every write of the owner is fenced (``WHERE lease_owner = me AND lease_expires_at > now``)
so that an owner whose lease was taken over can mark nothing. ``account`` (a fingerprint of the base URL and
the token, never the token) scopes the known message ids. Every change is its own committed transaction.
Lease times are the workers' clocks: they are assumed to agree to within a third of the lease.

.. seealso:: The "Send ledger" and "Exactly once" sections of the README.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sqlalchemy import Table
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

STATE_CLAIMED = "claimed"
STATE_PENDING = "pending"
STATE_SENT = "sent"
STATE_FAILED = "failed"
STATE_UNKNOWN = "unknown"

#: The ledger table's default name.
DEFAULT_TABLE_NAME = "smsnexus_send_ledger"
#: Longest reason kept in the ledger (server messages can be long).
MAX_REASON_LENGTH = 1000
#: Longest campaign id stored as is (see :func:`campaign_key`).
MAX_CAMPAIGN_LENGTH = 250
#: Columns added after the first release: an older table gets them by ``ALTER TABLE ... ADD COLUMN``.
UPGRADE_COLUMNS = (
    "account",
    "lease_owner",
    "lease_expires_at",
    "pending_server_at",
    "pending_uncertainty",
    "foreign_ids",
)


def campaign_key(campaign_id: str) -> str:
    """The campaign as stored: itself when it fits the column, else its start and a hash of the whole."""
    if len(campaign_id) <= MAX_CAMPAIGN_LENGTH:
        return campaign_id
    digest = hashlib.sha256(campaign_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{campaign_id[: MAX_CAMPAIGN_LENGTH - 33]}~{digest}"


def default_ledger_path() -> Path:
    """The embedded ledger's file: ``$AIRFLOW_HOME/smsnexus/send_ledger.db`` (``~/airflow`` by default)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(home).expanduser() / "smsnexus" / "send_ledger.db"


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: everything the ledger writes is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row (see the module documentation for the states and the lease).

    :param attempts: how many times the row was marked pending (each mark may precede one request).
    :param pending_at: when the row was last marked pending (the owner's clock, UTC).
    :param pending_server_at: the same moment estimated in the server's clock.
    :param pending_uncertainty: that estimate's half-width, in seconds.
    :param foreign_ids: ids of messages with this text to this recipient that existed before the send.
    """

    campaign_id: str
    recipient: str
    message_hash: str
    state: str
    from_number: str | None = None
    message_id: str | None = None
    credits: int | None = None
    reason: str | None = None
    attempts: int = 0
    pending_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    account: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    pending_server_at: datetime | None = None
    pending_uncertainty: float | None = None
    foreign_ids: frozenset[str] = frozenset()

    def leased_by_other(self, owner: str, now: datetime) -> bool:
        """Whether another owner holds a live lease on this row."""
        return (
            self.lease_owner not in (None, owner)
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


def _ledger_table(name: str, schema: str | None) -> Table:
    import sqlalchemy as sa

    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("campaign_id", sa.String(MAX_CAMPAIGN_LENGTH), primary_key=True),
        sa.Column("recipient", sa.String(32), primary_key=True),
        sa.Column("message_hash", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("from_number", sa.String(32)),
        sa.Column("message_id", sa.String(64), index=True),
        sa.Column("credits", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("pending_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(64)),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("pending_server_at", sa.DateTime(timezone=True)),
        sa.Column("pending_uncertainty", sa.Float),
        sa.Column("foreign_ids", sa.Text),
    )


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once; FULL sync makes each commit durable; wait when busy."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


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
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        schema: str | None = None,
        owns_engine: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.table = _ledger_table(table_name, schema)
        self.clock = clock
        self._owns_engine = owns_engine
        # SQLite allows one writer: serialise this process' writers instead of meeting "database is locked".
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
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
        import sqlalchemy as sa

        file = Path(path) if path is not None else default_ledger_path()
        file.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(f"sqlite:///{file}", connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _tune_sqlite)
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
        from airflow.sdk import BaseHook

        from airflow_provider_smsnexus.exceptions import SMSNexusError

        hook = BaseHook.get_connection(conn_id).get_hook()
        get_engine = getattr(hook, "get_sqlalchemy_engine", None)
        if get_engine is None:
            raise SMSNexusError(
                f"ledger_conn_id={conn_id!r} is a {type(hook).__name__} connection, which gives no SQLAlchemy "
                "engine: use a SQL database connection (PostgreSQL, MySQL, ...)."
            )
        engine = get_engine(engine_kwargs={"pool_pre_ping": True})
        if engine.dialect.name == "sqlite":
            import sqlalchemy as sa

            sa.event.listen(engine, "connect", _tune_sqlite)
        return cls(engine, owns_engine=True, **kwargs)

    def close(self) -> None:
        """Release the database connections (when the ledger created its engine)."""
        if self._owns_engine:
            self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the table when missing, add the columns an older version lacked; safe when racing."""
        if self._table_ready:
            return
        import sqlalchemy as sa

        try:
            self.table.metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created it between our check and our CREATE: fine when it is there now.
            if not self._table_exists():
                raise
        self._upgrade()
        self._table_ready = True

    def _upgrade(self) -> None:
        import sqlalchemy as sa

        present = {c["name"] for c in sa.inspect(self.engine).get_columns(self.table.name, self.table.schema)}
        preparer = self.engine.dialect.identifier_preparer
        for name in UPGRADE_COLUMNS:
            if name in present:
                continue
            column = self.table.c[name]
            kind = column.type.compile(dialect=self.engine.dialect)
            statement = (
                f"ALTER TABLE {preparer.format_table(self.table)} ADD COLUMN {preparer.quote(name)} {kind}"
            )
            log.info("Upgrading the send ledger %s: adding column %s", self.table.fullname, name)
            try:
                with self._writing(), self.engine.begin() as conn:
                    conn.execute(sa.text(statement))
            except sa.exc.DBAPIError:
                # Another process added it at the same moment: fine when it is there now.
                columns = sa.inspect(self.engine).get_columns(self.table.name, self.table.schema)
                if name not in {c["name"] for c in columns}:
                    raise

    def _table_exists(self) -> bool:
        import sqlalchemy as sa

        return sa.inspect(self.engine).has_table(self.table.name, schema=self.table.schema)

    # -- reads ----------------------------------------------------------------------------------------

    def entries(self, campaign_id: str, recipients: Iterable[str] | None = None) -> list[LedgerEntry]:
        """
        The ledger rows of a campaign, optionally only those of some recipients.

        Creates nothing and returns ``[]`` when the table does not exist yet (a dry run writes nothing).

        :param campaign_id: the campaign.
        :param recipients: keep only rows of these normalised recipients (None: all).
        """
        import sqlalchemy as sa

        if not self._table_ready:
            if not self._table_exists():
                return []
            self.create_table()
        wanted = set(recipients) if recipients is not None else None
        query = sa.select(self.table).where(self.table.c.campaign_id == campaign_key(campaign_id))
        found = []
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                if wanted is None or row.recipient in wanted:
                    found.append(self._entry(row))
        return found

    def get(self, campaign_id: str, recipient: str, message_hash: str) -> LedgerEntry | None:
        """One ledger row, or None."""
        import sqlalchemy as sa

        if not self._table_ready:
            if not self._table_exists():
                return None
            self.create_table()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.table).where(*self._key(campaign_id, recipient, message_hash))
            ).first()
        return self._entry(row) if row is not None else None

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

    # -- the lease ------------------------------------------------------------------------------------

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
        import sqlalchemy as sa

        self.create_table()
        now = self.clock()
        expires = now + timedelta(seconds=lease_seconds)
        table = self.table
        try:
            with self._writing(), self.engine.begin() as conn:
                conn.execute(
                    table.insert().values(
                        campaign_id=campaign_key(campaign_id),
                        recipient=recipient,
                        message_hash=message_hash,
                        state=STATE_CLAIMED,
                        from_number=from_number,
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                        account=account,
                        lease_owner=owner,
                        lease_expires_at=expires,
                    )
                )
        except sa.exc.IntegrityError:
            free = sa.or_(
                table.c.lease_owner == owner,
                table.c.lease_owner.is_(None),
                table.c.lease_expires_at.is_(None),
                table.c.lease_expires_at <= now,
            )
            values: dict[str, Any] = {
                "lease_owner": owner,
                "lease_expires_at": expires,
                "account": account,
                "updated_at": now,
            }
            with self._writing(), self.engine.begin() as conn:
                result = conn.execute(
                    table.update()
                    .where(
                        *self._key(campaign_id, recipient, message_hash),
                        table.c.state.notin_((STATE_SENT, STATE_UNKNOWN)),
                        free,
                    )
                    .values(**values)
                )
            if result.rowcount != 1:
                return None
        return self.get(campaign_id, recipient, message_hash)

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend every live lease of ``owner`` (one UPDATE); an expired lease is never revived.

        :return: how many rows it still holds.
        """
        self.create_table()
        now = self.clock()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
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

    def release(self, owner: str) -> int:
        """End every lease of ``owner`` (its rows become free to claim, or to settle when pending)."""
        self.create_table()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.lease_owner == owner, table.c.lease_expires_at.isnot(None))
                .values(lease_expires_at=None)
            )
        return result.rowcount

    # -- fenced writes of the owner (each committed on its own) ------------------------------------------

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
    ) -> datetime | None:
        """
        Record that the owner's request is about to leave; call it *right before* the request.

        :param server_at: this moment estimated in the server's clock; ``uncertainty`` its half-width (s).
        :param foreign_ids: ids of messages with this text to this recipient listed before this mark (never
            this attempt's own, so a lookup of this mark skips them).

        :return: the mark's time (the owner's clock), or None when ``owner`` no longer holds a live lease
            (nothing may then be sent).
        """
        table = self.table
        now = self.clock()
        done = self._fenced(
            campaign_id,
            recipient,
            message_hash,
            owner,
            now,
            state=STATE_PENDING,
            attempts=table.c.attempts + 1,
            pending_at=now,
            pending_server_at=server_at,
            pending_uncertainty=uncertainty,
            foreign_ids=",".join(sorted(set(foreign_ids))) or None,
            reason=None,
        )
        return now if done else None

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
        return self._fenced(
            campaign_id,
            recipient,
            message_hash,
            owner,
            self.clock(),
            state=STATE_SENT,
            message_id=None if message_id is None else str(message_id),
            credits=credits,
            reason=None,
            lease_expires_at=None,
        )

    def mark_failed(
        self, campaign_id: str, recipient: str, message_hash: str, *, owner: str, reason: str
    ) -> bool:
        """Record that the message provably was not sent (may be sent again); False when the lease was lost."""
        return self._fenced(
            campaign_id,
            recipient,
            message_hash,
            owner,
            self.clock(),
            state=STATE_FAILED,
            reason=reason[:MAX_REASON_LENGTH],
            lease_expires_at=None,
        )

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
        return self._fenced(
            campaign_id,
            recipient,
            message_hash,
            owner,
            self.clock(),
            state=STATE_UNKNOWN if ambiguous else STATE_PENDING,
            reason=reason[:MAX_REASON_LENGTH],
        )

    def _fenced(
        self, campaign_id: str, recipient: str, message_hash: str, owner: str, now: datetime, **values: Any
    ) -> bool:
        """One UPDATE that only the live owner of a row that is not sent can make."""
        self.create_table()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    *self._key(campaign_id, recipient, message_hash),
                    table.c.lease_owner == owner,
                    table.c.lease_expires_at > now,
                    table.c.state != STATE_SENT,
                )
                .values(updated_at=now, **values)
            )
        if result.rowcount != 1:
            log.warning(
                "Send ledger: %s no longer holds the lease on a row of campaign %s (%s); not writing %s",
                owner,
                campaign_id,
                recipient,
                values.get("state"),
            )
        return result.rowcount == 1

    # -- helpers --------------------------------------------------------------------------------------

    def _writing(self) -> Any:
        return self._write_lock if self._write_lock is not None else nullcontext()

    def _key(self, campaign_id: str, recipient: str, message_hash: str) -> tuple[Any, ...]:
        columns = self.table.c
        return (
            columns.campaign_id == campaign_key(campaign_id),
            columns.recipient == recipient,
            columns.message_hash == message_hash,
        )

    @staticmethod
    def _entry(row: Any) -> LedgerEntry:
        return LedgerEntry(
            campaign_id=row.campaign_id,
            recipient=row.recipient,
            message_hash=row.message_hash,
            state=row.state,
            from_number=row.from_number,
            message_id=row.message_id,
            credits=row.credits,
            reason=row.reason,
            attempts=row.attempts,
            pending_at=_aware(row.pending_at),
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            account=row.account,
            lease_owner=row.lease_owner,
            lease_expires_at=_aware(row.lease_expires_at),
            pending_server_at=_aware(row.pending_server_at),
            pending_uncertainty=row.pending_uncertainty,
            foreign_ids=frozenset(filter(None, (row.foreign_ids or "").split(","))),
        )
