"""The ``smsnexus`` connection type's form in Airflow's UI: its extra fields, and the standard fields it relabels.

Declared once, as Airflow 3.3 reads a form: ``conn-fields`` and ``ui-field-behaviour`` in the provider info
(:func:`airflow_provider_smsnexus.get_provider_info`), which the UI reads without importing the hook. Each
field's name is the key of the connection's extra that
:meth:`~airflow_provider_smsnexus.hooks._config.SMSNexusConnectionConfig.from_connection` reads; a field left
empty stores null, which the hook reads as unset: the default applies (the defaults are listed on the
connection page of the docs, beside the other extras). Nothing here imports Airflow: Airflow calls
``get_provider_info()`` while it loads its own configuration.

.. seealso:: :doc:`/connection`, the connection's fields and extras.
"""

from __future__ import annotations

from typing import Any

#: The API's base URL when the connection's host is empty (the form shows it as the host's hint).
DEFAULT_BASE_URL = "https://www.smsnexus.net/api"
#: Standard fields the form hides: SMS Nexus takes a base URL and a token only.
HIDDEN_FIELDS = ("login", "schema", "port")
#: Standard fields the form relabels.
RELABELING = {"host": "Base URL", "password": "API token"}
#: The hints the form shows in empty standard fields.
PLACEHOLDERS = {"host": DEFAULT_BASE_URL, "password": "API token from the SMS Nexus dashboard (API Keys)"}


def _number(label: str, description: str, *, integer: bool = False, **bounds: float) -> dict[str, Any]:
    schema = {"type": ["integer" if integer else "number", "null"], **bounds}
    return {"label": label, "description": description, "schema": schema}


def _text(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


#: The extra fields, in Airflow's ``conn-fields`` form (name: label, description, JSON schema). No field has a
#: default value in the form: a limit typed in is "explicit" and never raised to the limit the server
#: announces, so an untouched field must stay empty.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "send_rate_limit": _number(
        "Send rate limit",
        "Sends per rate-limit period. Empty: the default, raised to the limit the server announces; a number "
        "set here is this connection's share and is never raised.",
        integer=True,
        minimum=1,
    ),
    "read_rate_limit": _number(
        "Read rate limit",
        "Other requests per rate-limit period. Empty: the default, raised to the limit the server announces; "
        "a number set here is never raised.",
        integer=True,
        minimum=1,
    ),
    "rate_limit_period": _number(
        "Rate-limit period (seconds)",
        "The length of the rate-limit window (SMS Nexus counts per minute). Empty: the default.",
        minimum=1,
    ),
    "timeout": _number(
        "Timeout (seconds)",
        "How long to wait for the server, to connect and for each read. Empty: the default.",
        exclusiveMinimum=0,
    ),
    "max_retries": _number(
        "Retries",
        "Retries of one request after a 5xx or a transport failure. Empty: the default. A send that may have "
        "reached the server is never resent blind.",
        integer=True,
        minimum=0,
    ),
    "verify": _text(
        "TLS verification",
        "true, false, or the path of a CA bundle file or certificate directory. Empty: the default (verify).",
    ),
    "proxies": {
        "label": "Proxies",
        "description": 'Proxies by URL scheme, e.g. {"https": "http://proxy.example:3128", "no_proxy": '
        '"localhost,10.0.0.0/8"} (no_proxy: the hosts reached directly). Empty: the environment\'s HTTPS_PROXY '
        "/ HTTP_PROXY / NO_PROXY.",
        "schema": {"type": ["object", "null"]},
    },
    "rate_budget": {
        "label": "Rate budget",
        "description": "Where the account's rate limits are shared: process (each hook alone), host (the "
        "processes of one machine), sql or redis (every machine; set the store). Empty: process.",
        "schema": {"type": ["string", "null"], "enum": ["process", "host", "sql", "redis", None]},
    },
    "rate_budget_store": _text(
        "Rate budget store",
        "For host: a directory every process sees; for sql: a connection id or SQLAlchemy URL; for redis: a "
        "connection id or redis:// URL. Empty: the default directory (host).",
    ),
    "rate_budget_reserve": _number(
        "Rate budget reserve",
        "The share of each limit that bulk work (exports, campaigns) leaves to sensors, triggers and "
        "notifiers while they are active, 0 to 0.5. Empty: the default.",
        minimum=0,
        maximum=0.5,
    ),
    "date_from_param": _text(
        "Date-range start parameter",
        "The message list's query parameter for the start of a date range. Empty: the default.",
    ),
    "date_to_param": _text(
        "Date-range end parameter",
        "The message list's query parameter for the end of a date range. Empty: the default.",
    ),
}


def provider_ui_field_behaviour() -> dict[str, Any]:
    """The standard fields' behaviour as the provider info declares it (``ui-field-behaviour``, kebab-case)."""
    return {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": RELABELING, "placeholders": PLACEHOLDERS}


def hook_ui_field_behaviour() -> dict[str, Any]:
    """The same, as the hook method ``get_ui_field_behaviour()`` returns it (snake_case keys)."""
    return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": RELABELING, "placeholders": PLACEHOLDERS}
