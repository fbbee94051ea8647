"""EmulatorAdmin works outside pytest: importing it never needs pytest (scripts, notebooks, benchmarks)."""

from __future__ import annotations

import subprocess
import sys


def test_emulator_admin_imports_where_pytest_cannot_be_imported():
    script = (
        "import sys\n"
        "sys.modules['pytest'] = None  # any `import pytest` now raises ImportError\n"
        "from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin, EmulatorHandle\n"
        "print(EmulatorAdmin('http://127.0.0.1:8025/api').root_url)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8025"


def test_the_plugin_named_testing_still_provides_the_fixtures(smsnexus_emulator, smsnexus_conn):
    # conftest.py loads "airflow_provider_smsnexus.emulator.testing"; the fixtures come through its pytest_plugins.
    assert smsnexus_conn == "smsnexus_default"
    assert smsnexus_emulator.admin.health()["status"] == "ok"
