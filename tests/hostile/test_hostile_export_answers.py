"""Whatever rows a server lists, an export ends in a typed error with its destination as it was, or in a
destination holding each listed id at most once: random page contents served with ``responses``."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsnexus.transfers import smsnexus_to_sql
from airflow_provider_smsnexus.transfers.smsnexus_to_parquet import SMSNexusToParquetOperator
from airflow_provider_smsnexus.transfers.smsnexus_to_sql import SMSNexusToSqlOperator
from tests.hostile.hostile_strategies import export_rows
from tests.hostile.hostile_support import attempt, no_token

if TYPE_CHECKING:
    from pathlib import Path

BASE = "https://smsnexus.invalid/api"
TOKEN = "SMSNEXUS-MOCK-SECRET-hostile-export"
CONN_ID = "smsnexus_garbage_export"


@pytest.fixture
def export_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    extras = {"max_retries": 0, "read_rate_limit": 100_000, "rate_limit_period": 1}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "smsnexus", "host": BASE, "password": TOKEN, "extra": extras}),
    )
    warehouse = tmp_path / "warehouse.db"  # beside the tables' stand-in paths
    monkeypatch.setattr(smsnexus_to_sql, "default_warehouse_path", lambda: warehouse)
    return tmp_path


def snapshot(kind: str, where: Path) -> Any:
    """The destination's content: file bytes, or the table's rows."""
    if kind == "sqlite":
        import sqlalchemy as sa

        engine = sa.create_engine(f"sqlite:///{where.parent / 'warehouse.db'}")
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(where.name):
                    return None
                return [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{where.name}" ORDER BY id'))]
        finally:
            engine.dispose()
    if not where.exists():
        return None
    if where.is_file():
        return where.read_bytes()
    return {str(p.relative_to(where)): p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()}


def exported_ids(kind: str, where: Path) -> list[int]:
    if kind == "sqlite":
        return [row[0] for row in snapshot(kind, where) or []]
    import pyarrow.dataset as ds

    return ds.dataset(str(where), format="parquet", partitioning="hive").to_table().column("id").to_pylist()


def operator(kind: str, where: Path) -> Any:
    """An export of ``kind`` into ``where`` (a folder or file; for SQL the table is named ``where.name``)."""
    if kind == "sqlite":
        return SMSNexusToSqlOperator(task_id="export", smsnexus_conn_id=CONN_ID, table=where.name)
    if kind == "parquet-days":
        return SMSNexusToParquetOperator(task_id="export", smsnexus_conn_id=CONN_ID, path=str(where))
    return SMSNexusToParquetOperator(
        task_id="export", smsnexus_conn_id=CONN_ID, path=str(where), partition_by=None
    )


def export(kind: str, where: Path, rows: list[Any], *, last_page: int | None = 1) -> dict[str, Any]:
    """Run one export of ``kind`` while the server lists ``rows`` on one page."""
    body: dict[str, Any] = {"success": True, "data": rows}
    if last_page is not None:
        body["meta"] = {"last_page": last_page}
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/balance", json=BALANCE)  # the read that measures the server's clock
        mock.get(f"{BASE}/messages", json=body)
        return operator(kind, where).execute({})


#: The answer to the read that measures the server's clock for the listed horizon.
BALANCE = {"success": True, "data": {"credits": 1}}
#: A row every example's destination holds before the random export runs.
EARLIER_ROW = {"id": 2**62 + 7, "created_at": "2026-02-01T00:00:00Z", "body": "exported earlier"}
_examples = itertools.count()


def parse_time(value: Any) -> datetime | None:
    """A listed created_at as an aware datetime, or None when it is not an ISO 8601 time."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


def as_int(value: Any) -> int | None:
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pages=st.lists(st.lists(export_rows, max_size=6), min_size=1, max_size=3),
    kind=st.sampled_from(["parquet-days", "parquet.parquet", "sqlite"]),
    meta=st.booleans(),
)
def test_any_listed_rows_end_in_a_typed_error_or_an_export_without_duplicates(
    export_home, figures, pages, kind, meta
):
    figures.add("hypothesis_examples")
    figures.add("hypothesis_examples_export")
    where = export_home / f"t{next(_examples)}{'.parquet' if kind == 'parquet.parquet' else ''}"
    export(kind, where, [EARLIER_ROW])
    before = snapshot(kind, where)

    def page(request: Any) -> tuple[int, dict, str]:
        number = int(parse_qs(urlsplit(request.url).query).get("page", ["1"])[0])
        body: dict[str, Any] = {"success": True, "data": pages[number - 1] if number <= len(pages) else []}
        if meta:
            body["meta"] = {"current_page": number, "last_page": len(pages), "per_page": 100}
        return 200, {}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/balance", json=BALANCE)
        mock.add_callback("GET", f"{BASE}/messages", callback=page)
        result, error = attempt(lambda: operator(kind, where).execute({}))
    if error is not None:
        assert no_token(figures, str(error), repr(error))
        assert snapshot(kind, where) == before, "a failed export changed its destination"
        figures.add("export_garbage_typed_errors")
        return
    assert no_token(figures, result)
    ids = exported_ids(kind, where)
    duplicates = len(ids) - len(set(ids))
    figures.add("duplicates_found", duplicates)
    assert duplicates == 0
    listed = {as_int(row.get("id")) for rows in pages for row in rows}
    assert set(ids) - {EARLIER_ROW["id"]} <= listed
    # Completeness: the export succeeded, so every row the list served (the pages up to the first empty
    # one: a walk ends there) whose created_at lies before the run is in the destination.
    # An id listed twice with two created_at values breaks the documented assumption that created_at never
    # changes: its first listing is the one that counts (the walker's rule), so the oracle reads it alike.
    served = list(itertools.takewhile(bool, pages))
    # The window the run declares ends at its listed horizon, never after the moment it ran.
    now = parse_time(result["window_end"])
    assert now is not None
    assert now <= datetime.now(timezone.utc)
    first_listing: dict[Any, Any] = {}
    for rows in served:
        for row in rows:
            first_listing.setdefault(as_int(row["id"]), row)
    in_window = {
        row_id
        for row_id, row in first_listing.items()
        if (moment := parse_time(row.get("created_at"))) is not None and moment < now
    }
    assert in_window <= set(ids)
    assert result["rows"] == len(in_window)
    figures.add("export_garbage_accepted")


@pytest.mark.parametrize("kind", ["parquet-days", "parquet.parquet", "sqlite"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_outside_the_calendar_is_a_typed_error_and_leaves_the_export_as_it_was(
    export_home, figures, kind, moment
):
    # '0001-01-01T00:00:00+01:00' is the last hour of year 0 in UTC, '9999-12-31T23:59:59-01:00' the first
    # hour of year 10000: both are valid ISO 8601, and neither fits Python's (or a date partition's) calendar.
    where = export_home / ("t.parquet" if kind == "parquet.parquet" else "t")
    export(kind, where, [EARLIER_ROW])
    before = snapshot(kind, where)
    _, error = attempt(
        lambda: export(
            kind, where, [EARLIER_ROW, {"id": 2, "created_at": moment, "body": "outside the calendar"}]
        )
    )
    if error is not None:
        figures.add("export_garbage_typed_errors")
        assert snapshot(kind, where) == before
        return
    # Accepted (left out as outside the window, or kept): then it must read back whole.
    assert sorted(exported_ids(kind, where)) in ([EARLIER_ROW["id"]], [2, EARLIER_ROW["id"]])


def test_the_destination_holds_no_staging_leftovers(export_home):
    export("parquet-days", export_home / "days", [EARLIER_ROW])
    assert sorted(os.listdir(export_home / "days")) == ["created_date=2026-02-01"]
    assert sorted(os.listdir(export_home)) == ["airflow-home", "days"]
