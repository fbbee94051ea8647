"""Airflow itself finds the installed provider and registers the ``smsnexus`` connection type."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def airflow_json(airflow_home, *args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
    )
    # Airflow may log a line or two before the JSON; the JSON list is the line that starts with '[{'.
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("[{")))


def test_airflow_providers_list_shows_the_provider(tmp_path):
    providers = {p["package_name"]: p for p in airflow_json(tmp_path, "providers", "list")}
    assert "airflow-provider-smsnexus" in providers


def test_the_smsnexus_connection_type_is_registered_with_its_hook(tmp_path):
    hooks = [h for h in airflow_json(tmp_path, "providers", "hooks") if h["connection_type"] == "smsnexus"]
    assert hooks == [
        {
            "connection_type": "smsnexus",
            "class": "airflow_provider_smsnexus.hooks.smsnexus.SMSNexusHook",
            "conn_id_attribute_name": "smsnexus_conn_id",
            "package_name": "airflow-provider-smsnexus",
            "hook_name": "SMS Nexus",
        }
    ]


def test_the_connection_form_names_the_type_sms_nexus_without_importing_the_hook(tmp_path):
    # The UI's connection-type list comes from the provider info alone (the hooks are not imported): without a
    # "hook-name" there, Airflow shows the bare type "smsnexus".
    script = (
        "import json, sys\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "names = {m.connection_type: m.hook_name\n"
        "         for m in ProvidersManager().iter_connection_type_hook_ui_metadata()}\n"
        "print(json.dumps({'name': names.get('smsnexus'),\n"
        "                  'hook_imported': 'airflow_provider_smsnexus.hooks.smsnexus' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown == {"name": "SMS Nexus", "hook_imported": False}


def test_the_provider_info_names_the_type_as_the_hook_does():
    from airflow_provider_smsnexus import get_provider_info
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    (entry,) = get_provider_info()["connection-types"]
    assert entry["hook-name"] == SMSNexusHook.hook_name
