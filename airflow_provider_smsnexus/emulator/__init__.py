"""A local SMS Nexus server for development and tests: ``smsnexus-emulator``.

The server itself (FastAPI + uvicorn) comes with the provider's ``[emulator]`` extra
(``pip install 'airflow-provider-smsnexus[emulator]'``) and is imported lazily by :mod:`.app`, :mod:`.server`
and :mod:`.cli`, which name the extra when it is missing (:mod:`.extra`); importing this package stays cheap
and needs no extra.

Its settings are :class:`~airflow_provider_smsnexus.emulator.settings.EmulatorSettings`.

.. seealso:: :doc:`/emulator`, the emulator's manual.
"""

from __future__ import annotations
