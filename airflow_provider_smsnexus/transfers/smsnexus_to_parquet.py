"""
Export SMS Nexus messages, conversations or phone numbers to Parquet: :class:`SMSNexusToParquetOperator`.

The files are staged and swapped in by :class:`~airflow_provider_smsnexus.transfers.parquet_files.ParquetExportWriter`:
a failed or killed run leaves the destination as it was.

.. seealso:: "Parquet" in :doc:`/guides/exports`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_smsnexus.transfers.extraction import SMSNexusExportBaseOperator, is_templated
from airflow_provider_smsnexus.transfers.parquet_files import (
    PARTITION_BY_CREATED_DATE,
    ParquetExportWriter,
)
from airflow_provider_smsnexus.transfers.parquet_target import (
    ParquetTarget,
    check_local_destination,
    read_file_records,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from airflow_provider_smsnexus.transfers.window import ExportRun, ExportWindow

__all__ = ["SMSNexusToParquetOperator"]


class SMSNexusToParquetOperator(SMSNexusExportBaseOperator):
    """
    Export SMS Nexus messages, conversations or phone numbers to Parquet files.

    Messages are partitioned by their UTC creation day into hive-style ``created_date=YYYY-MM-DD/`` folders
    of one ``data.parquet`` each; the window is widened to whole days, and a rerun replaces exactly the
    partitions its window covers (days without messages get a file without rows), so reruns are idempotent.
    Without partitioning the destination (``path/data.parquet``, or ``path`` itself when it ends in
    ``.parquet``) holds exactly the last run's rows. Files appear atomically, and a failed run leaves the
    previous files in place.

    :param path: (templated) the destination folder (or file): a local path, ``file://`` URL or any
        ObjectStoragePath URL (``s3://bucket/prefix``, ``gs://...``).
    :param storage_conn_id: the connection of the object store, when the URL needs one.
    :param partition_by: ``"created_date"`` or None; default: ``"created_date"`` for messages, None otherwise.
    :param compression: the Parquet codec (``zstd`` by default; ``snappy``, ``gzip``, ``none`` ...).
    :param kwargs: the export's parameters (resource, window, lookback, filters), see
        :class:`~airflow_provider_smsnexus.transfers.extraction.SMSNexusExportBaseOperator`.

    The task's outlet is ``Asset(<destination URL>)`` when ``path`` is not templated.

    .. seealso:: "Parquet" in :doc:`/guides/exports`.
    """

    template_fields: Sequence[str] = (*SMSNexusExportBaseOperator.template_fields, "path")
    ui_color = "#d4edfa"

    def __init__(
        self,
        *,
        path: str | os.PathLike | ObjectStoragePath,
        storage_conn_id: str | None = None,
        partition_by: str | None = "auto",
        compression: str = "zstd",
        **kwargs: Any,
    ) -> None:
        resource = kwargs.get("resource", "messages")
        if partition_by == "auto":
            partition_by = PARTITION_BY_CREATED_DATE if resource == "messages" else None
        if partition_by not in (None, PARTITION_BY_CREATED_DATE):
            raise ValueError(f"partition_by must be 'created_date' or None, not {partition_by!r}")
        if partition_by and resource != "messages":
            raise ValueError("partition_by='created_date' applies to resource='messages' only")
        if "outlets" not in kwargs and not is_templated(path):
            target = ParquetTarget.resolve(path, storage_conn_id, partitioned=bool(partition_by))
            kwargs["outlets"] = [Asset(uri=target.url)]
        super().__init__(**kwargs)
        self.path = path
        self.storage_conn_id = storage_conn_id
        self.partition_by = partition_by
        self.compression = compression

    @property
    def target(self) -> ParquetTarget:
        """The resolved destination (after templating)."""
        return ParquetTarget.resolve(self.path, self.storage_conn_id, partitioned=bool(self.partition_by))

    def _whole_days(self) -> bool:
        return bool(self.partition_by)

    def _destination(self) -> str:
        return self.target.url

    def _history(self) -> list[ExportRun]:
        return read_file_records(self.target)

    def _check_destination(self) -> None:
        if self.target.local is not None:
            check_local_destination(self.target)

    def _lineage_output(self) -> tuple[str, str]:
        return self.target.lineage()

    def _open_writer(self, window: ExportWindow | None) -> ParquetExportWriter:
        return ParquetExportWriter(
            self.target,
            self.resource,
            partitioned=bool(self.partition_by),
            covered_days=window.covered_days() if window is not None and self.partition_by else None,
            compression=self.compression,
            batch_size=self.batch_size,
            log=self.log,
        )
