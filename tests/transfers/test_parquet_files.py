"""The Parquet destination on local data: partitions, atomic replacement, staging, object storage."""

from __future__ import annotations

import logging
import os
import time
from datetime import date, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from airflow_provider_smsnexus.transfers.parquet_files import ParquetExportWriter, sweep_stale_staging
from airflow_provider_smsnexus.transfers.parquet_target import ParquetTarget
from airflow_provider_smsnexus.transfers.schema import arrow_schema, rows_to_table
from tests.transfers.export_helpers import message_rows, read_dataset

LOG = logging.getLogger(__name__)
DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(5)]


def writer_for(path, days=DAYS, **options):
    target = ParquetTarget.resolve(str(path), None, partitioned=True)
    return ParquetExportWriter(target, "messages", partitioned=True, covered_days=days, log=LOG, **options)


def messages_on(day_offsets, per_day=10, first_id=1, status="queued"):
    rows = []
    for offset in day_offsets:
        start = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(days=offset)
        rows += message_rows(per_day, start=start, step=timedelta(minutes=7), first_id=first_id + len(rows))
    for row in rows:
        row["status"] = status
    return rows_to_table("messages", rows)


def snapshot(root):
    """Every file under ``root`` with its bytes."""
    return {
        os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(root)
        for name in names
    }


def test_every_day_of_the_window_gets_one_file_even_without_rows(tmp_path):
    writer = writer_for(tmp_path / "messages")
    writer.write(messages_on([0, 2, 4]))
    writer.commit()
    assert sorted(os.listdir(tmp_path / "messages")) == [f"created_date={d.isoformat()}" for d in DAYS]
    for day in DAYS:
        assert os.listdir(tmp_path / "messages" / f"created_date={day.isoformat()}") == ["data.parquet"]
    empty = pq.read_table(tmp_path / "messages" / "created_date=2026-03-02" / "data.parquet")
    assert empty.num_rows == 0
    assert empty.schema.equals(arrow_schema("messages"), check_metadata=False)
    assert read_dataset(tmp_path / "messages").num_rows == 30
    assert sorted(os.listdir(tmp_path)) == ["messages"]  # no staging left


def test_rerun_replaces_exactly_the_partitions_of_its_window(tmp_path):
    first = writer_for(tmp_path / "m")
    first.write(messages_on([0, 1, 2, 3, 4]))
    first.commit()
    before = snapshot(tmp_path / "m")

    rerun = writer_for(tmp_path / "m", days=DAYS[2:4])
    rerun.write(messages_on([2], first_id=21, status="delivered"))  # day 3 now has only delivered rows
    rerun.commit()
    after = snapshot(tmp_path / "m")

    untouched = ["created_date=2026-03-01", "created_date=2026-03-02", "created_date=2026-03-05"]
    for key in untouched:
        assert after[f"{key}/data.parquet"] == before[f"{key}/data.parquet"]
    day3 = pq.read_table(tmp_path / "m" / "created_date=2026-03-03" / "data.parquet")
    assert set(day3.column("status").to_pylist()) == {"delivered"}
    assert pq.read_table(tmp_path / "m" / "created_date=2026-03-04" / "data.parquet").num_rows == 0


def test_an_aborted_run_leaves_the_destination_byte_for_byte_as_it_was(tmp_path):
    first = writer_for(tmp_path / "m")
    first.write(messages_on([0, 1, 2, 3, 4]))
    first.commit()
    before = snapshot(tmp_path)

    failing = writer_for(tmp_path / "m", batch_size=5)
    failing.write(messages_on([0, 1], status="failed"))  # flushed to staging, not yet published
    assert snapshot(tmp_path / "m") == {k[2:]: v for k, v in before.items() if k.startswith("m/")}
    failing.abort()
    assert snapshot(tmp_path) == before


def test_a_killed_run_leaves_only_a_hidden_staging_folder_that_the_next_run_sweeps(tmp_path):
    killed = writer_for(tmp_path / "m", batch_size=5)
    killed.write(messages_on([0]))  # and then the process dies: no commit, no abort
    staging = killed.staging
    assert staging.name.startswith(".m.smsnexus-staging-")
    assert not (tmp_path / "m").exists()
    old = time.time() - 2 * 3600
    os.utime(staging, (old, old))

    fresh = writer_for(tmp_path / "m")
    assert not staging.exists()
    fresh.abort()


def test_sweeping_keeps_staging_folders_with_a_recent_heartbeat(tmp_path):
    (tmp_path / ".m.smsnexus-staging-live").mkdir()
    (tmp_path / ".m.smsnexus-staging-dead").mkdir()
    old = time.time() - 2 * 3600
    os.utime(tmp_path / ".m.smsnexus-staging-dead", (old, old))
    removed = sweep_stale_staging(tmp_path, ".m.smsnexus-staging-")
    assert [p.name for p in removed] == [".m.smsnexus-staging-dead"]
    assert (tmp_path / ".m.smsnexus-staging-live").exists()


def test_partitions_written_in_pieces_are_merged_into_one_file_with_large_row_groups(tmp_path):
    # One writer open at a time and small buffers: days interleave, so each day gets several part files.
    writer = writer_for(tmp_path / "m", batch_size=15, max_open_writers=1)
    table = messages_on([0, 1, 2, 3, 4], per_day=12)
    order = [i for start in range(12) for i in range(start, 60, 12)]  # round-robin over the days
    table = table.take(order)
    for offset in range(0, table.num_rows, 9):
        writer.write(table.slice(offset, 9))
    assert max(len(parts) for parts in writer._parts.values()) > 1
    writer.commit()
    assert sorted(read_dataset(tmp_path / "m").column("id").to_pylist()) == list(range(1, 61))
    for day in DAYS:
        folder = tmp_path / "m" / f"created_date={day.isoformat()}"
        assert os.listdir(folder) == ["data.parquet"]
        assert pq.read_table(folder / "data.parquet").num_rows == 12


def test_files_use_zstd_and_one_row_group_per_buffered_batch(tmp_path):
    writer = writer_for(tmp_path / "m")
    writer.write(messages_on([0], per_day=200))
    writer.commit()
    metadata = pq.ParquetFile(tmp_path / "m" / "created_date=2026-03-01" / "data.parquet").metadata
    assert metadata.num_row_groups == 1
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_ids_and_timestamps_are_written_plain_and_other_columns_with_a_dictionary(tmp_path):
    # Ids and creation times are nearly all distinct: a dictionary of them would only cost.
    writer = writer_for(tmp_path / "m")
    writer.write(messages_on([0], per_day=200))
    writer.commit()
    metadata = pq.ParquetFile(tmp_path / "m" / "created_date=2026-03-01" / "data.parquet").metadata
    encodings = {
        metadata.schema.column(i).name: set(metadata.row_group(0).column(i).encodings)
        for i in range(metadata.num_columns)
    }
    dictionary = {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}
    assert not encodings["id"] & dictionary
    assert not encodings["created_at"] & dictionary
    for name in ("from_number", "to_number", "body", "direction", "status", "credits_used"):
        assert encodings[name] & dictionary, name


def test_stray_parquet_files_in_a_replaced_partition_are_removed(tmp_path):
    stray = tmp_path / "m" / "created_date=2026-03-01" / "part-old.parquet"
    stray.parent.mkdir(parents=True)
    pq.write_table(messages_on([0]), stray)
    keep = tmp_path / "m" / "created_date=2026-03-01" / "_SUCCESS"
    keep.write_text("")
    writer = writer_for(tmp_path / "m", days=DAYS[:1])
    writer.write(messages_on([0], first_id=100))
    writer.commit()
    assert sorted(os.listdir(stray.parent)) == ["_SUCCESS", "data.parquet"]


def test_unpartitioned_exports_replace_one_file(tmp_path):
    for path, expected in [
        (tmp_path / "numbers.parquet", tmp_path / "numbers.parquet"),
        (tmp_path / "n", tmp_path / "n" / "data.parquet"),
    ]:
        for run in range(2):
            target = ParquetTarget.resolve(str(path), None, partitioned=False)
            writer = ParquetExportWriter(
                target, "phone_numbers", partitioned=False, covered_days=None, log=LOG
            )
            writer.write(rows_to_table("phone_numbers", [{"id": run, "number": "+12125550100"}]))
            writer.commit()
        assert pq.read_table(expected).column("id").to_pylist() == [1]


def test_object_storage_destinations_get_one_object_per_partition():
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    target = ParquetTarget.resolve("memory://bucket/exports/messages", None, partitioned=True)
    assert target.url == "memory://bucket/exports/messages"
    assert target.lineage() == ("memory://bucket", "exports/messages")
    writer = ParquetExportWriter(target, "messages", partitioned=True, covered_days=DAYS[:2], log=LOG)
    writer.write(messages_on([0]))
    writer.commit()
    root = ObjectStoragePath("memory://bucket/exports/messages")
    assert sorted(p.name for p in root.iterdir()) == ["created_date=2026-03-01", "created_date=2026-03-02"]
    with (root / "created_date=2026-03-01" / "data.parquet").open("rb") as handle:
        assert pq.read_table(handle).num_rows == 10
    assert not writer.staging.exists()


def test_local_targets_resolve_to_file_urls(tmp_path):
    target = ParquetTarget.resolve(f"file://{tmp_path}/x", None, partitioned=True)
    assert target.local == tmp_path / "x"
    assert target.url == (tmp_path / "x").as_uri()
    assert target.lineage() == ("file", str(tmp_path / "x"))


@pytest.mark.parametrize("bad", ["created_at", "status"])
def test_partition_by_accepts_created_date_only(bad):
    from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator

    with pytest.raises(ValueError, match="partition_by"):
        SMSNexusToParquetOperator(task_id="t", path="/tmp/x", partition_by=bad)
