"""Tests of the extraction core every export shares, with an in-memory destination over the emulator."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_smsnexus.transfers.extraction import SMSNexusExportBaseOperator

if TYPE_CHECKING:
    from airflow_provider_smsnexus.transfers.window import ExportRun

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOON = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
END = datetime(2026, 1, 2, tzinfo=timezone.utc)


class MemoryWriter:
    """A destination that keeps the batches, and what was committed or aborted."""

    def __init__(self, fail_on_write: bool = False) -> None:
        self.ids: list[int] = []
        self.committed: list[ExportRun | None] = []
        self.aborted = False
        self.fail_on_write = fail_on_write

    def write(self, table: Any) -> None:
        if self.fail_on_write:
            raise OSError("disk full")
        self.ids.extend(table.column("id").to_pylist())

    def heartbeat(self) -> None:
        pass

    def commit(self, record: ExportRun | None) -> None:
        self.committed.append(record)

    def abort(self) -> None:
        self.aborted = True


class MemoryExport(SMSNexusExportBaseOperator):
    def __init__(
        self, *, writer: MemoryWriter, history: list[ExportRun] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.writer = writer
        self.history = history or []

    def _open_writer(self, window: Any) -> MemoryWriter:
        return self.writer

    def _history(self) -> list[ExportRun]:
        return self.history

    def _destination(self) -> str:
        return "memory://test"

    def _lineage_output(self) -> tuple[str, str]:
        return ("memory", "test")


def _created(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))


def test_a_window_exports_exactly_the_messages_created_in_it(smsnexus_emulator, smsnexus_conn) -> None:
    smsnexus_emulator.admin.seed_messages(120, random_seed=3, start=START, end=END)
    expected = sorted(m["id"] for m in smsnexus_emulator.admin.messages() if START <= _created(m) < NOON)
    writer = MemoryWriter()
    export = MemoryExport(
        task_id="export", writer=writer, window_start=START, window_end=NOON, smsnexus_conn_id=smsnexus_conn
    )
    result = export.execute({})
    assert sorted(writer.ids) == expected
    assert 0 < len(expected) < 120
    assert result["rows"] == len(expected)
    assert writer.committed == [None]  # outside a DAG run there is no record to keep
    assert not writer.aborted


def test_a_run_keeps_the_window_it_asked_for_as_its_record(smsnexus_emulator, smsnexus_conn) -> None:
    smsnexus_emulator.admin.seed_messages(20, random_seed=1, start=START, end=END)
    writer = MemoryWriter()
    export = MemoryExport(task_id="export", writer=writer, smsnexus_conn_id=smsnexus_conn)
    export.execute({"run_id": "manual__1", "data_interval_start": START, "data_interval_end": END})
    [record] = writer.committed
    assert (record.key, record.run_id, record.start, record.end, record.rows) == (
        ".export",
        "manual__1",
        START,
        END,
        20,
    )


def test_a_failing_destination_is_aborted_and_nothing_committed(smsnexus_emulator, smsnexus_conn) -> None:
    smsnexus_emulator.admin.seed_messages(5, start=START, end=END)
    writer = MemoryWriter(fail_on_write=True)
    export = MemoryExport(
        task_id="export", writer=writer, window_start=START, window_end=END, smsnexus_conn_id=smsnexus_conn
    )
    with pytest.raises(OSError, match="disk full"):
        export.execute({})
    assert writer.aborted
    assert writer.committed == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resource": "conversations", "status": "delivered"}, "exported whole"),
        ({"direction": "sideways"}, "direction must be one of"),
        ({"per_page": 101}, "per_page must be between 1 and 100"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryExport(task_id="export", writer=MemoryWriter(), **kwargs)


def test_lineage_names_the_api_path_and_the_destination(smsnexus_conn) -> None:
    lineage = MemoryExport(
        task_id="export", writer=MemoryWriter(), smsnexus_conn_id=smsnexus_conn
    ).lineage_datasets()
    assert lineage["input"][1] == "/api/messages"
    assert lineage["output"] == ("memory", "test")
    assert ("id", "int64") in lineage["schema"]
