"""The emulator's pytest plugin: the ``smsnexus_emulator`` and ``smsnexus_conn`` fixtures.

Loaded through ``pytest_plugins = ["airflow_provider_smsnexus.emulator.testing"]`` (or this module's name)
in a ``conftest.py``. It provides:

``smsnexus_emulator``
    An :class:`~airflow_provider_smsnexus.emulator.testing.EmulatorHandle` for one test: a server started
    once per session, in-process, on a free loopback port, and **reset before each test** (default account,
    10,000 credits, no messages, limits lifted, manual lifecycle, no faults, HTTPS-only webhooks).
``smsnexus_conn``
    Sets ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` to that emulator (fast retry back-off) and returns
    ``"smsnexus_default"``.

The plugin is not registered through a ``pytest11`` entry point: only a ``conftest.py`` that names it loads
it. It loads without the ``[emulator]`` extra; a test that asks for the emulator then fails, naming the extra.

.. seealso:: "In your tests (pytest)" in :doc:`/emulator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_smsnexus.emulator.extra import EmulatorNotInstalledError
from airflow_provider_smsnexus.emulator.settings import DEFAULT_TOKEN, EmulatorSettings
from airflow_provider_smsnexus.emulator.testing import TEST_CONNECTION_EXTRAS, EmulatorAdmin, EmulatorHandle

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def smsnexus_emulator_session() -> Iterator[EmulatorHandle]:
    """The session's in-process emulator (test settings: limits lifted, manual lifecycle), not reset;
    tests use ``smsnexus_emulator``."""
    from airflow_provider_smsnexus.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(EmulatorSettings.for_tests()).start()
    except EmulatorNotInstalledError as exc:  # the plugin loads without the extra; a test that needs it fails
        pytest.fail(str(exc), pytrace=False)
    try:
        yield EmulatorHandle(
            base_url=server.base_url, token=DEFAULT_TOKEN, admin=EmulatorAdmin(server.root_url), server=server
        )
    finally:
        server.stop()


@pytest.fixture
def smsnexus_emulator(smsnexus_emulator_session: EmulatorHandle) -> EmulatorHandle:
    """The emulator, reset for this test; see :class:`EmulatorHandle`."""
    smsnexus_emulator_session.admin.reset()
    return smsnexus_emulator_session


@pytest.fixture
def smsnexus_conn(smsnexus_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``AIRFLOW_CONN_SMSNEXUS_DEFAULT`` at the emulator and return ``"smsnexus_default"``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT", smsnexus_emulator.connection_json(**TEST_CONNECTION_EXTRAS)
    )
    return "smsnexus_default"
