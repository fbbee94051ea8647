"""
Export SMS Nexus messages, conversations or phone numbers to a SQL table: :class:`SMSNexusToSqlOperator`.

The run is spooled to local disk, then loaded in one transaction with its record
(:mod:`~airflow_provider_smsnexus.transfers.sql_loading`): a failed or killed run leaves the table exactly
as it was.

.. seealso:: "SQL warehouse" in :doc:`/guides/exports`.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseHook

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.extraction import SMSNexusExportBaseOperator, is_templated
from airflow_provider_smsnexus.transfers.schema import arrow_schema
from airflow_provider_smsnexus.transfers.sql_loading import (
    MODES,
    ArrowSpool,
    SqlTableLoader,
    describe_table,
    make_sqlite_transactional,
    sqlite_engine,
)
from airflow_provider_smsnexus.transfers.sql_records import read_sql_records

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from airflow.sdk import Context
    from sqlalchemy.engine import URL, Engine

    from airflow_provider_smsnexus.transfers.window import ExportRun, ExportWindow

__all__ = [
    "SMSNexusToSqlOperator",
    "SqlExportWriter",
    "default_warehouse_path",
    "sql_asset_uri",
    "table_asset_uri",
]

#: The file of the embedded SQLite warehouse, in AIRFLOW_HOME, used when no ``sql_conn_id`` is given.
DEFAULT_WAREHOUSE_FILE = "smsnexus_warehouse.db"
#: The name the embedded warehouse goes by in asset URIs.
DEFAULT_WAREHOUSE_NAME = "smsnexus_warehouse"


def default_warehouse_path() -> Path:
    """The embedded SQLite warehouse: ``$AIRFLOW_HOME/smsnexus_warehouse.db``."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(os.path.expanduser(home)) / DEFAULT_WAREHOUSE_FILE


class SqlExportWriter:
    """
    The SQL destination of one run: spool the batches to local disk, load them at commit.

    :param loader: loads the spooled batches in one transaction.
    :param resource: the exported resource.
    """

    def __init__(self, loader: SqlTableLoader, resource: str):
        self.loader = loader
        self.spool = ArrowSpool(arrow_schema(resource))

    def write(self, table: pa.Table) -> None:
        """Spool one batch."""
        self.spool.write(table)

    def heartbeat(self) -> None:
        """Nothing to keep alive: the spool is private to this run."""

    def commit(self, record: ExportRun | None = None) -> None:
        """Load the spool and ``record`` in one transaction, then delete the spool."""
        try:
            self.loader.load(self.spool.tables(), record)
        finally:
            self.spool.discard()
            self.loader.engine.dispose()

    def abort(self) -> None:
        """Delete the spool; the database was not touched."""
        self.spool.discard()
        self.loader.engine.dispose()


def sql_asset_uri(sql_conn_id: str | None, schema: str | None, table: str) -> str:
    """
    This provider's own name of an exported table: ``smsnexus-sql://<conn id>/[<schema>/]<table>``.

    The fallback asset URI, for databases whose Airflow provider registers no asset scheme (SQLite,
    the embedded warehouse), and the name of the :class:`~airflow.sdk.AssetAlias` a connection's
    export declares at parse time.
    """
    parts = [sql_conn_id or DEFAULT_WAREHOUSE_NAME, *([schema] if schema else []), table]
    return "smsnexus-sql://" + "/".join(parts)


def table_asset_uri(url: URL, sql_conn_id: str | None, schema: str | None, table: str) -> str:
    """
    The asset URI of an exported table, in the form the database's own Airflow provider registers, so
    that this task's asset events join those of other providers' tasks on the same table.

    - PostgreSQL: ``postgres://<host>:<port>/<database>/<schema>/<table>`` (schema default ``public``),
      the form ``apache-airflow-providers-postgres`` sanitises;
    - MySQL / MariaDB: ``mysql://<host>:<port>/<database>/<table>``, the form of
      ``apache-airflow-providers-mysql``;
    - anything else (SQLite, ...): :func:`sql_asset_uri`, this provider's own scheme.

    :param url: the engine's URL (its user and password are never used).
    """
    backend = url.get_backend_name()
    if backend == "postgresql" and url.host and url.database:
        return f"postgres://{url.host}:{url.port or 5432}/{url.database}/{schema or 'public'}/{table}"
    if backend in ("mysql", "mariadb") and url.host and url.database:
        return f"mysql://{url.host}:{url.port or 3306}/{url.database}/{table}"
    return sql_asset_uri(sql_conn_id, schema, table)


class SMSNexusToSqlOperator(SMSNexusExportBaseOperator):
    """
    Export SMS Nexus messages, conversations or phone numbers into a SQL table.

    The table is created when missing, with real column types and ``id`` as primary key. The whole run is
    one transaction: a failed export leaves the table exactly as it was.

    :param sql_conn_id: any Airflow connection whose hook offers ``get_sqlalchemy_engine()`` (PostgreSQL,
        MySQL, ...); default: the embedded SQLite warehouse ``$AIRFLOW_HOME/smsnexus_warehouse.db``.
    :param table: (templated) the table; default ``smsnexus_<resource>``.
    :param schema: (templated) the table's schema; default: the database's default.
    :param mode: ``upsert`` (default: insert new ids, update changed rows), ``append`` (insert only; an id
        already in the table fails the run) or ``replace`` (the table's rows become exactly this run's).
    :param kwargs: the export's parameters (resource, window, lookback, filters), see
        :class:`~airflow_provider_smsnexus.transfers.extraction.SMSNexusExportBaseOperator`.

    Outlets, when the table and schema are not templated (and no ``outlets`` are given): with a
    ``sql_conn_id``, ``AssetAlias("smsnexus-sql://<sql_conn_id>/[<schema>/]<table>")``, to which each
    successful run attaches the table's asset in its database provider's form (see
    :func:`table_asset_uri`; e.g. ``postgres://host:5432/db/public/table``), known only once the
    connection is read at run time; for the embedded warehouse,
    ``Asset("smsnexus-sql://smsnexus_warehouse/<table>")``.

    .. seealso:: "SQL warehouse" in :doc:`/guides/exports`.
    """

    template_fields: Sequence[str] = (*SMSNexusExportBaseOperator.template_fields, "table", "schema")
    ui_color = "#dff0d8"

    def __init__(
        self,
        *,
        sql_conn_id: str | None = None,
        table: str | None = None,
        schema: str | None = None,
        mode: str = "upsert",
        **kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        table = table or f"smsnexus_{kwargs.get('resource', 'messages')}"
        if "outlets" not in kwargs and not is_templated(table) and not is_templated(schema):
            name = sql_asset_uri(sql_conn_id, schema, table)
            # The database behind a connection is known at run time only: reading it at parse time would
            # cost a connection lookup on every parse.
            kwargs["outlets"] = [AssetAlias(name=name) if sql_conn_id else Asset(uri=name)]
        super().__init__(**kwargs)
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.schema = schema
        self.mode = mode

    def execute(self, context: Context) -> dict[str, Any]:
        """Export (see the base class), then attach the table's asset to this task's alias."""
        figures = super().execute(context)
        alias_name = sql_asset_uri(self.sql_conn_id, self.schema or None, self.table)
        aliases = [o for o in self.outlets if isinstance(o, AssetAlias) and o.name == alias_name]
        if aliases and "outlet_events" in context:
            uri = table_asset_uri(self.engine.url, self.sql_conn_id, self.schema or None, self.table)
            context["outlet_events"][aliases[0]].add(Asset(uri=uri))
            self.log.info("Asset event for %s (through alias %s)", uri, alias_name)
        return figures

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of ``sql_conn_id`` (or of the embedded SQLite warehouse)."""
        if not self.sql_conn_id:
            return sqlite_engine(default_warehouse_path())
        hook = BaseHook.get_connection(self.sql_conn_id).get_hook()
        if not hasattr(hook, "get_sqlalchemy_engine"):
            raise SMSNexusError(
                f"Connection {self.sql_conn_id!r} has no SQLAlchemy engine ({type(hook).__name__}); "
                "use a SQL database connection (postgres, mysql, ...)"
            )
        engine = hook.get_sqlalchemy_engine()
        if engine.dialect.name == "sqlite":
            make_sqlite_transactional(engine)
        return engine

    def _destination(self) -> str:
        return describe_table(self.engine, self.schema, self.table)

    def _history(self) -> list[ExportRun]:
        return read_sql_records(self.engine, self.schema or None, self.table)

    def _lineage_output(self) -> tuple[str, str]:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            return f"sqlite://{os.path.abspath(url.database or '')}", self.table
        scheme = "postgres" if url.get_backend_name() == "postgresql" else url.get_backend_name()
        port = url.port or {"postgres": 5432, "mysql": 3306}.get(scheme)
        schema = self.schema or ("public" if scheme == "postgres" else None)
        name = ".".join(part for part in (url.database, schema, self.table) if part)
        return f"{scheme}://{url.host}:{port}", name

    def _open_writer(self, window: ExportWindow | None) -> SqlExportWriter:
        loader = SqlTableLoader(
            self.engine, self.resource, self.table, schema=self.schema or None, mode=self.mode, log=self.log
        )
        return SqlExportWriter(loader, self.resource)
