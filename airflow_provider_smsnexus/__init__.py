"""Apache Airflow provider for the SMS Nexus messaging API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-smsnexus"
DEFAULT_BASE_URL = "https://www.smsnexus.net/api"
#: The connection id every hook, operator, sensor and trigger of this provider uses when none is given.
DEFAULT_CONN_ID = "smsnexus_default"
#: The connection type's display name (``SMSNexusHook.hook_name``).
HOOK_NAME = "SMS Nexus"

# The connection form of the ``smsnexus`` connection type (also returned by the hook).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "schema", "port"],
    "relabeling": {"host": "Base URL", "password": "API token"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "API token from the SMS Nexus dashboard (API Keys)",
        "extra": '{"timeout": 30, "max_retries": 5, "send_rate_limit": 30, "read_rate_limit": 60}',
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "SMS Nexus",
        "description": "Send, watch and export SMS through the `SMS Nexus <https://www.smsnexus.net>`__ API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "SMS Nexus",
                "external-doc-url": "https://www.smsnexus.net",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "SMS Nexus",
                "python-modules": ["airflow_provider_smsnexus.hooks.smsnexus"],
            }
        ],
        "operators": [
            {
                "integration-name": "SMS Nexus",
                "python-modules": [
                    "airflow_provider_smsnexus.operators.sms",
                    "airflow_provider_smsnexus.operators.webhooks",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "SMS Nexus",
                "python-modules": [
                    "airflow_provider_smsnexus.sensors.balance",
                    "airflow_provider_smsnexus.sensors.reply",
                    "airflow_provider_smsnexus.sensors.delivery",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "SMS Nexus",
                "python-modules": [
                    "airflow_provider_smsnexus.triggers.balance",
                    "airflow_provider_smsnexus.triggers.inbound",
                    "airflow_provider_smsnexus.triggers.reply",
                    "airflow_provider_smsnexus.triggers.delivery",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "SMS Nexus",
                "target-integration-name": "Apache Parquet",
                "python-module": "airflow_provider_smsnexus.transfers.smsnexus_to_parquet",
            },
            {
                "source-integration-name": "SMS Nexus",
                "target-integration-name": "Common SQL",
                "python-module": "airflow_provider_smsnexus.transfers.smsnexus_to_sql",
            },
        ],
        "notifications": ["airflow_provider_smsnexus.notifications.smsnexus.SMSNexusNotifier"],
        "connection-types": [
            {
                "connection-type": "smsnexus",
                # The UI's name for the type, read without importing the hook (Airflow 3.2+).
                "hook-name": HOOK_NAME,
                "hook-class-name": "airflow_provider_smsnexus.hooks.smsnexus.SMSNexusHook",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
