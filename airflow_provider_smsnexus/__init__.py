"""Apache Airflow provider for the SMS Nexus messaging API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-smsnexus"
#: The header in which a server names the run that answers: the emulator sends it (a restarted emulator is
#: another server, with other messages); SMS Nexus does not.
RUN_HEADER = "X-SMSNexus-Emulator-Run"
#: The connection id every hook, operator, sensor and trigger of this provider uses when none is given.
DEFAULT_CONN_ID = "smsnexus_default"
#: The connection type's display name (``SMSNexusHook.hook_name``).
HOOK_NAME = "SMS Nexus"
#: The lowest Apache Airflow release this provider runs on (setup.py requires it; tests/test_airflow_floor.py
#: checks the statements of it). Two-way SMS needs Airflow 3.3's shared trigger streams and asset state store.
MIN_AIRFLOW_VERSION = "3.3.0"
#: Where this provider's documentation (the Sphinx site under docs/) is published; setup.py declares it as the
#: package's "Documentation" URL, which is where Airflow 3.3 reads a provider's documentation-url from.
DOCUMENTATION_URL = "https://airflow-provider-smsnexus.readthedocs.io/"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_smsnexus.hooks.connection_form import CONN_FIELDS, provider_ui_field_behaviour

    return {
        "package-name": PACKAGE_NAME,
        "name": "SMS Nexus",
        "description": "Send, watch and export SMS through the `SMS Nexus <https://www.smsnexus.net>`__ API.",
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
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
        # MessageQueueTrigger(scheme="smsnexus"): the common.messaging provider (the "messaging" extra).
        "queues": ["airflow_provider_smsnexus.queues.smsnexus.SMSNexusMessageQueueProvider"],
        "connection-types": [
            {
                "connection-type": "smsnexus",
                # The UI's name for the type, read without importing the hook (Airflow 3.2+).
                "hook-name": HOOK_NAME,
                "hook-class-name": "airflow_provider_smsnexus.hooks.smsnexus.SMSNexusHook",
                # The form, read by the UI without importing the hook (hooks/connection_form.py).
                "ui-field-behaviour": provider_ui_field_behaviour(),
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
