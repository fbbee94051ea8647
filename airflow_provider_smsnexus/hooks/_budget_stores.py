"""Where a shared rate budget lives: a file under ``fcntl`` locks, a SQL row, a Redis key.

Each store offers one operation, :meth:`BudgetStore.transact`: read the
:class:`~airflow_provider_smsnexus.utils.rate_budget.SharedWindow` stored under a key, let a function change
it, write it back, all under the store's lock, and return what the function returned. The window's rules run
in Python in every store, so they are written once (:mod:`airflow_provider_smsnexus.utils.rate_budget`).

* :class:`HostStore` (``rate_budget=host``): one small JSON file per key in a directory every process of the
  machine sees, under an exclusive ``flock`` for the read-change-write;
* :class:`SqlStore` (``sql``): one row per key in the table ``smsnexus_rate_budget``, read with ``SELECT ...
  FOR UPDATE`` in a short transaction (PostgreSQL; any database with row locks);
* :class:`RedisStore` (``redis``): one string key per budget, changed in a ``WATCH``/``MULTI`` transaction
  (optimistic: a change that raced another is run again on the new value).

I/O failures raise :class:`StoreUnavailableError` (the budget falls back to per-process pacing); a store that is
misconfigured (an unknown connection id, SQLite for ``sql``) raises :class:`SMSNexusError` when opened.
Stores are opened once per process and kept (:func:`open_store`), so hooks made per poll share one pool.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._config import HOST, REDIS, SQL
from airflow_provider_smsnexus.utils.rate_budget import SharedWindow

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsnexus.hooks._config import BudgetSettings

T = TypeVar("T")

#: The table of ``rate_budget=sql``.
SQL_TABLE = "smsnexus_rate_budget"
#: The prefix of ``rate_budget=redis`` keys.
REDIS_PREFIX = "smsnexus:rate-budget:"
#: A Redis budget nobody touched for this long is dropped (seconds); it is rebuilt from the next answers.
REDIS_IDLE_SECONDS = 3600
#: The seconds a store's connect and each round trip may take before the store counts as unreachable.
STORE_TIMEOUT_SECONDS = 5.0


class StoreUnavailableError(SMSNexusError):
    """The store did not answer (a file, database or Redis error); the budget paces its hook alone meanwhile."""


class BudgetStore(Protocol):
    """A place where shared windows are kept."""

    def transact(self, key: str, change: Callable[[SharedWindow], T]) -> T:
        """Run ``change`` on the window under ``key`` inside the store's lock, store the result, return its value."""
        ...


def default_host_directory() -> Path:
    """The directory of ``rate_budget=host`` when ``rate_budget_store`` is unset: under the temporary directory."""
    return Path(tempfile.gettempdir()) / "smsnexus-rate-budget"


class HostStore:
    """
    Windows in JSON files of one directory, each read, changed and rewritten under an exclusive ``flock``.

    ``flock`` locks belong to an open file, so threads of one process exclude each other as processes do.

    :param directory: created (mode 0700) when missing; every process sharing the budget must see it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"HostStore({str(self.directory)!r})"

    def path(self, key: str) -> Path:
        """The file of ``key``: a hash of it, so any key is a safe file name."""
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def transact(self, key: str, change: Callable[[SharedWindow], T]) -> T:
        import fcntl

        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path(key), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreUnavailableError(f"{self!r}: {type(exc).__name__}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            window = SharedWindow.from_json(os.pread(fd, size, 0) if size else b"")
            result = change(window)
            data = window.to_json().encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return result
        except OSError as exc:
            raise StoreUnavailableError(f"{self!r}: {type(exc).__name__}: {exc.strerror}") from exc
        finally:
            os.close(fd)  # releases the lock


class SqlStore:
    """
    Windows in rows of :data:`SQL_TABLE`, each read ``FOR UPDATE`` and rewritten in one short transaction.

    :param engine: a SQLAlchemy engine (PostgreSQL, or another database with row locks).
    :param described: how to name the store in messages (a connection id, or a URL without its password).
    :param table_name: the table (default :data:`SQL_TABLE`).
    """

    def __init__(self, engine: Any, described: str, table_name: str = SQL_TABLE) -> None:
        import sqlalchemy as sa

        if engine.dialect.name == "sqlite":
            raise SMSNexusError(
                f"rate_budget=sql needs a database with row locks (PostgreSQL, MySQL), and {described} is "
                "SQLite: use rate_budget=host for the processes of one machine."
            )
        self.engine = engine
        self.described = described
        self.table = sa.Table(
            table_name,
            sa.MetaData(),
            sa.Column("budget_key", sa.String(400), primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
        )
        self._ready = False

    def __repr__(self) -> str:
        return f"SqlStore({self.described!r})"

    def _create_table(self) -> None:
        import sqlalchemy as sa

        try:
            self.table.metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created it between the check and the CREATE: fine when it is there now.
            if not sa.inspect(self.engine).has_table(self.table.name):
                raise
        self._ready = True

    def _insert_missing(self, conn: Any, key: str) -> None:
        import sqlalchemy as sa

        values = {"budget_key": key, "state": SharedWindow().to_json()}
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            conn.execute(insert(self.table).values(**values).on_conflict_do_nothing())
            return
        try:
            with conn.begin_nested():
                conn.execute(self.table.insert().values(**values))
        except sa.exc.IntegrityError:
            pass  # another process inserted it first

    def transact(self, key: str, change: Callable[[SharedWindow], T]) -> T:
        import sqlalchemy as sa

        table = self.table
        select = sa.select(table.c.state).where(table.c.budget_key == key).with_for_update()
        try:
            if not self._ready:
                self._create_table()
            with self.engine.begin() as conn:
                state = conn.execute(select).scalar()
                if state is None:
                    self._insert_missing(conn, key)
                    state = conn.execute(select).scalar_one()
                window = SharedWindow.from_json(state)
                result = change(window)
                conn.execute(table.update().where(table.c.budget_key == key).values(state=window.to_json()))
            return result
        except sa.exc.SQLAlchemyError as exc:
            self._ready = (
                False  # the table may have been dropped: the next change checks and creates it again
            )
            raise StoreUnavailableError(f"{self!r}: {type(exc).__name__}") from exc


class RedisStore:
    """
    Windows in Redis string keys, each changed in a ``WATCH``/``MULTI``/``EXEC`` transaction.

    :param client: a ``redis.Redis`` client.
    :param described: how to name the store in messages (a connection id, or a URL without its password).
    """

    def __init__(self, client: Any, described: str) -> None:
        self.client = client
        self.described = described

    def __repr__(self) -> str:
        return f"RedisStore({self.described!r})"

    def transact(self, key: str, change: Callable[[SharedWindow], T]) -> T:
        import redis

        name = REDIS_PREFIX + key
        try:
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(name)
                        window = SharedWindow.from_json(pipe.get(name))
                        result = change(window)
                        pipe.multi()
                        pipe.set(name, window.to_json(), ex=REDIS_IDLE_SECONDS)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue  # another process changed it meanwhile: run the change on its value
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"{self!r}: {type(exc).__name__}") from exc


# -- opening a store, once per process ---------------------------------------------------------------------

_STORES: dict[tuple[int, str, str | None], BudgetStore] = {}
_STORES_LOCK = threading.Lock()


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: name its scheme only
        return url.split("://", 1)[0] + "://..."


def _sql_store(target: str) -> SqlStore:
    import sqlalchemy as sa

    if "://" in target:
        try:
            engine = sa.create_engine(target, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise SMSNexusError(
                f"rate_budget_store {_without_password(target)} is not a SQLAlchemy URL this environment can "
                f"open ({type(exc).__name__}): give a URL such as postgresql://user@host/db, or a connection id."
            ) from None
        return SqlStore(engine, _without_password(target))
    from airflow_provider_smsnexus.utils.sql import connection_engine

    return SqlStore(connection_engine(target, parameter="rate_budget_store"), f"connection {target!r}")


def _redis_store(target: str) -> RedisStore:
    import redis

    options = {"socket_timeout": STORE_TIMEOUT_SECONDS, "socket_connect_timeout": STORE_TIMEOUT_SECONDS}
    if "://" in target:
        return RedisStore(redis.Redis.from_url(target, **options), _without_password(target))
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(target)
    extra = conn.extra_dejson or {}
    client = redis.Redis(
        host=conn.host or "localhost",
        port=conn.port or 6379,
        username=conn.login or None,
        password=conn.password or None,
        db=int(extra.get("db", 0)),
        ssl=str(extra.get("ssl", "false")).lower() == "true",
        **options,
    )
    return RedisStore(client, f"connection {target!r}")


def open_store(settings: BudgetSettings) -> BudgetStore:
    """
    The store ``settings`` name, opened once per process (a forked child opens its own).

    :raises SMSNexusError: the store is misconfigured (its connection is unknown or not a database, its URL
        cannot be opened, the ``redis`` package is missing).
    """
    cache_key = (os.getpid(), settings.kind, settings.store)
    with _STORES_LOCK:
        store = _STORES.get(cache_key)
        if store is None:
            if settings.kind == HOST:
                store = HostStore(settings.store or default_host_directory())
            elif settings.kind == SQL:
                store = _sql_store(settings.store or "")
            elif settings.kind == REDIS:
                try:
                    store = _redis_store(settings.store or "")
                except ImportError:
                    raise SMSNexusError(
                        "rate_budget=redis needs the redis package: pip install 'airflow-provider-smsnexus[redis]'"
                    ) from None
            else:
                raise SMSNexusError(f"rate_budget={settings.kind!r} keeps no shared store")
            _STORES[cache_key] = store
    return store
