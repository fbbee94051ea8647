"""
Where a Parquet export goes: the destination (:class:`ParquetTarget`), the checks that a local one can take
the files, and the record of export runs kept beside the dataset.

The record is a JSON file beside the dataset (:func:`records_file`), replaced atomically after the files are
swapped in (by :class:`~airflow_provider_smsnexus.transfers.parquet_files.ParquetExportWriter`): a run killed
between the swap and the record leaves the files of a complete run and an older record, so the next run
repeats its window (partitions are replaced, not appended: nothing doubles) and loses nothing. The next run's
window starts from it (:mod:`~airflow_provider_smsnexus.transfers.window`).
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_smsnexus.exceptions import SMSNexusDestinationError, SMSNexusError
from airflow_provider_smsnexus.transfers.window import ExportRun
from airflow_provider_smsnexus.utils.paths import local_path

#: Runs kept per task in a record file: older ones are never asked for (only the latest ends are).
KEEP_RUNS = 1000


@dataclass(frozen=True)
class ParquetTarget:
    """
    Where an export's files go.

    :param url: the destination as a URL (``file:///...`` for local paths).
    :param local: the local root path, or None for object storage.
    :param remote: the object-storage root, or None for local paths.
    :param single_file: the destination is one file (a path ending in ``.parquet``, unpartitioned).
    """

    url: str
    local: Path | None
    remote: ObjectStoragePath | None
    single_file: bool

    @classmethod
    def resolve(
        cls, path: str | os.PathLike | ObjectStoragePath, storage_conn_id: str | None, *, partitioned: bool
    ):
        """Read ``path`` (a local path, ``file://`` URL or any ObjectStoragePath URL)."""
        if isinstance(path, ObjectStoragePath):
            conn_id = storage_conn_id or path.conn_id
            url = str(path) if path.protocol not in ("", "file", "local") else f"file://{path.path}"
        else:
            conn_id, url = storage_conn_id, os.fspath(path)
        single_file = not partitioned and url.rstrip("/").endswith(".parquet")
        name = local_path(url)
        if name is not None:
            local = Path(os.path.abspath(os.path.expanduser(name)))
            return cls(local.as_uri(), local, None, single_file)
        return cls(url.rstrip("/"), None, ObjectStoragePath(url.rstrip("/"), conn_id=conn_id), single_file)

    def lineage(self) -> tuple[str, str]:
        """The OpenLineage (namespace, name) of the destination."""
        if self.local is not None:
            return "file", str(self.local)
        assert self.remote is not None
        return self.remote.namespace, self.remote.key


def path_error(
    target: ParquetTarget, error: OSError, *, publishing: bool = False
) -> SMSNexusDestinationError:
    """
    The operator's error for a local destination that cannot take the export's files: it names ``path`` and
    the place that failed, and says why and what to do.

    :param publishing: the error came while the staged files were moved in (some may have been), not before.
    """
    place = error.filename or target.local
    if isinstance(error, IsADirectoryError | FileExistsError | NotADirectoryError) and Path(place).is_dir():
        reason = f"{place} is a folder, where the export writes one file"
        fix = "point path at a file name ending in .parquet that is not a folder, or at a folder without .parquet"
    elif isinstance(error, FileExistsError | NotADirectoryError):
        reason = f"{place} is a file, where the export needs a folder"
        fix = "point path at a folder (or at a name that does not exist yet), or move the file away"
    else:
        reason = f"{place} cannot be created or written: {error.strerror or error}"
        fix = "point path at a place the task's user may create folders and files in"
    done = "files published before it stay; a rerun replaces them" if publishing else "nothing was exported"
    return SMSNexusDestinationError(
        f"The export cannot write to path={str(target.local)!r}: {reason}. {done.capitalize()}; {fix}.",
        parameter="path",
        path=str(target.local),
    )


def check_local_destination(target: ParquetTarget) -> None:
    """
    Fail before the first row is read when a local ``path`` cannot take the export's files: a folder where
    one file goes (``path`` ending in ``.parquet``, unpartitioned), a file where a folder goes, a parent that
    is a file or cannot be created.

    :raises SMSNexusDestinationError: naming ``path``, the place that failed, and what to do.
    """
    root = target.local
    assert root is not None
    try:
        if target.single_file and root.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(root))
        if not target.single_file and root.exists() and not root.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root))
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise path_error(target, error) from None


# -- the record of runs: a JSON file beside the dataset ---------------------------------------------


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
