"""The ``[emulator]`` extra: the web server the emulator needs beyond the provider (FastAPI, uvicorn and its C
HTTP parser httptools), and the error that names the extra when they are missing.

Every way into the server (``smsnexus-emulator``, ``python -m airflow_provider_smsnexus.emulator``,
:class:`~.server.EmulatorServer`, :func:`~.app.create_app`, the pytest fixtures) checks here first, so that a
provider installed without the extra says what to install instead of failing on a bare ``import fastapi``.
The rest of the package (the settings, :class:`~.testing.EmulatorAdmin`, the pytest plugin module) imports
without the extra.

.. seealso:: "Install" in :doc:`/emulator`.
"""

from __future__ import annotations

import importlib

#: What to install for the emulator, as pip spells it.
EMULATOR_EXTRA = "airflow-provider-smsnexus[emulator]"
#: The modules the extra brings that the server imports (setup.py's ``emulator`` extra lists their packages).
SERVER_MODULES = ("fastapi", "uvicorn", "httptools")


class EmulatorNotInstalledError(ImportError):
    """The emulator's web server is not installed: the provider was installed without its ``[emulator]`` extra.

    An :class:`ImportError`, so code that already treats a missing optional module as such keeps doing so.

    :param missing: the module that could not be imported.
    """

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"The SMS Nexus emulator needs {missing}, which is not installed: it comes with the provider's "
            f"emulator extra. Install it with: pip install '{EMULATOR_EXTRA}'",
            name=missing,
        )
        self.missing = missing


def require_server() -> None:
    """Import the modules of :data:`SERVER_MODULES`; raise :class:`EmulatorNotInstalledError` naming the first
    one that is missing."""
    for module in SERVER_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EmulatorNotInstalledError(module) from exc
