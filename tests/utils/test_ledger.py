"""The old import path of the send ledger keeps working (the ledger's own tests: tests/campaign/)."""

from __future__ import annotations


def test_the_old_import_path_gives_the_campaign_ledger():
    from airflow_provider_smsnexus.campaign import ledger as new
    from airflow_provider_smsnexus.utils import ledger as old

    assert old.SendLedger is new.SendLedger
    assert old.STATE_PENDING == new.STATE_PENDING == "pending"
    assert old.default_ledger_path is new.default_ledger_path
