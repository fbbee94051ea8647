"""
Loading one export run into a SQL table: the table's shape, a local Arrow spool, and the one-transaction load.

The API is read first, into a compressed Arrow spool file on local disk (bounded memory, and no database
transaction held open while the export waits for the API's rate limit); then the spool is loaded in one
transaction: the table is created if missing, and rows are upserted, appended or replace the table's rows,
together with the run's record (:mod:`~airflow_provider_smsnexus.transfers.sql_records`). A failed or killed
run leaves the table exactly as it was. PostgreSQL gets a fast path (COPY into a temporary table, then
``INSERT ... ON CONFLICT``); other databases batched multi-row inserts.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.schema import COLUMNS
from airflow_provider_smsnexus.transfers.sql_records import write_sql_record
from airflow_provider_smsnexus.utils.id_set import IdSet

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator

    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    from airflow_provider_smsnexus.transfers.window import ExportRun

MODES = ("upsert", "append", "replace")
#: Rows per multi-row INSERT statement batch on databases without the COPY path.
INSERT_CHUNK_ROWS = 5_000
#: Rows per DELETE ... WHERE id IN (...) on databases without an upsert statement (parameter limits).
DELETE_CHUNK_ROWS = 500
#: Seconds an SQLite connection waits for another writer's lock.
SQLITE_BUSY_TIMEOUT = 300


def make_sqlite_transactional(engine: Engine) -> Engine:
    """
    Make pysqlite run DDL inside the transaction too, and take the write lock when a transaction begins.

    Python's sqlite3 driver only opens a transaction before DML, so a ``CREATE TABLE`` would commit on its
    own; with these listeners a failed run also leaves no new table behind.
    """
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sqlite_engine(path: str | os.PathLike) -> Engine:
    """An engine for an SQLite file (created with its folder when missing), in WAL mode, transactional DDL."""
    import sqlalchemy as sa

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @sa.event.listens_for(engine, "connect")
    def _wal(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    return make_sqlite_transactional(engine)


def sql_type(kind: str) -> Any:
    """The SQLAlchemy type of a column kind."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    return {
        "int64": sa.BigInteger(),
        "string": sa.Text(),
        "timestamp": sa.DateTime(timezone=True),
        "string_list": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
    }[kind]


def sql_table(resource: str, name: str, schema: str | None = None) -> sa.Table:
    """The table of a resource's export: real types, ``id`` BIGINT primary key."""
    import sqlalchemy as sa

    columns = [
        sa.Column(c.name, sql_type(c.kind), primary_key=c.name == "id", nullable=c.nullable, comment=None)
        for c in COLUMNS[resource]
    ]
    return sa.Table(name, sa.MetaData(), *columns, schema=schema)


def dedup_last_wins(table: pa.Table) -> pa.Table:
    """Keep the last row of each id (a batch must not hold an id twice for an upsert)."""
    ids = table.column("id").to_pylist()
    last = {row_id: index for index, row_id in enumerate(ids)}
    if len(last) == len(ids):
        return table
    return table.take(sorted(last.values()))


def describe_table(engine: Engine, schema: str | None, table: str) -> str:
    """A credential-free address of a table: the engine's URL without user and password, and the table."""
    url = engine.url
    qualified = f"{schema}.{table}" if schema else table
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{url.database or ''}?table={qualified}"
    port = f":{url.port}" if url.port else ""
    return f"{url.get_backend_name()}://{url.host or ''}{port}/{url.database or ''}?table={qualified}"


class ArrowSpool:
    """
    A local, compressed Arrow IPC file that holds one run's batches until they are loaded.

    :param schema: the batches' schema.
    :param directory: where to put the file (the system's temporary folder by default).
    """

    def __init__(self, schema: pa.Schema, directory: str | None = None):
        import pyarrow as pa

        self.schema = schema
        handle, name = tempfile.mkstemp(prefix="smsnexus-export-", suffix=".arrows", dir=directory)
        os.close(handle)
        self.path = Path(name)
        self.rows = 0
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = pa.ipc.new_stream(
            self._sink, schema, options=pa.ipc.IpcWriteOptions(compression="lz4")
        )
        self._closed = False

    def write(self, table: pa.Table) -> None:
        """Append one batch."""
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _close_writer(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()
            self._sink.close()

    def tables(self) -> Iterator[pa.Table]:
        """The batches written, one at a time."""
        import pyarrow as pa

        self._close_writer()
        # Plain reads, not a memory map: mapped pages of a large spool would count as the process's memory.
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_stream(source)
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def discard(self) -> None:
        """Close and delete the spool file."""
        try:
            self._close_writer()
        finally:
            self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _csv_bytes(table: pa.Table) -> bytes:
    """A batch as CSV for PostgreSQL's COPY: lists as JSON text, NUL characters (PostgreSQL has none) as U+FFFD."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from airflow_provider_smsnexus.transfers._columns import string_array

    columns = []
    for column in table.columns:
        if pa.types.is_list(column.type):  # built from the texts directly: pa.array would import pandas
            texts = [None if v is None else json.dumps(v, ensure_ascii=False) for v in column.to_pylist()]
            column = string_array(texts)  # never None: Arrow's strings are valid UTF-8, so are these texts
        elif pa.types.is_string(column.type):
            column = pc.replace_substring(column, "\x00", "\ufffd")
        elif pa.types.is_timestamp(column.type) and column.type.tz == "UTC":
            # The text Arrow's writer gives a UTC column, 20x faster: it formats each zoned value through its
            # strftime routine (9 of a 10,000-row batch's 10 ms); a naive column's cast to text does not.
            naive = column.cast(pa.timestamp(column.type.unit)).cast(pa.string())
            end = 2**31 - 1  # past every text: the "Z" goes at the end (options, not a pa.scalar: no pandas)
            column = pc.utf8_replace_slice(naive, start=end, stop=end, replacement="Z")
        columns.append(column)
    buffer = io.BytesIO()
    pacsv.write_csv(
        pa.Table.from_arrays(columns, names=table.column_names),
        buffer,
        pacsv.WriteOptions(include_header=False),
    )
    return buffer.getvalue()


class SqlTableLoader:
    """
    Load batches into one table in one transaction.

    :param engine: the database.
    :param resource: the exported resource (selects the columns).
    :param table: the table's name.
    :param schema: the table's schema (database namespace), or None for the default.
    :param mode: ``upsert`` (insert new ids, update changed rows), ``append`` (insert; an id already in
        the table fails the run) or ``replace`` (the table's rows become exactly this run's).
    :param log: a logger.
    :param use_copy: use COPY on PostgreSQL (when the driver offers it).
    """

    #: Dialects upserted with ``INSERT ... ON CONFLICT``; others delete the batch's ids, then insert.
    native_upsert_dialects: tuple[str, ...] = ("sqlite", "postgresql")

    def __init__(
        self,
        engine: Engine,
        resource: str,
        table: str,
        *,
        schema: str | None,
        mode: str,
        log: logging.Logger,
        use_copy: bool = True,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.engine = engine
        self.resource = resource
        self.table = sql_table(resource, table, schema)
        self.mode = mode
        self.log = log
        self.use_copy = use_copy
        self.created = False
        self._finish_load: Callable[[], None] | None = None
        self._abort_load: Callable[[BaseException], None] | None = None

    def load(self, batches: Iterable[pa.Table], record: ExportRun | None = None) -> int:
        """
        Write every batch in one transaction, with ``record`` (when given) in the destination's record of
        runs; return the rows written. Rolls back on any error.
        """
        import sqlalchemy as sa

        rows = 0
        dbapi = self.engine.dialect.dbapi
        integrity_errors: tuple[type[BaseException], ...] = (sa.exc.IntegrityError,)
        if dbapi is not None and hasattr(dbapi, "IntegrityError"):
            integrity_errors += (dbapi.IntegrityError,)
        try:
            with self.engine.begin() as conn:
                self._prepare(conn)
                if self.mode == "replace":
                    conn.execute(self.table.delete())
                self._finish_load = self._abort_load = None
                write = self._batch_writer(conn)
                try:
                    for batch in batches:
                        batch = dedup_last_wins(batch)
                        if batch.num_rows:
                            write(batch)
                            rows += batch.num_rows
                    if self._finish_load is not None:  # the writer's last step (the COPY path's one merge)
                        self._finish_load()
                except BaseException as exc:
                    if self._abort_load is not None:  # end a COPY in progress, so the rollback can run
                        self._abort_load(exc)
                    raise
                if record is not None:
                    try:
                        write_sql_record(conn, self.table.schema, self.table.name, record)
                    except integrity_errors as exc:  # not about the exported ids: say what it was
                        raise SMSNexusError(
                            f"The run {record.run_id!r} of {record.key} could not be recorded beside "
                            f"{self.table.fullname} ({type(exc).__name__}: another run recorded it at the "
                            "same moment?), so nothing was written"
                        ) from exc
        except integrity_errors as exc:
            if self.mode != "append":
                raise
            raise SMSNexusError(
                f"mode='append': some exported ids are already in {self.table.fullname}, so nothing was "
                "written. Use mode='upsert' to export a window again."
            ) from exc
        return rows

    def _prepare(self, conn: Connection) -> None:
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        name, schema = self.table.name, self.table.schema
        self.created = False  # of this load's transaction (a loader may load again)
        if not inspector.has_table(name, schema=schema):
            self.table.create(conn)
            self.created = True
            self.log.info("Created table %s", self.table.fullname)
            return
        present = {column["name"] for column in inspector.get_columns(name, schema=schema)}
        missing = [column.name for column in self.table.columns if column.name not in present]
        if missing:
            raise SMSNexusError(
                f"Table {self.table.fullname} lacks the columns {', '.join(missing)} of the {self.resource} "
                "export: add them, or export into a new table"
            )
        if self.mode == "upsert":
            keys = [inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or []]
            keys += [u["column_names"] for u in inspector.get_unique_constraints(name, schema=schema)]
            keys += [i["column_names"] for i in inspector.get_indexes(name, schema=schema) if i.get("unique")]
            if ["id"] not in [list(k) for k in keys]:
                raise SMSNexusError(
                    f"Table {self.table.fullname} has no primary key or unique constraint on id, which "
                    "mode='upsert' needs: add one, or use mode='append' or 'replace'"
                )

    def _batch_writer(self, conn: Connection) -> Callable[[pa.Table], None]:
        if conn.dialect.name == "postgresql" and self.use_copy:
            writer = self._postgres_copy_writer(conn)
            if writer is not None:
                return writer
        return self._insert_writer(conn)

    def _upsert_statement(self, insert: Any) -> Any:
        """``insert`` (a PostgreSQL or SQLite insert) made an upsert on id that only touches changed rows."""
        import sqlalchemy as sa

        others = [c.name for c in self.table.columns if c.name != "id"]
        return insert.on_conflict_do_update(
            index_elements=["id"],
            set_={name: insert.excluded[name] for name in others},
            where=sa.or_(*[self.table.c[name].is_distinct_from(insert.excluded[name]) for name in others]),
        )

    def _insert_writer(self, conn: Connection) -> Callable[[pa.Table], None]:
        import sqlalchemy as sa

        dialect = conn.dialect.name
        table = self.table
        statement: Any = sa.insert(table)
        delete_first = False
        if self.mode == "upsert":
            if dialect == "sqlite" and dialect in self.native_upsert_dialects:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                statement = self._upsert_statement(sqlite_insert(table))
            elif dialect == "postgresql" and dialect in self.native_upsert_dialects:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = self._upsert_statement(pg_insert(table))
            else:  # portable upsert inside the run's transaction: delete the batch's ids, insert the rows
                delete_first = True

        def write(batch: pa.Table) -> None:
            for offset in range(0, batch.num_rows, INSERT_CHUNK_ROWS):
                rows = batch.slice(offset, INSERT_CHUNK_ROWS).to_pylist()
                if delete_first:
                    ids = [row["id"] for row in rows]
                    for start in range(0, len(ids), DELETE_CHUNK_ROWS):
                        conn.execute(
                            table.delete().where(table.c.id.in_(ids[start : start + DELETE_CHUNK_ROWS]))
                        )
                conn.execute(statement, rows)

        return write

    def _postgres_copy_writer(self, conn: Connection) -> Callable[[pa.Table], None] | None:
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        cursor = conn.connection.cursor()
        if not (hasattr(cursor, "copy") or hasattr(cursor, "copy_expert")):
            cursor.close()
            return None  # a driver without COPY: use inserts
        names = [c.name for c in self.table.columns]
        preparer = conn.dialect.identifier_preparer
        merge, stage = None, None
        if self.mode == "upsert":
            stage = sa.Table(
                f"smsnexus_stage_{uuid.uuid4().hex[:12]}",
                sa.MetaData(),
                *[sa.Column(c.name, c.type) for c in self.table.columns],
                prefixes=["TEMPORARY"],
                postgresql_on_commit="DROP",
            )
            stage.create(conn)
            merge = self._upsert_statement(pg_insert(self.table).from_select(names, sa.select(*stage.c)))

        def copy_sql(table: sa.Table) -> str:
            columns = ", ".join(preparer.quote(n) for n in names)
            return f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN WITH (FORMAT csv)"

        # psycopg 3: one COPY streams every batch into the same table, so the server parses batch n while
        # batch n+1 is encoded (one COPY a batch waited for the server at every batch's end: bench/README.md).
        copying: dict[str, Any] = {}

        def end_copy(error: BaseException | None = None) -> None:
            if copying:
                context = copying["context"]
                copying.clear()
                context.__exit__(
                    type(error) if error else None, error, error.__traceback__ if error else None
                )

        def copy_into(table: sa.Table, batch: pa.Table) -> None:
            data = _csv_bytes(batch.select(names))
            if not hasattr(cursor, "copy"):  # psycopg2: one COPY a batch
                cursor.copy_expert(copy_sql(table), io.BytesIO(data))
                return
            if copying.get("table") is not table:
                end_copy()
                context = cursor.copy(copy_sql(table))
                copying.update(table=table, context=context, copy=context.__enter__())
            copying["copy"].write(data)

        # An upsert stages its batches and merges the stage once at the end (one INSERT ... ON CONFLICT, not
        # one per batch), unless a batch repeats an id already staged: then the stage is merged first, so
        # the last row still wins. Into a table this transaction created (empty, and invisible to others
        # until commit) nothing can conflict: batches are copied straight in, and only a batch repeating an
        # id written before goes through the stage.
        direct = self.created
        written = [IdSet()]

        def merge_stage() -> None:
            end_copy()
            if merge is not None and stage is not None:
                conn.execute(merge)
                conn.exec_driver_sql(f"TRUNCATE {preparer.format_table(stage)}")
                if not direct:
                    written[0] = IdSet()

        def write(batch: pa.Table) -> None:
            if merge is None or stage is None:  # append, replace: straight into the table
                copy_into(self.table, batch)
                return
            ids = batch.column("id").to_pylist()
            repeats = not all(written[0].add_many(ids))
            if direct and not repeats:
                copy_into(self.table, batch)
                return
            if repeats and not direct:
                merge_stage()
                written[0].add_many(ids)
            copy_into(stage, batch)
            if direct:
                merge_stage()

        self._finish_load = merge_stage
        self._abort_load = end_copy
        return write
