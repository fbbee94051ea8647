"""Tests of the ledger's schema helpers: campaign keys, aware datetimes, leases, the default file, and SQLite
connections tuned at once on a new file."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

from airflow_provider_smsnexus.campaign.ledger_schema import (
    MAX_CAMPAIGN_LENGTH,
    STATE_PENDING,
    LedgerEntry,
    aware,
    campaign_key,
    default_ledger_path,
    tune_sqlite,
)

NOW = datetime(2026, 3, 8, 12, tzinfo=timezone.utc)


def test_campaign_key_keeps_short_ids_and_hashes_long_ones_into_the_column() -> None:
    assert campaign_key("d.t.run") == "d.t.run"
    long_id = "c" * 400
    key = campaign_key(long_id)
    assert len(key) == MAX_CAMPAIGN_LENGTH
    assert key.endswith("~" + hashlib.sha256(long_id.encode()).hexdigest()[:32])


def test_aware_reads_naive_values_as_utc() -> None:
    assert aware(datetime(2026, 3, 8, 12)) == NOW
    assert aware(None) is None


def test_leased_by_other_only_for_another_owners_live_lease() -> None:
    entry = LedgerEntry("c", "+12125550150", "h", STATE_PENDING, lease_owner="a", lease_expires_at=NOW)
    assert entry.leased_by_other("b", NOW - timedelta(seconds=1))
    assert not entry.leased_by_other("b", NOW)
    assert not entry.leased_by_other("a", NOW - timedelta(seconds=1))


def test_default_ledger_path_is_under_airflow_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / "smsnexus" / "send_ledger.db"


def test_connections_opening_a_new_ledger_file_at_once_all_switch_it_to_wal(tmp_path) -> None:
    # Several workers (or mapped tasks) starting on a fresh embedded ledger: SQLite lets one connection at a
    # time switch the file to WAL and refuses the others at once ("database is locked"), busy timeout or not.
    failures: list[BaseException] = []
    modes: set[str] = set()

    def open_and_tune(path, start: threading.Barrier) -> None:
        start.wait()
        try:
            connection = sqlite3.connect(path, timeout=60)
            tune_sqlite(connection, None)
            modes.add(connection.execute("PRAGMA journal_mode").fetchone()[0])
            connection.close()
        except BaseException as exc:
            failures.append(exc)

    for trial in range(60):
        path = tmp_path / f"ledger-{trial}.db"
        start = threading.Barrier(6)
        threads = [threading.Thread(target=open_and_tune, args=(path, start)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert modes == {"wal"}
