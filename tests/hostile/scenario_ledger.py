"""The workers' embedded ledger seen from the scenario runner, with plain SQL (not the ledger's own code): a
campaign's rows, the leases a worker process still holds, and whether its write lock is taken."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class LedgerView:
    """Reads one campaign of the SQLite ledger at ``path`` (which may not exist yet).

    :param path: the ledger's file (``$AIRFLOW_HOME/smsnexus/send_ledger.db`` of the workers).
    :param campaign: the campaign; the engine may scope it (``<campaign>@emulator-run-<run>``): every scope of
        it is read.
    """

    def __init__(self, path: Path, campaign: str) -> None:
        self.path = path
        self.campaign = campaign

    def rows(self) -> list[sqlite3.Row]:
        """The campaign's rows, every column (none before the table exists)."""
        from airflow_provider_smsnexus.campaign.ledger_schema import DEFAULT_TABLE_NAME

        if not self.path.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            try:
                return conn.execute(
                    f'SELECT * FROM "{DEFAULT_TABLE_NAME}" WHERE campaign_id = ? OR campaign_id LIKE ?',
                    (self.campaign, f"{self.campaign}@%"),
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def live_leases(self, pid: int) -> int:
        """Rows whose lease the process ``pid`` holds and that has not expired (on this machine's UTC clock,
        the workers' clock)."""
        now = datetime.now(timezone.utc)
        return sum(
            1
            for row in self.rows()
            if row["lease_owner"] and f":{pid}#" in row["lease_owner"]
            and row["lease_expires_at"] and _utc(row["lease_expires_at"]) > now
        )  # fmt: skip

    def locked(self) -> bool:
        """Whether the write lock stays taken for 2 s (a running worker holds it for milliseconds; a worker
        stopped inside a transaction holds it until it goes on)."""
        if not self.path.exists():
            return False
        with contextlib.closing(sqlite3.connect(self.path, timeout=2, isolation_level=None)) as conn:
            try:
                conn.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError:
                return True
            conn.execute("ROLLBACK")
        return False


def _utc(stored: str) -> datetime:
    """A time the ledger stored (UTC, with or without its offset) as an aware datetime."""
    moment = datetime.fromisoformat(stored)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
