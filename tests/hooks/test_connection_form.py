"""The connection form's extra fields: each one's key is an extra the hook's configuration reads, its type
takes what the hook accepts, and a field left empty leaves the default in force."""

from __future__ import annotations

import json

import jsonschema
import pytest
from airflow.sdk import Connection

from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks.connection_form import CONN_FIELDS

# A value a user might type into each field (none of them a default), and what the hook must make of it.
TYPED = {
    "send_rate_limit": (7, 7),
    "read_rate_limit": (11, 11),
    "rate_limit_period": (30, 30.0),
    "timeout": (4.5, 4.5),
    "max_retries": (2, 2),
    "verify": ("false", False),
    "proxies": ({"https": "http://proxy.example:3128"}, {"https": "http://proxy.example:3128"}),
    "date_from_param": ("from", "from"),
    "date_to_param": ("to", "to"),
    "rate_budget": ("host", "host"),
    "rate_budget_store": ("/srv/smsnexus-budget", "/srv/smsnexus-budget"),
    "rate_budget_reserve": (0.25, 0.25),
}
#: Fields the configuration keeps in its rate-budget settings, under another name.
NESTED = {"rate_budget": "kind", "rate_budget_store": "store", "rate_budget_reserve": "reserve_share"}


def read_back(config: SMSNexusConnectionConfig, name: str):
    """What the configuration made of the field ``name``."""
    return getattr(config.rate_budget, NESTED[name]) if name in NESTED else getattr(config, name)


def connection(extra: dict) -> Connection:
    return Connection(
        conn_id="smsnexus_form", conn_type="smsnexus", host="http://127.0.0.1:9/api", extra=json.dumps(extra)
    )


def test_every_field_has_a_typed_example_here():
    assert set(TYPED) == set(CONN_FIELDS)


@pytest.mark.parametrize("name", sorted(TYPED))
def test_a_value_typed_into_a_field_is_what_the_hook_reads(name):
    typed, read = TYPED[name]
    jsonschema.validate(typed, CONN_FIELDS[name]["schema"])  # the form accepts it

    config = SMSNexusConnectionConfig.from_connection(connection({name: typed}))

    assert read_back(config, name) == read
    assert read_back(SMSNexusConnectionConfig(), name) != read  # not the default: the field changed something


def test_fields_left_empty_leave_the_defaults_and_no_explicit_limit():
    # The UI stores an untouched field as null; a text field cleared by hand as "".
    empty = {name: None for name in CONN_FIELDS} | {"date_from_param": "", "verify": "", "rate_budget": ""}

    config = SMSNexusConnectionConfig.from_connection(connection(empty))

    defaults = SMSNexusConnectionConfig(base_url="http://127.0.0.1:9/api")
    assert config == defaults
    assert config.explicit_limits == frozenset()  # the server's announced limit may still raise them


def test_no_field_has_a_default_the_form_would_fill_in():
    # A filled-in rate limit would count as explicit and never be raised to the server's limit.
    assert all("default" not in spec["schema"] for spec in CONN_FIELDS.values())


def test_proxies_typed_as_json_text_are_read_as_a_mapping():
    config = SMSNexusConnectionConfig.from_connection(
        connection({"proxies": '{"https": "http://p.example:1"}'})
    )
    assert config.proxies == {"https": "http://p.example:1"}


def test_proxies_that_are_not_a_mapping_fail_naming_the_extra():
    from airflow_provider_smsnexus.exceptions import SMSNexusError

    with pytest.raises(SMSNexusError, match="proxies"):
        SMSNexusConnectionConfig.from_connection(connection({"proxies": ["http://p.example:1"]}))
