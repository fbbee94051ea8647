"""Tests of the connection configuration: parsing extras, URLs, headers and the retry backoff."""

from __future__ import annotations

import json

import pytest
from airflow.models.connection import Connection

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig


def _conn(host: str = "sms.example.com/api", **extra: object) -> Connection:
    return Connection(
        conn_id="c", conn_type="smsnexus", host=host, password="tok-secret", extra=json.dumps(extra)
    )


def test_from_connection_reads_extras_and_adds_https_to_a_bare_host() -> None:
    config = SMSNexusConnectionConfig.from_connection(
        _conn(timeout="5", verify="False", send_rate_limit=10, date_from_param="from")
    )
    assert config.base_url == "https://sms.example.com/api"
    assert (config.timeout, config.verify, config.send_rate_limit) == (5.0, False, 10)
    assert config.date_from_param == "from"
    assert config.explicit_limits == frozenset({"send_rate_limit"})
    assert "tok-secret" not in repr(config)


def test_an_invalid_extra_names_the_connection_without_the_token() -> None:
    with pytest.raises(SMSNexusError, match="Connection 'c' has an invalid extra") as excinfo:
        SMSNexusConnectionConfig.from_connection(_conn(max_retries="many"))
    assert "tok-secret" not in str(excinfo.value)


def test_url_does_not_double_the_api_prefix() -> None:
    config = SMSNexusConnectionConfig(base_url="https://h/api")
    assert config.url("/api/balance") == "https://h/api/balance"
    assert SMSNexusConnectionConfig(base_url="https://h/v2").url("/api/balance") == "https://h/v2/api/balance"


def test_headers_carry_the_bearer_token() -> None:
    headers = SMSNexusConnectionConfig(token="t0k").headers()
    assert headers["Authorization"] == "Bearer t0k"
    assert headers["Accept"] == "application/json"


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    config = SMSNexusConnectionConfig(retry_backoff=1.0, retry_backoff_max=5.0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (10, 5.0)]:
        assert cap / 2 <= config.backoff(attempt) <= cap


def test_a_negative_clock_uncertainty_is_refused() -> None:
    with pytest.raises(ValueError, match="server_clock_uncertainty"):
        SMSNexusConnectionConfig(server_clock_uncertainty=-1)
