"""
The record of export runs that a SQL destination keeps beside its data, from which the next run's window
starts.

The record is the table :data:`RECORDS_TABLE`, created beside the exported table and written in the same
transaction as the load (:class:`~airflow_provider_smsnexus.transfers.sql_loading.SqlTableLoader`): the record
and the rows appear together or not at all.

.. seealso:: :mod:`~airflow_provider_smsnexus.transfers.window`, which reads the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.window import ExportRun

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

#: The table of export runs in a SQL destination (beside the exported tables, in the same schema).
RECORDS_TABLE = "smsnexus_export_runs"


def records_table(schema: str | None) -> sa.Table:
    """The table of export runs: one row per (table, task, run)."""
    import sqlalchemy as sa

    return sa.Table(
        RECORDS_TABLE,
        sa.MetaData(),
        sa.Column("exported_table", sa.String(255), primary_key=True),
        sa.Column("task_key", sa.String(500), primary_key=True),
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        schema=schema,
    )


def _aware(value: Any) -> Any:
    from datetime import timezone

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)  # SQLite gives back naive values; they were written as UTC


def read_sql_records(engine: Engine, schema: str | None, table: str) -> list[ExportRun]:
    """The runs recorded for the exported ``table`` (none when it or the records table does not exist)."""
    import sqlalchemy as sa

    runs_table = records_table(schema)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        # A table dropped since: its record no longer describes what the destination holds.
        if not inspector.has_table(RECORDS_TABLE, schema=schema) or not inspector.has_table(
            table, schema=schema
        ):
            return []
        rows = conn.execute(sa.select(runs_table).where(runs_table.c.exported_table == table)).all()
    return [
        ExportRun(
            key=row.task_key,
            run_id=row.run_id,
            start=_aware(row.window_start),
            end=_aware(row.window_end),
            rows=row.rows,
            exported_at=_aware(row.exported_at),
        )
        for row in rows
    ]


def write_sql_record(conn: Connection, schema: str | None, table: str, record: ExportRun) -> None:
    """Record ``record`` for ``table`` inside the load's transaction (creating the records table if missing)."""
    import sqlalchemy as sa

    runs_table = records_table(schema)
    if not sa.inspect(conn).has_table(RECORDS_TABLE, schema=schema):
        _create_records_table(conn, runs_table, schema)
    key = (
        (runs_table.c.exported_table == table)
        & (runs_table.c.task_key == record.key)
        & (runs_table.c.run_id == record.run_id)
    )
    conn.execute(runs_table.delete().where(key))
    conn.execute(
        runs_table.insert().values(
            exported_table=table,
            task_key=record.key,
            run_id=record.run_id,
            window_start=record.start,
            window_end=record.end,
            rows=record.rows,
            exported_at=record.exported_at,
        )
    )


def _create_records_table(conn: Connection, runs_table: sa.Table, schema: str | None) -> None:
    """
    Create the records table inside the load's transaction, tolerating another export creating it at the same
    moment: on PostgreSQL the second ``CREATE TABLE`` waits for the first transaction and then fails on the
    catalog's unique index. A savepoint keeps this load's rows; the table is then there to write into.
    """
    import sqlalchemy as sa

    savepoint = conn.begin_nested()
    try:
        runs_table.create(conn)
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if not sa.inspect(conn).has_table(RECORDS_TABLE, schema=schema):
            raise SMSNexusError(
                f"The export record table {RECORDS_TABLE} could not be created ({type(exc.orig).__name__}): "
                "nothing was written"
            ) from exc
    else:
        savepoint.commit()
