"""Without the ``[emulator]`` extra, every way into the emulator names the extra to install instead of failing on
a bare ``import fastapi``, and what needs no server (the settings, the admin client, the pytest plugin module)
still imports.

Each case runs in a subprocess whose ``sitecustomize`` hides FastAPI, Starlette, uvicorn and httptools from the
import system, as an environment installed without the extra would: the real entry points run, unmocked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smsnexus.emulator.cli import EXIT_NOT_INSTALLED

if TYPE_CHECKING:
    from collections.abc import Sequence

INSTALL_HINT = "pip install 'airflow-provider-smsnexus[emulator]'"
HIDE_SERVER = textwrap.dedent(
    """
    import sys

    class HideServer:
        hidden = {"fastapi", "starlette", "uvicorn", "httptools"}

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in self.hidden:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideServer())
    """
)


@pytest.fixture
def without_extra(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess that cannot import the extra's packages."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_SERVER)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }


def run(
    command: Sequence[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-c", textwrap.dedent(code)], env)


def test_the_subprocess_really_cannot_import_fastapi(without_extra):
    result = run_python("import fastapi", without_extra)
    assert result.returncode == 1
    assert "No module named 'fastapi'" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(Path(sys.executable).parent / "smsnexus-emulator")], id="console-script"),
        pytest.param([sys.executable, "-m", "airflow_provider_smsnexus.emulator"], id="python-m"),
    ],
)
def test_the_command_says_which_extra_to_install_and_exits_without_a_traceback(without_extra, command):
    result = run([*command, "--port", "0"], without_extra)
    assert result.returncode == EXIT_NOT_INSTALLED
    assert result.stderr.startswith("smsnexus-emulator: The SMS Nexus emulator needs fastapi")
    assert INSTALL_HINT in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no start-up line: nothing was served


def test_the_commands_help_needs_no_extra(without_extra):
    result = run([sys.executable, "-m", "airflow_provider_smsnexus.emulator", "--help"], without_extra)
    assert result.returncode == 0
    assert "--seed-messages" in result.stdout


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(
            "from airflow_provider_smsnexus.emulator.server import EmulatorServer; EmulatorServer()",
            id="server",
        ),
        pytest.param("from airflow_provider_smsnexus.emulator.app import create_app", id="app"),
    ],
)
def test_the_python_entry_points_raise_a_typed_error_naming_the_extra(without_extra, entry):
    result = run_python(
        f"""
        from airflow_provider_smsnexus.emulator.extra import EmulatorNotInstalledError
        try:
            {entry}
        except EmulatorNotInstalledError as exc:
            print(isinstance(exc, ImportError), exc.missing, exc, sep="|")
        """,
        without_extra,
    )
    assert result.returncode == 0, result.stderr
    is_import_error, missing, message = result.stdout.strip().split("|")
    assert (is_import_error, missing) == ("True", "fastapi")
    assert INSTALL_HINT in message


def test_what_needs_no_server_imports_without_the_extra(without_extra):
    result = run_python(
        """
        import airflow_provider_smsnexus.emulator
        import airflow_provider_smsnexus.emulator.pytest_plugin
        from airflow_provider_smsnexus.emulator.state import Emulator
        from airflow_provider_smsnexus.emulator.testing import EmulatorAdmin

        print(Emulator().account(1).id)
        """,
        without_extra,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_the_pytest_plugin_loads_and_a_test_that_needs_the_emulator_fails_naming_the_extra(
    without_extra, tmp_path
):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["airflow_provider_smsnexus.emulator.testing"]\n')
    (project / "test_uses_plugin.py").write_text(
        "def test_without_the_emulator():\n"
        "    assert True\n\n\n"
        "def test_with_the_emulator(smsnexus_emulator):\n"
        "    assert smsnexus_emulator.base_url\n"
    )
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(project)],
        without_extra,
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout
    assert INSTALL_HINT in result.stdout
    assert "ModuleNotFoundError" not in result.stdout
