"""Fixtures of the sending tests: a private ledger per test, task contexts, and what the emulator texted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_smsnexus.campaign import ledger as ledger_module

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture(autouse=True)
def ledger_home(tmp_path, monkeypatch):
    """A fresh embedded SQLite ledger per test (under a private directory standing for AIRFLOW_HOME).

    The emulator restarts message ids at 1 after every reset; a ledger shared across tests would hold ids
    of another test's messages (a real SMS Nexus never reuses an id). AIRFLOW_HOME itself stays as it is:
    Airflow's configuration reads it once, and other tests' ``dag.test()`` depend on it. Worker processes
    that tests start get ``SMSNEXUS_LEDGER_HOME`` as their AIRFLOW_HOME.
    """
    home = tmp_path / "airflow-home"
    home.mkdir()
    monkeypatch.setattr(ledger_module, "default_ledger_path", lambda: home / "smsnexus" / "send_ledger.db")
    monkeypatch.setenv("SMSNEXUS_LEDGER_HOME", str(home))
    return home


def _make_context(run_id: str = "manual__2026-03-08", map_index: int = -1, **extra: Any) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="campaigns", task_id="send", run_id=run_id, map_index=map_index)
    context = {"ti": ti, "run_id": run_id, "ds": "2026-03-08", "params": {"shop": "Corner Shop"}}
    context.update(extra)
    return context


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """Build a minimal task context (``ti``, ``run_id``, ``ds``, ``params``): enough for ids and templates."""
    return _make_context


@pytest.fixture
def texted(smsnexus_emulator) -> Callable[[], list[str]]:
    """Every recipient the emulator's default account texted through the API, once per message created."""
    return lambda: [message["to"] for message in smsnexus_emulator.admin.sent_messages()]
