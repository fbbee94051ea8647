"""``hooks._transport``: the connection's transport extras in requests' and aiohttp's terms, and one attempt."""

from __future__ import annotations

import json
import ssl

import pytest
from airflow.models import Connection

from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks._retry import Answer, NoAnswer
from airflow_provider_smsnexus.hooks._transport import (
    aiohttp_options,
    requests_send,
    requests_session,
)

TOKEN = "SMSNEXUS-TEST-TOKEN-transport-0001"


def config(
    host: str = "https://sms.example.test/api", token: str = TOKEN, **extra
) -> SMSNexusConnectionConfig:
    conn = Connection(conn_id="t", conn_type="smsnexus", host=host, password=token, extra=json.dumps(extra))
    return SMSNexusConnectionConfig.from_connection(conn)


def test_the_session_carries_the_headers_verification_and_proxies_without_urllib3_retries():
    session = requests_session(config(verify=False, proxies={"https": "http://proxy.test:3128"}))
    assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert session.verify is False
    assert session.proxies == {"https": "http://proxy.test:3128"}
    assert session.get_adapter("https://sms.example.test").max_retries.total == 0


def test_aiohttp_options_follow_verify_and_the_proxy_of_the_base_urls_scheme():
    assert aiohttp_options(config()) == {}
    assert aiohttp_options(config(verify=False)) == {"ssl": False}
    proxied = config(proxies={"https": "http://proxy.test:3128", "http": "http://other.test:80"})
    assert aiohttp_options(proxied) == {"proxy": "http://proxy.test:3128"}


def test_aiohttp_options_build_a_context_from_a_ca_bundle(tls_ca_bundle):
    options = aiohttp_options(config(verify=tls_ca_bundle))
    assert isinstance(options["ssl"], ssl.SSLContext)


def test_one_attempt_answers_the_servers_status_and_body(smsnexus_emulator):
    emulator_config = config(host=smsnexus_emulator.base_url, token=smsnexus_emulator.token)
    answer = requests_send(requests_session(emulator_config), emulator_config, "GET", "/api/balance")
    assert isinstance(answer, Answer)
    assert answer.status == 200
    assert json.loads(answer.text)["data"]["credits"] == smsnexus_emulator.admin.account()["credits"]


def test_a_refused_connection_is_no_answer_naming_only_the_class():
    closed = config(host="http://127.0.0.1:9/api", timeout=2)
    answer = requests_send(requests_session(closed), closed, "GET", "/api/balance")
    assert isinstance(answer, NoAnswer)
    assert "127.0.0.1" not in repr(answer)


@pytest.fixture
def tls_ca_bundle(tmp_path) -> str:
    from tests.hooks.tls_servers import self_signed_certificate

    return str(self_signed_certificate(tmp_path).cert_path)
