"""
The record of export runs that a destination keeps beside its data, from which the next run's window starts.

A SQL destination keeps it in the table :data:`RECORDS_TABLE` (created beside the exported table, written in
the same transaction as the load: the record and the rows appear together or not at all). A Parquet
destination keeps it in a JSON file beside the dataset (:func:`records_file`), replaced atomically after the
files are swapped in: a run killed between the swap and the record leaves the files of a complete run and
an older record, so the next run repeats its window (partitions are replaced, not appended: nothing
doubles) and loses nothing.

.. seealso:: :mod:`~airflow_provider_smsnexus.transfers.window`, which reads the record.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.window import ExportRun

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    from airflow_provider_smsnexus.transfers.parquet_files import ParquetTarget

#: The table of export runs in a SQL destination (beside the exported tables, in the same schema).
RECORDS_TABLE = "smsnexus_export_runs"
#: Runs kept per task in a record file: older ones are never asked for (only the latest ends are).
KEEP_RUNS = 1000


# -- Parquet: a JSON file beside the dataset -------------------------------------------------------------


def records_file(target: ParquetTarget) -> Any:
    """
    Where a Parquet destination keeps its record: ``<folder>/_smsnexus_export_runs.json``, or
    ``_<file name>.smsnexus_export_runs.json`` beside a single-file destination. Readers of the dataset skip
    it (pyarrow and Spark ignore names starting with ``_``).
    """
    if target.local is not None:
        root: Any = target.local
    else:
        root = target.remote
    if target.single_file:
        return root.parent / f"_{root.name}.smsnexus_export_runs.json"
    return root / "_smsnexus_export_runs.json"


def read_file_records(target: ParquetTarget) -> list[ExportRun]:
    """The runs a Parquet destination recorded (none when it has no record file yet)."""
    path = records_file(target)
    data = target.local if target.local is not None else target.remote
    if target.single_file and not data.exists():  # the file was deleted since: the record no longer holds
        return []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        return [ExportRun.from_json(run) for run in json.loads(text)["runs"]]
    except (ValueError, KeyError, TypeError, SMSNexusError) as exc:
        raise SMSNexusError(
            f"The export record {path} cannot be read ({type(exc).__name__}: {exc}): fix or delete it (the "
            "next run then starts at initial_window_start, or exports the whole history)"
        ) from None


def write_file_records(target: ParquetTarget, record: ExportRun) -> None:
    """Add ``record`` to a Parquet destination's record file (replacing an earlier record of its run)."""
    runs = [r for r in read_file_records(target) if (r.key, r.run_id) != (record.key, record.run_id)]
    runs.append(record)
    mine = [r for r in runs if r.key == record.key][-KEEP_RUNS:]
    runs = [r for r in runs if r.key != record.key] + mine
    text = json.dumps({"runs": [r.to_json() for r in runs]}, indent=1)
    path = records_file(target)
    if target.local is None:  # an object store shows a new object only once it is whole
        path.write_text(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# -- SQL: a table beside the exported one ----------------------------------------------------------------


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
