"""
Parquet files of one export run: how they are staged, and the atomic swap into the destination
(:class:`ParquetExportWriter`), after which the run's record is written beside them (where they go and the
record: :mod:`~airflow_provider_smsnexus.transfers.parquet_target`).

Rows stream into per-partition Parquet files in a staging folder; only when the whole run has succeeded are
the files swapped into the destination, one atomic replace per partition. A failed or killed run leaves the
destination as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.parquet_target import (
    ParquetTarget,
    check_local_destination,
    path_error,
    write_file_records,
)
from airflow_provider_smsnexus.transfers.schema import arrow_schema
from airflow_provider_smsnexus.transfers.stream import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    import logging
    from datetime import date
    from typing import BinaryIO

    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_smsnexus.transfers.window import ExportRun

#: The name of the single data file in each partition folder (or in the destination folder).
DATA_FILE = "data.parquet"
#: The only partitioning there is: hive-style ``created_date=YYYY-MM-DD`` folders on the UTC creation day.
PARTITION_BY_CREATED_DATE = "created_date"
#: A staging folder not touched for this long belongs to a run that died; the next run removes it.
STALE_STAGING_SECONDS = 3600.0
#: Writers kept open at once (each holds about a megabyte); a partition whose writer was closed gets a further
#: part file, merged at commit. Pages come in created_at order on SMS Nexus, so few partitions are active at once.
MAX_OPEN_WRITERS = 8
_STAGING_MARK = ".smsnexus-staging-"


def partition_key(day: date) -> str:
    """The folder of one day: ``created_date=YYYY-MM-DD``."""
    return f"{PARTITION_BY_CREATED_DATE}={day.isoformat()}"


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """
    The columns worth a dictionary encoding: all but ``id`` and the timestamps, whose values are nearly all
    distinct (their dictionary only costs: measured, the files are a quarter smaller without it, and written
    25 % faster; bench/README.md).
    """
    import pyarrow as pa

    return [field.name for field in schema if field.name != "id" and not pa.types.is_timestamp(field.type)]


class _StagedFile:
    """One Parquet file being written in the staging folder, synced to disk when closed."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str):
        import pyarrow.parquet as pq

        self.path = path
        self.rows = 0
        self._handle: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._writer: pq.ParquetWriter = pq.ParquetWriter(
            self._handle,
            schema,
            compression=compression,
            write_statistics=True,
            use_dictionary=dictionary_columns(schema),
        )

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


def sweep_stale_staging(
    parent: Path, prefix: str, *, older_than: float = STALE_STAGING_SECONDS
) -> list[Path]:
    """
    Remove staging folders that killed runs left behind in ``parent``.

    :param parent: the folder holding the staging folders.
    :param prefix: their name prefix.
    :param older_than: seconds since a folder's last heartbeat after which its run is taken as dead.
    :return: the folders removed.
    """
    removed = []
    if not parent.is_dir():
        return removed
    limit = time.time() - older_than
    for candidate in parent.glob(f"{prefix}*"):
        try:
            if candidate.is_dir() and candidate.stat().st_mtime < limit:
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
        except FileNotFoundError:  # another run swept it first
            continue
    return removed


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _replace_local(source: Path, target: Path) -> None:
    """Atomically replace ``target`` with ``source`` (via a copy next to ``target`` across devices)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(source, "rb") as src, open(temporary, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temporary, target)
        source.unlink()
    _fsync_dir(target.parent)


class ParquetExportWriter:
    """
    Stage one run's rows as Parquet, then swap them into the destination.

    Batches are split by partition and buffered per partition; whenever the buffers together hold
    ``batch_size`` rows the largest are written out as row groups, so memory stays bounded and row groups
    stay as large as the partitions allow. At commit every partition of the window (days without rows too:
    they get a file with no rows) becomes one ``data.parquet`` that replaces the destination's file in one
    atomic step.

    :param target: where the files go.
    :param resource: the exported resource (selects the schema).
    :param partitioned: write ``created_date=YYYY-MM-DD/`` partitions (messages only).
    :param covered_days: the days the run's window covers (replaced even when empty); None when the window
        has no start (then the days that have rows).
    :param compression: the Parquet codec.
    :param batch_size: rows buffered at most before writing.
    :param log: the operator's logger.
    """

    def __init__(
        self,
        target: ParquetTarget,
        resource: str,
        *,
        partitioned: bool,
        covered_days: list[date] | None,
        log: logging.Logger,
        compression: str = "zstd",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_open_writers: int = MAX_OPEN_WRITERS,
    ):
        self.target = target
        self.schema = arrow_schema(resource)
        self.partitioned = partitioned
        self.covered_days = covered_days
        self.compression = compression
        self.batch_size = batch_size
        self.max_open_writers = max_open_writers
        self.log = log
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}
        self._open: OrderedDict[str, _StagedFile] = OrderedDict()
        self._parts: dict[str, list[Path]] = {}
        self._last_beat = 0.0
        self.staging = self._make_staging()

    # -- staging ------------------------------------------------------------------------------------

    def _make_staging(self) -> Path:
        if self.target.local is not None:
            check_local_destination(self.target)
            parent, prefix = self.target.local.parent, f".{self.target.local.name}{_STAGING_MARK}"
        else:
            parent, prefix = Path(tempfile.gettempdir()), f"smsnexus-export{_STAGING_MARK}"
        for stale in sweep_stale_staging(parent, prefix):
            self.log.warning("Removed the staging folder %s of an export that did not finish", stale)
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f"{prefix}{uuid.uuid4().hex}"
        staging.mkdir()
        return staging

    def heartbeat(self) -> None:
        """Touch the staging folder (at most every 30 s), so that no other run takes it for stale."""
        now = time.monotonic()
        if now - self._last_beat >= 30:
            self._last_beat = now
            os.utime(self.staging)

    # -- writing ------------------------------------------------------------------------------------

    def _split(self, table: pa.Table) -> list[tuple[str, pa.Table]]:
        if not self.partitioned:
            return [("", table)]
        import pyarrow as pa
        import pyarrow.compute as pc

        days = pc.cast(table.column("created_at"), pa.date32())
        if days.null_count:
            raise SMSNexusError("messages without created_at cannot be partitioned by created_date")
        order = pc.sort_indices(days)
        runs = pc.run_end_encode(days.take(order).combine_chunks())
        pieces, begin = [], 0
        for end, day in zip(runs.run_ends.to_pylist(), runs.values.to_pylist()):
            # take() copies: a piece that waits in a buffer must not keep the whole batch alive (a slice would).
            pieces.append((partition_key(day), table.take(order.slice(begin, end - begin))))
            begin = end
        return pieces

    def write(self, table: pa.Table) -> None:
        """Buffer one batch; write the largest buffers once ``batch_size`` rows are held."""
        for key, piece in self._split(table):
            self._buffers.setdefault(key, []).append(piece)
            self._buffered[key] = self._buffered.get(key, 0) + piece.num_rows
        while sum(self._buffered.values()) >= self.batch_size:
            self._flush(max(self._buffered, key=self._buffered.__getitem__))

    def _flush(self, key: str) -> None:
        import pyarrow as pa

        pieces = self._buffers.pop(key, [])
        self._buffered.pop(key, None)
        if not pieces:
            return
        writer = self._open.get(key)
        if writer is None:
            if len(self._open) >= self.max_open_writers:
                oldest_key, oldest = self._open.popitem(last=False)
                # Its buffered rows go into its file before it closes: otherwise they would become a
                # second part file, merged (read and written again) at commit.
                rest = self._buffers.pop(oldest_key, [])
                self._buffered.pop(oldest_key, None)
                if rest:
                    oldest.write(pa.concat_tables(rest).combine_chunks())
                oldest.close()
            folder = self.staging / key if key else self.staging
            folder.mkdir(parents=True, exist_ok=True)
            parts = self._parts.setdefault(key, [])
            writer = _StagedFile(folder / f"part-{len(parts):05d}.parquet", self.schema, self.compression)
            parts.append(writer.path)
            self._open[key] = writer
        else:
            self._open.move_to_end(key)
        writer.write(pa.concat_tables(pieces).combine_chunks())

    def _finish_partition(self, key: str) -> Path:
        """Turn a partition's part files (none, one or several) into one staged ``data.parquet``."""
        import pyarrow.parquet as pq

        folder = self.staging / key if key else self.staging
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / DATA_FILE
        parts = self._parts.get(key, [])
        if len(parts) == 1:
            os.replace(parts[0], final)
            return final
        merged = _StagedFile(final, self.schema, self.compression)
        try:
            for part in parts:  # one row group at a time: memory stays at one batch
                source = pq.ParquetFile(part)
                for index in range(source.num_row_groups):
                    merged.write(source.read_row_group(index))
                part.unlink()
        finally:
            merged.close()
        return final

    def _partitions(self) -> list[str]:
        staged = set(self._parts)
        if not self.partitioned:
            return [""]
        if self.covered_days is None:
            return sorted(staged)
        covered = {partition_key(day) for day in self.covered_days}
        if staged - covered:
            raise SMSNexusError(
                f"rows outside the export window reached partitions {sorted(staged - covered)}"
            )
        return sorted(covered)

    # -- commit / abort -----------------------------------------------------------------------------

    def commit(self, record: ExportRun | None = None) -> None:
        """
        Write out the buffers, then replace each covered partition's file with this run's, atomically; then
        add ``record`` (when given) to the destination's record of runs.
        """
        for key in list(self._buffers):
            self._flush(key)
        for writer in self._open.values():
            writer.close()
        self._open.clear()
        staged = {key: self._finish_partition(key) for key in self._partitions()}
        self.log.info("Publishing %d file(s) to %s", len(staged), self.target.url)
        for key, source in staged.items():
            self._publish(key, source)
        shutil.rmtree(self.staging, ignore_errors=True)
        if record is not None:
            write_file_records(self.target, record)

    def _destination_file(self, key: str) -> str:
        if self.target.single_file:
            return ""
        return f"{key}/{DATA_FILE}" if key else DATA_FILE

    def _publish(self, key: str, source: Path) -> None:
        relative = self._destination_file(key)
        if self.target.local is not None:
            target = self.target.local / relative if relative else self.target.local
            try:
                _replace_local(source, target)
            except OSError as error:  # checked before the run; changed since (or a full disk)
                raise path_error(self.target, error, publishing=True) from None
            folder = target.parent
            leftovers = [p for p in folder.glob("*.parquet") if p.name != target.name] if key else []
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
            return
        assert self.target.remote is not None
        target_path = self.target.remote / relative if relative else self.target.remote
        # put_file uploads in one request or one multipart upload: object stores show the new object only
        # once it is complete, and the old one until then.
        target_path.fs.put_file(str(source), target_path.path)
        if key:
            for leftover in target_path.parent.iterdir():
                if leftover.name.endswith(".parquet") and leftover.name != DATA_FILE:
                    leftover.unlink()

    def abort(self) -> None:
        """Close the staged files and remove the staging folder; the destination is untouched."""
        for writer in self._open.values():
            try:
                writer.close()
            except Exception:  # the run is failing already: keep its error, not this one
                self.log.debug("Closing a staged file failed", exc_info=True)
        self._open.clear()
        shutil.rmtree(self.staging, ignore_errors=True)
