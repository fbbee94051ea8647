"""The one rule telling local destinations from object storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_smsnexus.utils.paths import local_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/data/report.parquet", "/data/report.parquet"),
        ("relative/report.parquet", "relative/report.parquet"),
        ("file:///data/report.parquet", "/data/report.parquet"),
        ("FILE:///data/report.parquet", "/data/report.parquet"),
        ("local:///data/exports", "/data/exports"),
        (Path("/data/x.parquet"), "/data/x.parquet"),
        ("s3://bucket/report.parquet", None),
        ("gs://bucket/prefix", None),
        ("memory://tmp/x", None),
    ],
)
def test_a_path_or_file_url_is_local_and_any_other_url_is_object_storage(name, expected):
    assert local_path(name) == expected
