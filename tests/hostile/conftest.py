"""Fixtures of the hostile-conditions suite: the figures of the run, a private ledger per test, and
the connection the emulator's second account answers to."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smsnexus.campaign import ledger as ledger_module
from tests.hostile.hostile_support import Figures

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FIGURES_FILE = "hostile-figures.json"
_FIGURES = Figures()


@pytest.fixture(scope="session")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Figures]:
    """The suite's counters; written to ``<pytest tmp dir>/hostile-figures.json`` (and to the file named
    by ``SMSNEXUS_HOSTILE_FIGURES``, if set) when the session ends."""
    yield _FIGURES
    text = json.dumps(_FIGURES.as_dict(), indent=2, sort_keys=True)
    (tmp_path_factory.getbasetemp() / FIGURES_FILE).write_text(text)
    if os.environ.get("SMSNEXUS_HOSTILE_FIGURES"):
        with open(os.environ["SMSNEXUS_HOSTILE_FIGURES"], "w") as handle:
            handle.write(text)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _FIGURES.values:
        return
    terminalreporter.section("hostile-conditions figures")
    for key, value in sorted(_FIGURES.values.items()):
        terminalreporter.write_line(f"{key}: {value}")
    for key, value in sorted(_FIGURES.notes.items()):
        terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(autouse=True)
def ledger_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private AIRFLOW_HOME for the embedded ledger of this test, in-process and in worker processes.

    The emulator restarts message ids at 1 after each reset, so a ledger shared between tests would hold
    another test's ids (a real SMS Nexus never reuses one).
    """
    home = tmp_path / "airflow-home"
    home.mkdir()
    monkeypatch.setattr(ledger_module, "default_ledger_path", lambda: home / "smsnexus" / "send_ledger.db")
    return home
