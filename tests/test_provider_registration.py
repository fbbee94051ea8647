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


def test_the_ui_connection_form_shows_the_extra_fields_and_hides_login_schema_and_port(tmp_path):
    # What Airflow 3.3's UI asks its API for to draw the form (it imports no hook).
    script = (
        "import json\n"
        "from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService\n"
        "(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == 'smsnexus']\n"
        "print(json.dumps(meta.model_dump(mode='json')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    fields = meta["extra_fields"]
    # Hand-listed: the extras users set (SMSNexusConnectionConfig reads each under this very key).
    assert set(fields) == {
        "send_rate_limit",
        "read_rate_limit",
        "rate_limit_period",
        "timeout",
        "max_retries",
        "verify",
        "proxies",
        "date_from_param",
        "date_to_param",
        "rate_budget",
        "rate_budget_store",
        "rate_budget_reserve",
    }
    assert fields["rate_budget"]["schema"]["enum"] == ["process", "host", "sql", "redis", None]
    assert fields["send_rate_limit"]["schema"]["title"] == "Send rate limit"
    assert fields["send_rate_limit"]["schema"]["type"] == ["integer", "null"]
    assert all(field["value"] is None for field in fields.values())  # nothing pre-filled
    standard = meta["standard_fields"]
    assert {name for name in ("login", "url_schema", "port") if standard[name]["hidden"]} == {
        "login",
        "url_schema",
        "port",
    }
    assert (standard["host"]["title"], standard["password"]["title"]) == ("Base URL", "API token")


def test_the_provider_info_links_the_documentation(tmp_path):
    from airflow_provider_smsnexus import DOCUMENTATION_URL, get_provider_info

    assert get_provider_info()["documentation-url"] == DOCUMENTATION_URL
    # Airflow 3.3 replaces it with the package's "Documentation" URL (setup.py's project_urls) when it loads.
    script = (
        "from airflow.providers_manager import ProvidersManager\n"
        "print(ProvidersManager().providers['airflow-provider-smsnexus'].data['documentation-url'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    assert result.stdout.strip().splitlines()[-1] == DOCUMENTATION_URL
