"""A local SMS Nexus server for development and tests: ``smsnexus-emulator``.

The server itself (FastAPI + uvicorn) is imported lazily by :mod:`.app`, :mod:`.server` and
:mod:`.cli`; importing this package stays cheap.

.. seealso:: :doc:`/emulator`, the emulator's manual.
"""

from __future__ import annotations

from airflow_provider_smsnexus.emulator.settings import DEFAULT_TOKEN, EmulatorSettings

__all__ = ["DEFAULT_TOKEN", "EmulatorSettings"]
