"""How the send ledger runs its transactions: on the DB-API connection directly where the driver is known
(SQLite, psycopg2, psycopg), each statement compiled once; through SQLAlchemy elsewhere; and the single writes
of concurrent threads committed together (a group commit).

The ledger's hot statements (claims, pending marks, ``sent`` marks) are a few statements executed thousands of
times, and on SQLite SQLAlchemy's work per execute costs more than the statement. They stay defined once, as
SQLAlchemy constructs (:mod:`~airflow_provider_smsnexus.campaign.ledger_schema`): compiled for the engine's
dialect once, their parameters converted by the type processors SQLAlchemy itself uses, so that a row written
here reads back through SQLAlchemy unchanged. A database error is raised as SQLAlchemy's ``DBAPIError``, as
an execute through SQLAlchemy would raise it.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext, suppress
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

#: The DB-API drivers whose connections the ledger uses directly (tested: SQLite, PostgreSQL's two drivers).
DIRECT_DRIVERS = frozenset({"pysqlite", "psycopg2", "psycopg"})
#: SQLSTATEs after which a transaction is simply run again: a deadlock, a serialisation failure.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

#: One write: a statement, its parameters, and a key that orders the rows it locks (see :class:`GroupCommit`).
Write = tuple[Any, "Mapping[str, Any]", tuple[Any, ...]]


class Compiled:
    """A statement compiled once for a dialect: its SQL, and how to turn named values into its parameters."""

    __slots__ = ("_binds", "_columns", "_dialect", "_positional", "_results", "sql")

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string:  # an IN of a list: its SQL depends on the values
            raise TypeError(f"not a statement with fixed SQL: {compiled.string[:200]}")
        self.sql = compiled.string
        self._positional = dialect.positional
        names = compiled.positiontup if dialect.positional else list(compiled.params)
        escaped = compiled.escaped_bind_names
        self._binds = [
            (
                escaped.get(name, name),
                name,
                compiled.params.get(name),  # a literal of the statement (or None: given per execute)
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names
        ]
        self._dialect = dialect
        self._columns = list(getattr(statement, "selected_columns", ()))
        self._results: list[tuple[str, Any]] | None = None

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The DB-API parameters for ``values`` (by bind name), converted as SQLAlchemy converts them."""
        get = values.get
        if self._positional:
            return tuple(
                process(get(name, default)) if process else get(name, default)
                for _, name, default, process in self._binds
            )
        return {
            key: process(get(name, default)) if process else get(name, default)
            for key, name, default, process in self._binds
        }

    def row(self, values: Sequence[Any], description: Sequence[Any]) -> SimpleNamespace:
        """A fetched row, by column name, converted as SQLAlchemy converts it (``description``: the cursor's,
        whose type codes some processors need)."""
        if self._results is None:
            dialect = self._dialect
            self._results = [
                (column.key, column.type.dialect_impl(dialect).result_processor(dialect, described[1]))
                for column, described in zip(self._columns, description)
            ]
        return SimpleNamespace(
            **{
                name: process(value) if process else value
                for (name, process), value in zip(self._results, values)
            }
        )


class EngineTransaction:
    """A transaction through SQLAlchemy (the dialects whose driver the ledger does not use directly)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def execute(self, statement: Any, values: Mapping[str, Any]) -> int:
        """Execute one statement; return its row count."""
        return self._conn.execute(statement, values).rowcount

    def rows(self, statement: Any, values: Mapping[str, Any]) -> list[Any]:
        """Execute one query; return its rows (by column name)."""
        return list(self._conn.execute(statement, values))


class DirectTransaction:
    """A transaction on the DB-API cursor of :class:`DirectConnection` (same methods as
    :class:`EngineTransaction`)."""

    def __init__(self, connection: DirectConnection, cursor: Any) -> None:
        self._connection = connection
        self._cursor = cursor
        self.last: tuple[str, Any] = ("", None)  # for the error, as SQLAlchemy reports it

    def execute(self, statement: Any, values: Mapping[str, Any]) -> int:
        compiled = self._connection.compiled(statement)
        parameters = compiled.parameters(values)
        self.last = (compiled.sql, parameters)
        self._cursor.execute(compiled.sql, parameters)
        return self._cursor.rowcount

    def rows(self, statement: Any, values: Mapping[str, Any]) -> list[Any]:
        compiled = self._connection.compiled(statement)
        parameters = compiled.parameters(values)
        self.last = (compiled.sql, parameters)
        self._cursor.execute(compiled.sql, parameters)
        return [compiled.row(row, self._cursor.description) for row in self._cursor.fetchall()]


class DirectConnection:
    """
    One connection of the engine's pool, held for the ledger's transactions and used through its DB-API driver.

    One transaction at a time (``lock``: the ledger's SQLite write lock, so that it also excludes the
    ledger's writes through SQLAlchemy). On PostgreSQL the connection is in autocommit while held: a
    transaction of one statement is then one round trip (committed, and as durable as any commit, when the
    statement returns), and a longer one says ``BEGIN`` and ``COMMIT`` itself. A connection the database
    dropped is invalidated, and the next transaction takes a fresh one from the pool (whose pre-ping, where
    set, checks it).

    :param engine: the ledger's engine (its driver is in :data:`DIRECT_DRIVERS`).
    :param lock: serialises the transactions.
    """

    def __init__(self, engine: Engine, lock: Any) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._lock = lock
        self._pooled: Any = None
        self._compiled: dict[Any, Compiled] = {}
        self._autocommit = self.dialect.name == "postgresql"
        # SQLite: the write lock first, so that the busy timeout covers the whole transaction.
        self._begin = "BEGIN IMMEDIATE" if self.dialect.name == "sqlite" else "BEGIN"

    @staticmethod
    def supports(engine: Engine) -> bool:
        """Whether the ledger uses this engine's driver directly."""
        return engine.dialect.driver in DIRECT_DRIVERS

    def compiled(self, statement: Any) -> Compiled:
        """``statement`` compiled for this dialect, once."""
        found = self._compiled.get(statement)
        if found is None:
            found = self._compiled[statement] = Compiled(statement, self.dialect)
        return found

    @contextmanager
    def transaction(self, *, alone: bool = False) -> Iterator[DirectTransaction]:
        """One transaction: committed when the block ends, rolled back (and raised) when it raises.

        :param alone: the block executes one statement (on PostgreSQL it is then its own transaction).
        """
        with self._lock:
            dbapi_connection = self._connection()
            cursor = dbapi_connection.cursor()
            transaction = DirectTransaction(self, cursor)
            bracket = not (alone and self._autocommit)
            try:
                if bracket:
                    transaction.last = (self._begin, None)
                    cursor.execute(self._begin)
                yield transaction
                if bracket:
                    transaction.last = ("COMMIT", None)
                    if self._autocommit:
                        cursor.execute("COMMIT")
                    else:
                        dbapi_connection.commit()
            except BaseException as exc:
                self._roll_back(dbapi_connection, cursor, exc, transaction.last, bracket=bracket)
                raise
            finally:
                with suppress(Exception):  # a dropped connection's cursor: nothing to close
                    cursor.close()

    def _connection(self) -> Any:
        if self._pooled is None:
            pooled = self.engine.raw_connection()
            if self._autocommit:
                pooled.driver_connection.autocommit = True
            self._pooled = pooled
        return self._pooled.driver_connection

    def _roll_back(
        self, dbapi_connection: Any, cursor: Any, exc: BaseException, last: tuple[str, Any], *, bracket: bool
    ) -> None:
        """Undo the transaction; for a database error, raise it as SQLAlchemy would (invalidating a dropped
        connection)."""
        import sqlalchemy as sa

        dbapi = self.dialect.loaded_dbapi
        dropped = isinstance(exc, dbapi.Error) and self.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if not dropped and bracket:
            try:
                if self._autocommit:
                    dbapi_connection.cursor().execute("ROLLBACK")
                else:
                    dbapi_connection.rollback()
            except dbapi.Error:
                dropped = True
        if dropped:
            pooled, self._pooled = self._pooled, None
            pooled.invalidate()
        if isinstance(exc, dbapi.Error):
            statement, parameters = last
            raise sa.exc.DBAPIError.instance(
                statement, parameters, exc, dbapi.Error, connection_invalidated=dropped, dialect=self.dialect
            ) from exc

    def close(self) -> None:
        """Give the connection back to the pool (as the pool handed it out: not in autocommit)."""
        with self._lock:
            pooled, self._pooled = self._pooled, None
            if pooled is None:
                return
            if self._autocommit:
                try:
                    pooled.driver_connection.autocommit = False
                except Exception:  # dropped meanwhile: the pool must not hand it out again
                    pooled.invalidate()
                    return
            pooled.close()


def retryable(exc: BaseException) -> bool:
    """Whether a failed transaction may simply be run again (a deadlock or serialisation failure, rolled back
    whole by the database)."""
    orig = getattr(exc, "orig", exc)
    return (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) in RETRYABLE_SQLSTATES


class _Waiter:
    __slots__ = ("counts", "done", "error", "lead", "writes")

    def __init__(self, writes: Sequence[Write]) -> None:
        self.writes = writes
        self.done: threading.Event | None = None  # only a caller that waits needs one
        self.lead = False
        self.counts: list[int] = []
        self.error: BaseException | None = None


class GroupCommit:
    """
    Commits the writes that concurrent threads submit at about the same moment in one transaction.

    The first caller commits its writes at once (no wait: alone, a write costs what it did); callers arriving
    while a commit runs queue up, and the first of them commits the whole queue next, in one transaction.
    Every caller returns only once its own writes are committed (or raises their error): a pending mark
    grouped here is durable before its request leaves, as one committed alone would be. The rows are
    written in key order (see :func:`in_key_order`). A group that fails is rolled back whole and each
    caller's writes are run again alone, so that one caller's bad write fails no other's.

    :param run: executes writes in one transaction (committed when it returns); returns their row counts.
    """

    def __init__(self, run: Callable[[Sequence[Write]], list[int]]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False

    def submit(self, writes: Sequence[Write]) -> list[int]:
        """Commit ``writes`` (with those of other callers waiting now); return their row counts."""
        me = _Waiter(writes)
        with self._lock:
            self._queue.append(me)
            lead = not self._busy
            self._busy = True
            if not lead:
                me.done = threading.Event()
        if me.done is not None:
            me.done.wait()
        if lead or me.lead:
            self._commit_queue()
        if me.error is not None:
            raise me.error
        return me.counts

    def _commit_queue(self) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            self._commit(group)
        finally:
            with self._lock:
                if self._queue:  # the next group's first caller commits it
                    self._queue[0].lead = True
                    self._queue[0].done.set()  # type: ignore[union-attr]  # a queued caller waits
                else:
                    self._busy = False
            for waiter in group:
                if waiter.error is None and len(waiter.counts) != len(waiter.writes):
                    # Interrupted: whether it was committed is unknown, so it counts as not durable.
                    waiter.error = RuntimeError("the ledger's group commit was interrupted")
                if waiter.done is not None:
                    waiter.done.set()

    def _commit(self, group: Sequence[_Waiter]) -> None:
        writes = [write for waiter in group for write in waiter.writes]
        try:
            counts = in_key_order(self._run, writes)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for waiter in group:  # the group was rolled back whole: each caller's writes alone
                try:
                    waiter.counts = in_key_order(self._run, waiter.writes)
                except Exception as alone:
                    waiter.error = alone
            return
        start = 0
        for waiter in group:
            waiter.counts = counts[start : start + len(waiter.writes)]
            start += len(waiter.writes)


def in_key_order(run: Callable[[Sequence[Write]], list[int]], writes: Sequence[Write]) -> list[int]:
    """``run(writes)`` with the writes sorted by their keys (two transactions then never lock rows in
    opposite orders); the row counts in the order of ``writes``."""
    order = sorted(range(len(writes)), key=lambda i: writes[i][2])
    counts = run([writes[i] for i in order])
    result = [0] * len(writes)
    for position, index in enumerate(order):
        result[index] = counts[position]
    return result


class LedgerTransactions:
    """
    How :class:`~airflow_provider_smsnexus.campaign.ledger.SendLedger` runs its transactions (the ledger holds
    one): its statements built once, one transaction at a time per SQLite file in this process, on the DB-API
    connection where the driver is known, and a group commit of single writes.

    :param engine: the ledger's engine.
    :param direct: use the DB-API connection where the driver is known (:data:`DIRECT_DRIVERS`); False runs
        every statement through SQLAlchemy.
    """

    def __init__(self, engine: Engine, *, direct: bool = True) -> None:
        self.engine = engine
        # SQLite allows one writer: serialise this process' writers instead of meeting "database is locked".
        self.write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        self.direct = (
            DirectConnection(engine, self.write_lock or threading.Lock())
            if direct and DirectConnection.supports(engine)
            else None
        )
        self.group_commit = GroupCommit(self.run_writes)
        #: Statements built once per ledger (and compiled once for the DB-API connection), by name; the
        #: callers build a missing one themselves (no builder is called back from here).
        self.statements: dict[Any, Any] = {}

    def close(self) -> None:
        """Give the held connection back to the engine's pool."""
        if self.direct is not None:
            self.direct.close()

    def writing(self) -> AbstractContextManager[Any]:
        """The SQLite write lock, for writes through SQLAlchemy (a no-op elsewhere)."""
        return self.write_lock if self.write_lock is not None else nullcontext()

    @contextmanager
    def transaction(self, *, alone: bool = False) -> Iterator[DirectTransaction | EngineTransaction]:
        """One transaction, committed when the block ends: on the DB-API connection where the driver is known
        (:class:`DirectConnection`; ``alone``: of one statement), else through SQLAlchemy
        (:class:`EngineTransaction`)."""
        if self.direct is not None:
            with self.direct.transaction(alone=alone) as transaction:
                yield transaction
        else:
            with self.writing(), self.engine.begin() as conn:
                yield EngineTransaction(conn)

    def run_writes(self, writes: Sequence[Write]) -> list[int]:
        """Execute writes in one transaction; their row counts.

        Run once more after a deadlock, or on a fresh connection after the database dropped the held one (as
        the pool's pre-ping would have replaced it): the ledger's writes may be applied twice (a fenced
        UPDATE sets the same values; only a pending mark's ``attempts`` counts one more).
        """
        import sqlalchemy as sa

        for attempt in (1, 2):
            try:
                with self.transaction(alone=len(writes) == 1) as transaction:
                    return [transaction.execute(statement, params) for statement, params, _ in writes]
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or not (retryable(exc) or exc.connection_invalidated):
                    raise
                log.warning("Send ledger: %s; running the transaction again", type(exc.orig).__name__)
        raise AssertionError("unreachable")
