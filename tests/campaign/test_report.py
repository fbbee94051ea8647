"""Tests of the campaign report: the Parquet file, the XCom summary, and the task's final verdict."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from airflow_provider_smsnexus.campaign.model import CampaignRow
from airflow_provider_smsnexus.campaign.report import (
    REPORT_COLUMNS,
    check_destination,
    default_report_dir,
    raise_for_outcome,
    summarise,
    write_report,
)
from airflow_provider_smsnexus.exceptions import (
    SMSNexusDestinationError,
    SMSNexusError,
    SMSNexusSendOutcomeUnknownError,
)


def test_write_report_writes_one_typed_row_per_input_row(tmp_path) -> None:
    rows = [
        {"row_number": 1, "recipient": "+12125550101", "outcome": "sent", "message_id": "9", "credits": 1},
        {"row_number": 2, "recipient": "bad \udcff", "outcome": "invalid", "reason": "not a number"},
    ]
    destination = tmp_path / "sub" / "report.parquet"
    assert write_report(rows, destination) == str(destination)
    table = pq.read_table(destination)
    assert table.schema.names == [name for name, _ in REPORT_COLUMNS]
    assert table.to_pylist() == [
        {"row_number": 1, "recipient": "+12125550101", "outcome": "sent", "message_id": "9", "credits": 1,
         "reason": None, "zones": None, "local_time": None},
        {"row_number": 2, "recipient": "bad \\udcff", "outcome": "invalid", "message_id": None,
         "credits": None, "reason": "not a number", "zones": None, "local_time": None},
    ]  # fmt: skip
    assert [p.name for p in destination.parent.iterdir()] == ["report.parquet"]


def _rows(*outcomes: str) -> list[CampaignRow]:
    return [CampaignRow(row_number=i, outcome=o, credits=2) for i, o in enumerate(outcomes, 1)]


def test_summarise_counts_outcomes_and_credits_of_sent_rows_only() -> None:
    summary = summarise("c", _rows("sent", "sent", "failed", "duplicate", "unknown"), 9, dry_run=False)
    assert summary == {
        "campaign_id": "c", "total": 5, "invalid": 0, "duplicates": 1, "suppressed": 0, "already_sent": 0,
        "sent": 2, "failed": 1, "unknown": 1, "credits_estimated": 9, "credits_used": 4, "dry_run": False,
    }  # fmt: skip


def test_raise_for_outcome_fails_on_unknown_rows_and_on_too_many_failures() -> None:
    with pytest.raises(SMSNexusSendOutcomeUnknownError, match="1 of 2 messages have an unknown outcome"):
        raise_for_outcome(None, summarise("c", _rows("sent", "unknown"), 0, dry_run=False), 1.0)
    with pytest.raises(SMSNexusError, match="1 of 2 sends failed"):
        raise_for_outcome(None, summarise("c", _rows("sent", "failed"), 0, dry_run=False), 0.4)
    raise_for_outcome(None, summarise("c", _rows("sent", "failed"), 0, dry_run=False), 0.5)


# -- destinations checked before the first send (issue 22, hole 6), and the default folder (issue 25) --------


def test_default_report_dir_is_under_airflow_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert default_report_dir() == tmp_path / "home" / "smsnexus" / "reports"
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_report_dir() == tmp_path / "user" / "airflow" / "smsnexus" / "reports"


def test_check_destination_creates_the_folder_and_leaves_nothing_behind(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "report.parquet"
    check_destination(str(target))
    assert list(target.parent.iterdir()) == []
    check_destination(f"file://{target}")
    assert list(target.parent.iterdir()) == []


def _under_a_file(tmp_path) -> str:
    (tmp_path / "file").write_text("")
    return str(tmp_path / "file" / "r.parquet")


def _a_folder(tmp_path) -> str:
    (tmp_path / "r.parquet").mkdir()
    return str(tmp_path / "r.parquet")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_under_a_file, "a file is in the way"),
        (_a_folder, "it is a folder"),
        (
            lambda tmp_path: "/proc/smsnexus-reports/r.parquet",
            "cannot be created (No such file or directory)",
        ),
        (lambda tmp_path: "/sys/smsnexus-r.parquet", "no file can be created in /sys (Permission denied)"),
    ],
    ids=["file in the way", "a folder", "folder cannot be created", "no permission"],
)
def test_check_destination_names_the_parameter_the_path_and_the_problem(tmp_path, make, problem) -> None:
    path = make(tmp_path)
    with pytest.raises(SMSNexusDestinationError) as caught:
        check_destination(path, parameter="report_path")
    error = caught.value
    assert (error.parameter, error.path, error.summary) == ("report_path", path, None)
    assert str(error).startswith(f"report_path={path!r} cannot be written: ")
    assert problem in str(error)


def test_check_destination_in_object_storage_writes_and_removes_a_probe() -> None:
    import uuid

    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    memory = fsspec.filesystem("memory")
    attach("memory", fs=memory)
    bucket = f"/reports-{uuid.uuid4().hex}"
    check_destination(f"memory://{bucket}/run/report.parquet")
    assert memory.find(bucket) == []
    with ObjectStoragePath(f"memory://{bucket}/run/report.parquet/part-0").open("wb") as handle:
        handle.write(b"x")
    with pytest.raises(SMSNexusDestinationError, match="it is a folder"):
        check_destination(f"memory://{bucket}/run/report.parquet")
    memory.rm(bucket, recursive=True)
