"""Tests of the ledger's schema helpers: campaign keys, aware datetimes, leases, the default file."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from airflow_provider_smsnexus.campaign.ledger_schema import (
    MAX_CAMPAIGN_LENGTH,
    STATE_PENDING,
    LedgerEntry,
    aware,
    campaign_key,
    default_ledger_path,
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
