"""The send ledger: a durable record of every message a campaign sends, so that none is sent twice.

One row per (campaign, normalised recipient, message hash), in one of three states:

``pending``
    committed *before* the send request leaves; a row still pending later means the request may or may
    not have reached SMS Nexus (the process died, or the answer was lost) and must be settled by looking
    for the message in ``/api/messages`` before anything is resent;
``sent``
    committed after SMS Nexus answered with the message (its id and credits are kept);
``failed``
    committed after SMS Nexus refused the message (422 and the like): provably not sent, may be retried.

Every change is its own committed transaction, so a killed process leaves the ledger as it was after
the last completed step. The table lives in any SQL database SQLAlchemy can reach (an Airflow SQL
connection such as PostgreSQL, shared by several workers), or in an embedded SQLite file under
``AIRFLOW_HOME`` by default. Several processes may work on one campaign at once as long as each works on
its own recipients (mapped partitions do); a claim on a row is optimistic (``attempts`` acts as a
version), so two processes that do collide on one row never both send it.

.. seealso:: The "Send ledger" section of the README.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Table
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

STATE_PENDING = "pending"
STATE_SENT = "sent"
STATE_FAILED = "failed"

#: The ledger table's default name.
DEFAULT_TABLE_NAME = "smsnexus_send_ledger"
#: Longest reason kept in the ledger (server messages can be long).
MAX_REASON_LENGTH = 1000
#: Longest campaign id stored as is (see :func:`campaign_key`).
MAX_CAMPAIGN_LENGTH = 250


def campaign_key(campaign_id: str) -> str:
    """The campaign as stored: itself when it fits the column, else its start and a hash of the whole.

    A default campaign id joins dag_id, task_id and run_id (up to 250 characters each); the key column
    holds 250, which every database can index.
    """
    if len(campaign_id) <= MAX_CAMPAIGN_LENGTH:
        return campaign_id
    digest = hashlib.sha256(campaign_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{campaign_id[: MAX_CAMPAIGN_LENGTH - 33]}~{digest}"


def default_ledger_path() -> Path:
    """The embedded ledger's file: ``$AIRFLOW_HOME/smsnexus/send_ledger.db`` (``~/airflow`` by default)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(home).expanduser() / "smsnexus" / "send_ledger.db"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: everything the ledger writes is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row.

    :param campaign_id: the campaign (as stored: see :func:`campaign_key`).
    :param recipient: the normalised (E.164) recipient.
    :param message_hash: the hash of sender and text (see :func:`~airflow_provider_smsnexus.utils.campaign.message_hash`).
    :param state: ``pending``, ``sent`` or ``failed``.
    :param from_number: the sender used.
    :param message_id: SMS Nexus' id of the message once sent.
    :param credits: credits SMS Nexus charged once sent.
    :param reason: why the row failed, or why a pending row could not be settled.
    :param attempts: how many times the row was marked pending (each mark may precede one request).
    :param pending_at: when the row was last marked pending (UTC).
    :param created_at: when the row was first written (UTC).
    :param updated_at: when the row last changed (UTC).
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
    The durable record of a campaign's sends (see the module documentation for the states).

    Thread-safe: one ledger may be shared by a pool of sending threads. Build it with
    :meth:`for_connection` (an Airflow SQL connection, or the embedded SQLite file when None),
    :meth:`sqlite`, or directly from a SQLAlchemy engine.

    :param engine: the SQLAlchemy engine of the database that holds the table.
    :param table_name: the table's name (created when missing).
    :param schema: the table's schema, for databases that have schemas.
    :param owns_engine: dispose of the engine in :meth:`close`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        schema: str | None = None,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.table = _ledger_table(table_name, schema)
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
        """Create the table when it does not exist; safe when several processes do it at once."""
        if self._table_ready:
            return
        import sqlalchemy as sa

        try:
            self.table.metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created it between our check and our CREATE: fine when it is there now.
            if not self._table_exists():
                raise
        self._table_ready = True

    def _table_exists(self) -> bool:
        import sqlalchemy as sa

        return sa.inspect(self.engine).has_table(self.table.name, schema=self.table.schema)

    # -- reads ----------------------------------------------------------------------------------------

    def entries(self, campaign_id: str, recipients: Iterable[str] | None = None) -> list[LedgerEntry]:
        """
        The ledger rows of a campaign, optionally only those of some recipients.

        Reads nothing and returns ``[]`` when the table does not exist yet (a dry run creates nothing).

        :param campaign_id: the campaign.
        :param recipients: keep only rows of these normalised recipients (None: all).
        """
        import sqlalchemy as sa

        if not self._table_ready and not self._table_exists():
            return []
        wanted = set(recipients) if recipients is not None else None
        table = self.table
        query = sa.select(table).where(table.c.campaign_id == campaign_key(campaign_id))
        found = []
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                if wanted is None or row.recipient in wanted:
                    found.append(self._entry(row))
        return found

    def get(self, campaign_id: str, recipient: str, message_hash: str) -> LedgerEntry | None:
        """One ledger row, or None."""
        import sqlalchemy as sa

        if not self._table_ready and not self._table_exists():
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.table).where(*self._key(campaign_id, recipient, message_hash))
            ).first()
        return self._entry(row) if row is not None else None

    def known_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        """Which of these SMS Nexus message ids the ledger already holds for some row (any campaign)."""
        import sqlalchemy as sa

        ids = sorted({str(i) for i in message_ids})
        if not ids:
            return set()
        self.create_table()
        known: set[str] = set()
        column = self.table.c.message_id
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                known.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        return known

    # -- writes (each one committed on its own) ---------------------------------------------------------

    def mark_pending(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        from_number: str,
        *,
        seen_attempts: int | None,
    ) -> datetime | None:
        """
        Claim a row for one send request and commit the claim; call this *before* the request.

        The claim succeeds only when the row is still as the caller last saw it: absent
        (``seen_attempts=None``), or present, not sent, with ``attempts == seen_attempts``. So two
        processes that happen to race for one row can never both send it.

        :param seen_attempts: the ``attempts`` of the row as read before, or None when there was no row.
        :return: the pending mark's time (UTC), or None when the claim failed (the row changed meanwhile).
        """
        import sqlalchemy as sa

        self.create_table()
        now = _utcnow()
        table = self.table
        if seen_attempts is None:
            try:
                with self._writing(), self.engine.begin() as conn:
                    conn.execute(
                        table.insert().values(
                            campaign_id=campaign_key(campaign_id),
                            recipient=recipient,
                            message_hash=message_hash,
                            state=STATE_PENDING,
                            from_number=from_number,
                            attempts=1,
                            pending_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except sa.exc.IntegrityError:
                return None
            return now
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    *self._key(campaign_id, recipient, message_hash),
                    table.c.state != STATE_SENT,
                    table.c.attempts == seen_attempts,
                )
                .values(
                    state=STATE_PENDING,
                    from_number=from_number,
                    attempts=table.c.attempts + 1,
                    pending_at=now,
                    reason=None,
                    updated_at=now,
                )
            )
        return now if result.rowcount == 1 else None

    def mark_sent(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        message_id: Any,
        credits: int | None,
        from_number: str | None = None,
    ) -> None:
        """
        Record that SMS Nexus holds the message (its answer, or a lookup found it); committed at once.

        Creates the row when it is missing (a message found for a row this ledger never saw).
        """
        import sqlalchemy as sa

        self.create_table()
        now = _utcnow()
        values = {
            "state": STATE_SENT,
            "message_id": None if message_id is None else str(message_id),
            "credits": credits,
            "reason": None,
            "updated_at": now,
        }
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                self.table.update().where(*self._key(campaign_id, recipient, message_hash)).values(**values)
            )
        if result.rowcount:
            return
        try:
            with self._writing(), self.engine.begin() as conn:
                conn.execute(
                    self.table.insert().values(
                        campaign_id=campaign_key(campaign_id),
                        recipient=recipient,
                        message_hash=message_hash,
                        from_number=from_number,
                        attempts=0,
                        created_at=now,
                        **values,
                    )
                )
        except sa.exc.IntegrityError:  # a concurrent writer inserted the row first: record the send on it
            self.mark_sent(campaign_id, recipient, message_hash, message_id=message_id, credits=credits)

    def mark_failed(self, campaign_id: str, recipient: str, message_hash: str, *, reason: str) -> None:
        """Record that SMS Nexus refused the message (provably not sent); never overwrites ``sent``."""
        self._update_unsent(campaign_id, recipient, message_hash, state=STATE_FAILED, reason=reason)

    def note_pending(self, campaign_id: str, recipient: str, message_hash: str, *, reason: str) -> None:
        """Keep a row pending and record why it could not be settled (e.g. the lookup failed)."""
        self._update_unsent(campaign_id, recipient, message_hash, state=STATE_PENDING, reason=reason)

    def _update_unsent(
        self, campaign_id: str, recipient: str, message_hash: str, *, state: str, reason: str
    ) -> None:
        self.create_table()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(*self._key(campaign_id, recipient, message_hash), table.c.state != STATE_SENT)
                .values(state=state, reason=reason[:MAX_REASON_LENGTH], updated_at=_utcnow())
            )

    # -- helpers --------------------------------------------------------------------------------------

    def _writing(self) -> Any:
        from contextlib import nullcontext

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
        )
