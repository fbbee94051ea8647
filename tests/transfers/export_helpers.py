"""Helpers for the export tests: API-shaped rows and readers for both destinations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

BASE_TIME = datetime(2026, 3, 1, tzinfo=timezone.utc)


def api_time(value: datetime) -> str:
    """A timestamp as the API writes it."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def message_rows(
    count: int, *, start: datetime = BASE_TIME, step: timedelta = timedelta(hours=1), first_id: int = 1
):
    """``count`` API-shaped message rows, created ``step`` apart from ``start``."""
    return [
        {
            "id": first_id + n,
            "from": "+12125550100",
            "to": f"+121255501{n % 100:02d}",
            "body": f"message {first_id + n}",
            "direction": "outbound",
            "status": "queued",
            "credits_used": 1,
            "created_at": api_time(start + step * n),
        }
        for n in range(count)
    ]


def read_dataset(path: Path | str) -> pa.Table:
    """Every row of a (hive-partitioned) Parquet export folder."""
    import pyarrow.dataset as ds

    return ds.dataset(str(path), format="parquet", partitioning="hive").to_table()


def table_ids(engine: Any, table: str, schema: str | None = None) -> list[int]:
    """The ids in a SQL table, sorted."""
    import sqlalchemy as sa

    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
    with engine.connect() as conn:
        return sorted(row[0] for row in conn.execute(sa.text(f"SELECT id FROM {name}")))


def parse_api_time(value: str) -> datetime:
    """An API timestamp as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ids_created_in(
    admin: Any, start: datetime | str | None, end: datetime | str, **filters: str
) -> list[int]:
    """The ids of the emulator's messages created in [start, end), sorted (the expected export)."""
    start = parse_api_time(start) if isinstance(start, str) else start
    end = parse_api_time(end) if isinstance(end, str) else end
    return sorted(
        m["id"]
        for m in admin.messages()
        if (start is None or parse_api_time(m["created_at"]) >= start)
        and parse_api_time(m["created_at"]) < end
        and all(m.get(k) == v for k, v in filters.items())
    )


def seed_days(admin: Any, count: int, days: int, *, random_seed: int = 0) -> datetime:
    """Seed ``count`` messages spread over the ``days`` days before now; return the first day's midnight."""
    now = datetime.now(timezone.utc)
    first = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    admin.seed_messages(count, random_seed=random_seed, start=first, end=now - timedelta(minutes=1))
    return first


def run_export(operator: Any, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Run an export operator's ``execute`` for a data interval, as a scheduled run would."""
    return operator.execute({"data_interval_start": start, "data_interval_end": end})


def fail_after_pages(monkeypatch: Any, admin: Any, writer_class: type, pages: int) -> None:
    """From the ``pages``-th page on, the emulator answers every request 500 (real HTTP failures mid-export)."""
    seen = {"pages": 0}
    original = writer_class.heartbeat

    def heartbeat(self: Any) -> None:
        seen["pages"] += 1
        if seen["pages"] == pages:
            admin.set_faults(fail_before_share=1.0)
        original(self)

    monkeypatch.setattr(writer_class, "heartbeat", heartbeat)
