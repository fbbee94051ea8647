"""Tests of lease owners and account fingerprints (the lease writes are exercised in test_ledger.py)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

from airflow_provider_smsnexus.campaign.lease import MAX_OWNER_LENGTH, account_fingerprint, lease_owner


def test_lease_owner_names_the_attempt_and_differs_on_every_call() -> None:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", try_number=2, map_index=-1)
    first, second = lease_owner({"ti": ti}), lease_owner({"ti": ti})
    assert first.startswith("d/t/r/2/-1@")
    assert first != second


def test_a_long_lease_owner_is_cut_to_the_column_with_a_hash() -> None:
    ti = SimpleNamespace(dag_id="d" * 300, task_id="t", run_id="r", try_number=1, map_index=0)
    owner = lease_owner({"ti": ti})
    assert len(owner) <= MAX_OWNER_LENGTH
    assert "~" in owner
    assert "@" in owner


def test_account_fingerprint_is_the_documented_hash_and_hides_the_token() -> None:
    expected = hashlib.sha256(b"smsnexus-account\x1fhttps://h/api\x1fsecret-token").hexdigest()[:32]
    assert account_fingerprint("https://h/api/", "secret-token") == expected
    assert "secret" not in expected
    assert account_fingerprint("https://h/api", "other") != expected
