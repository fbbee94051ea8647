"""Scale: a large seeded history pages correctly (the 1,000,000-message figures are in bench/)."""

from __future__ import annotations

from datetime import datetime, timezone


def test_200k_seeded_messages_page_newest_first_with_exact_meta(api, smsnexus_emulator):
    result = smsnexus_emulator.admin.seed_messages(200_000, random_seed=1)
    assert result["seeded"] == 200_000
    first = api.get("/messages", per_page=100).json()
    assert first["meta"] == {"current_page": 1, "last_page": 2000, "per_page": 100, "total": 200_000}
    deep = api.get("/messages", per_page=100, page=1500).json()
    last = api.get("/messages", per_page=100, page=2000).json()
    rows = first["data"] + deep["data"] + last["data"]
    assert len(rows) == 300
    keys = [(r["created_at"], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    totals = {
        status: api.get("/messages", status=status, per_page=1).json()["meta"]["total"]
        for status in ("queued", "sent", "delivered", "failed", "received")
    }
    assert sum(totals.values()) == 200_000
    inbound = api.get("/messages", direction="inbound", per_page=1).json()["meta"]["total"]
    assert inbound == totals["received"]


def test_a_window_of_a_large_history_counts_exactly(api, smsnexus_emulator):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = datetime(2026, 1, 11, tzinfo=timezone.utc)
    smsnexus_emulator.admin.seed_messages(100_000, random_seed=2, start=start, end=end)
    days = [
        api.get("/messages", start_date=f"2026-01-{d:02d}T00:00:00Z", end_date=f"2026-01-{d + 1:02d}T00:00:00Z",
                per_page=1).json()["meta"]["total"]
        for d in range(1, 11)
    ]  # fmt: skip
    assert sum(days) == 100_000
    assert all(8_000 < count < 12_000 for count in days)
