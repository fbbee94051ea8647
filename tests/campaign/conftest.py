"""Fixtures of the campaign engine's tests: a private embedded ledger per test."""

from __future__ import annotations

import pytest

from airflow_provider_smsnexus.campaign import ledger as ledger_module


@pytest.fixture(autouse=True)
def ledger_home(tmp_path, monkeypatch):
    """A fresh embedded SQLite ledger per test, in a private directory standing for AIRFLOW_HOME."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    monkeypatch.setattr(ledger_module, "default_ledger_path", lambda: home / "smsnexus" / "send_ledger.db")
    monkeypatch.setenv("SMSNEXUS_LEDGER_HOME", str(home))
    return home
