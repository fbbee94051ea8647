"""Tests of the export record of a Parquet destination: the JSON file beside the dataset."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.transfers.parquet_target import (
    ParquetTarget,
    read_file_records,
    records_file,
    write_file_records,
)
from airflow_provider_smsnexus.transfers.window import ExportRun

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 2, tzinfo=timezone.utc)
T2 = datetime(2026, 3, 3, tzinfo=timezone.utc)


def test_records_file_sits_beside_the_data_with_a_name_readers_skip(tmp_path) -> None:
    folder = ParquetTarget.resolve(tmp_path / "out", None, partitioned=True)
    single = ParquetTarget.resolve(tmp_path / "one.parquet", None, partitioned=False)
    assert records_file(folder) == tmp_path / "out" / "_smsnexus_export_runs.json"
    assert records_file(single) == tmp_path / "_one.parquet.smsnexus_export_runs.json"


def test_a_rewritten_run_replaces_its_record_and_other_runs_stay(tmp_path) -> None:
    target = ParquetTarget.resolve(tmp_path / "out", None, partitioned=True)
    assert read_file_records(target) == []
    write_file_records(target, ExportRun("d.t", "r1", None, T1, rows=5))
    write_file_records(target, ExportRun("d.t", "r2", T1, T2, rows=1))
    write_file_records(target, ExportRun("d.t", "r1", None, T1, rows=7))
    runs = read_file_records(target)
    assert sorted((r.run_id, r.start, r.end, r.rows) for r in runs) == [
        ("r1", None, T1, 7),
        ("r2", T1, T2, 1),
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_smsnexus_export_runs.json"]


def test_an_unreadable_record_file_says_to_fix_or_delete_it(tmp_path) -> None:
    target = ParquetTarget.resolve(tmp_path / "out", None, partitioned=True)
    (tmp_path / "out").mkdir()
    records_file(target).write_text("{not json")
    with pytest.raises(SMSNexusError, match=r"cannot be read .* fix or delete it"):
        read_file_records(target)
