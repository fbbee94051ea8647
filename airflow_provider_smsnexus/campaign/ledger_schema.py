"""The send ledger's table: its states, columns and rows as :class:`LedgerEntry`, and creating or upgrading it.

One row per (campaign, normalised recipient, message hash), in one of these states:

``claimed``
    leased by one attempt; no request has left for it yet (a dead owner's claimed row is simply sent again);
``pending``
    the request may have left: written by the owner right before it does (``pending_at``, and its estimate
    in the server's time), with the moment after which the owner will not let it leave (``send_by``); a
    pending row whose owner died is settled by looking it up in ``/api/messages`` once ``send_by``, the
    request's longest time and the listing delay have passed;
``sent``
    SMS Nexus holds the message (from its answer, or found by a lookup): id and credits kept;
``failed``
    SMS Nexus refused it, or it provably did not arrive: may be claimed and sent again;
``unknown``
    the evidence is ambiguous (two messages could be this row's): never resent automatically.

.. seealso:: :mod:`airflow_provider_smsnexus.campaign.ledger`, the ledger itself (leases, reads, fenced writes).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

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
    "send_by",
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


def aware(value: datetime | None) -> datetime | None:
    """A datetime read back from the table, aware: SQLite hands back naive datetimes: everything the ledger writes is UTC."""
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
    :param send_by: the pending mark's fence: the owner lets its request leave before this moment (the
        owner's clock, UTC) or not at all; an attempt that takes the row over waits until it, plus the
        request's longest time, plus the listing delay, before looking the message up.
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
    send_by: datetime | None = None

    def leased_by_other(self, owner: str, now: datetime) -> bool:
        """Whether another owner holds a live lease on this row."""
        return (
            self.lease_owner not in (None, owner)
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


def ledger_table(name: str, schema: str | None) -> Table:
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
        sa.Column("send_by", sa.DateTime(timezone=True)),
    )


#: How often, and how far apart (s), a connection tries again to switch a new SQLite file to WAL.
WAL_SWITCH_TRIES = 200
WAL_SWITCH_PAUSE = 0.01


def tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once; FULL sync makes each commit durable; wait when busy."""
    import sqlite3
    import time

    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    for attempt in range(WAL_SWITCH_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            # Connections switching a new file at once: SQLite refuses all but one at once, without waiting.
            if "locked" not in str(exc) or attempt == WAL_SWITCH_TRIES - 1:
                raise
            time.sleep(WAL_SWITCH_PAUSE)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def entry_of(row: Any) -> LedgerEntry:
    """A row of the table as a :class:`LedgerEntry`."""
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
        pending_at=aware(row.pending_at),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        account=row.account,
        lease_owner=row.lease_owner,
        lease_expires_at=aware(row.lease_expires_at),
        pending_server_at=aware(row.pending_server_at),
        pending_uncertainty=row.pending_uncertainty,
        foreign_ids=frozenset(filter(None, (row.foreign_ids or "").split(","))),
        send_by=aware(row.send_by),
    )


def create_or_upgrade(
    engine: Engine, table: Table, writing: Callable[[], AbstractContextManager[Any]]
) -> None:
    """Create the table when missing, add the columns an older version lacked; safe when racing.

    :param writing: the ledger's write lock (SQLite allows one writer at a time).
    """
    import sqlalchemy as sa

    try:
        table.metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        # Another process created it between our check and our CREATE: fine when it is there now.
        if not table_exists(engine, table):
            raise
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name, table.schema)}
    preparer = engine.dialect.identifier_preparer
    for name in UPGRADE_COLUMNS:
        if name in present:
            continue
        kind = table.c[name].type.compile(dialect=engine.dialect)
        statement = f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.quote(name)} {kind}"
        log.info("Upgrading the send ledger %s: adding column %s", table.fullname, name)
        try:
            with writing(), engine.begin() as conn:
                conn.execute(sa.text(statement))
        except sa.exc.DBAPIError:
            # Another process added it at the same moment: fine when it is there now.
            if name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name, table.schema)}:
                raise


def table_exists(engine: Engine, table: Table) -> bool:
    """Whether the table exists (nothing is created)."""
    import sqlalchemy as sa

    return sa.inspect(engine).has_table(table.name, schema=table.schema)


def sqlite_engine(file: Path) -> Engine:
    """An engine on an SQLite file, created with its directory when missing, tuned by :func:`tune_sqlite`."""
    import sqlalchemy as sa

    file.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{file}", connect_args={"timeout": 60})
    sa.event.listen(engine, "connect", tune_sqlite)
    return engine


def connection_engine(conn_id: str) -> Engine:
    """The engine of the ledger's Airflow SQL connection (its hook's ``get_sqlalchemy_engine()``)."""
    from airflow_provider_smsnexus.utils.sql import connection_engine as sql_connection_engine

    engine = sql_connection_engine(conn_id, parameter="ledger_conn_id")
    if engine.dialect.name == "sqlite":
        import sqlalchemy as sa

        sa.event.listen(engine, "connect", tune_sqlite)
    return engine


# -- prepared statements: built once per ledger, so a row's write is one round trip with no SQL to build --------


def key_params(campaign_key: str, recipient: str, message_hash: str) -> dict[str, str]:
    """The parameters that name one row in :func:`key_select`, :func:`fenced_update` and :func:`claim_update`."""
    return {"k_campaign": campaign_key, "k_recipient": recipient, "k_hash": message_hash}


def _key_match(table: Table) -> tuple[Any, ...]:
    """The WHERE terms of one row by its key, from the parameters of :func:`key_params`."""
    import sqlalchemy as sa

    c = table.c
    return (
        c.campaign_id == sa.bindparam("k_campaign", type_=c.campaign_id.type),
        c.recipient == sa.bindparam("k_recipient", type_=c.recipient.type),
        c.message_hash == sa.bindparam("k_hash", type_=c.message_hash.type),
    )


def key_select(table: Table) -> Any:
    """The SELECT of one row by its key (parameters: :func:`key_params`)."""
    import sqlalchemy as sa

    return sa.select(table).where(*_key_match(table))


def fenced_update(table: Table, names: tuple[str, ...], *, count_attempt: bool = False) -> Any:
    """The fenced UPDATE of one row by its live owner (a row not sent), setting ``names`` from parameters.

    Parameters: :func:`key_params`, ``k_owner``, ``k_now``, and ``v_<name>`` for each name. ``count_attempt``
    adds one to ``attempts`` (a pending mark).
    """
    import sqlalchemy as sa

    c = table.c
    values: dict[str, Any] = {name: sa.bindparam(f"v_{name}", type_=c[name].type) for name in names}
    if count_attempt:
        values["attempts"] = c.attempts + 1
    return (
        table.update()
        .where(
            *_key_match(table),
            c.lease_owner == sa.bindparam("k_owner", type_=c.lease_owner.type),
            c.lease_expires_at > sa.bindparam("k_now", type_=c.lease_expires_at.type),
            c.state != STATE_SENT,
        )
        .values(values)
    )


def claim_update(table: Table) -> Any:
    """The UPDATE that leases one existing row to ``k_owner`` when it is neither sent nor unknown and its lease
    is free (absent, expired, released, or already the owner's).

    Parameters: :func:`key_params`, ``k_owner``, ``k_now``, ``v_expires`` and ``v_account``.
    """
    import sqlalchemy as sa

    c = table.c
    now = sa.bindparam("k_now", type_=c.lease_expires_at.type)
    owner = sa.bindparam("k_owner", type_=c.lease_owner.type)
    return (
        table.update()
        .where(
            *_key_match(table),
            c.state != STATE_SENT,  # two comparisons, not NOT IN: the SQL must not depend on the values
            c.state != STATE_UNKNOWN,
            sa.or_(
                c.lease_owner == owner,
                c.lease_owner.is_(None),
                c.lease_expires_at.is_(None),
                c.lease_expires_at <= now,
            ),
        )
        .values(
            lease_owner=owner,
            lease_expires_at=sa.bindparam("v_expires", type_=c.lease_expires_at.type),
            account=sa.bindparam("v_account", type_=c.account.type),
            updated_at=now,
        )
    )


def insert_new(engine: Engine, table: Table) -> Any | None:
    """An INSERT that skips rows already present (a claim race is then settled by :func:`claim_update`), on the
    dialects that have one (SQLite, PostgreSQL); None elsewhere."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert(table).on_conflict_do_nothing(index_elements=["campaign_id", "recipient", "message_hash"])


def statement_for(statements: dict[Any, Any], key: Any, table: Table, engine: Engine | None = None) -> Any:
    """
    One of the ledger's statements, built on first use and kept in ``statements`` (one dict per ledger, whose
    statements its DB-API connection compiles once).

    :param key: ``"key_select"``, ``"claim"``, ``"insert"`` (needs ``engine``: the dialect's INSERT), or
        ``("fenced", names, count_attempt)``.
    """
    if key in statements:
        return statements[key]
    if key == "key_select":
        built = key_select(table)
    elif key == "claim":
        built = claim_update(table)
    elif key == "insert":
        built = insert_new(engine, table) if engine is not None else None
    else:
        _, names, count_attempt = key
        built = fenced_update(table, names, count_attempt=count_attempt)
    statements[key] = built
    return built
