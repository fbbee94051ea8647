"""``hooks._transport``: the connection's transport extras and the environment in urllib3's and aiohttp's terms,
and one attempt, checked against small real servers' own records of what arrived."""

from __future__ import annotations

import base64
import importlib.util
import json
import ssl
import urllib.parse

import pytest
from airflow.models import Connection

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks._transport import (
    CA_BUNDLE_VARIABLES,
    aiohttp_options,
    ca_bundle_options,
    json_bytes,
    proxy_for,
    request_url,
    requests_session,
    urllib3_pool,
    urllib3_send,
)
from airflow_provider_smsnexus.hooks.outcomes import NOT_SENT, UNKNOWN, Answer, NoAnswer
from tests.hooks.tls_servers import _Server, read_request, refused_port

TOKEN = "SMSNEXUS-TEST-TOKEN-transport-0001"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def config(
    host: str = "https://sms.example.test/api", token: str = TOKEN, **extra
) -> SMSNexusConnectionConfig:
    conn = Connection(conn_id="t", conn_type="smsnexus", host=host, password=token, extra=json.dumps(extra))
    return SMSNexusConnectionConfig.from_connection(conn)


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


class CannedServer(_Server):
    """Records each request in full and answers it with ``answer`` (raw HTTP bytes), one per connection."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer

    def handle(self, conn) -> None:
        if request := read_request(conn):
            self._record(request)
            conn.sendall(self.answer)


def canned(status: str, body: dict | str, headers: str = "", content_type: str = "application/json") -> bytes:
    data = body.encode("latin-1") if isinstance(body, str) else json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        f"Connection: close\r\n{headers}\r\n"
    )
    return head.encode() + data


BALANCE = {"success": True, "data": {"credits": 7, "plan": "Pro"}}


# -- the pool --------------------------------------------------------------------------------------------


def test_the_pool_carries_the_headers_verification_and_timeouts_without_urllib3_retries(no_proxy_environment):
    pool = urllib3_pool(config(verify=False, timeout=7))
    assert pool.headers["Authorization"] == f"Bearer {TOKEN}"
    assert pool.headers["Accept"] == "application/json"
    assert "gzip" in pool.headers["Accept-Encoding"]  # what requests asked for too
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_NONE"
    assert pool.connection_pool_kw["retries"].total is False  # urllib3 raises, the retry driver decides
    timeout = pool.connection_pool_kw["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (7, 7)


def test_verify_means_what_it_meant_under_requests(monkeypatch, tmp_path):
    import certifi

    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    for name in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert ca_bundle_options(False) == {"cert_reqs": "CERT_NONE"}
    assert ca_bundle_options(True) == {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
    assert ca_bundle_options(str(bundle)) == {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(bundle)}
    assert ca_bundle_options(str(tmp_path)) == {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": str(tmp_path)}
    monkeypatch.setenv("SSL_CERT_FILE", "/openssl/bundle.pem")
    assert ca_bundle_options(True)["ca_certs"] == "/openssl/bundle.pem"
    monkeypatch.setenv("CURL_CA_BUNDLE", "/curl/bundle.pem")
    assert ca_bundle_options(True)["ca_certs"] == "/curl/bundle.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/requests/bundle.pem")
    assert ca_bundle_options(True)["ca_certs"] == "/requests/bundle.pem"
    # A path or False in the extra holds whatever the variables say (the variables' test in test_answers.py).
    assert ca_bundle_options(str(bundle))["ca_certs"] == str(bundle)
    assert ca_bundle_options(False) == {"cert_reqs": "CERT_NONE"}


def test_a_token_that_cannot_be_a_header_is_refused_without_repeating_it(no_proxy_environment):
    for token in ("SMSNEXUS-TEST-TOKEN-a\r\nX-Evil: 1", "SMSNEXUS-TEST-TOKEN-\u2603"):
        with pytest.raises(SMSNexusError, match="password") as info:
            urllib3_pool(config(token=token))
        assert "SMSNEXUS-TEST-TOKEN" not in str(info.value)


# -- proxies: the extra, then the environment --------------------------------------------------------------


def test_the_proxies_extra_picks_the_base_urls_scheme_and_host(no_proxy_environment):
    assert proxy_for(config()) is None
    assert proxy_for(config(proxies={"http": "http://p.test:1"})) is None
    assert proxy_for(config(proxies={"https": "http://p.test:1"})) == "http://p.test:1"
    assert proxy_for(config(proxies={"all": "http://a.test:1"})) == "http://a.test:1"
    specific = {"https": "http://p.test:1", "https://sms.example.test": "http://s.test:2"}
    assert proxy_for(config(proxies=specific)) == "http://s.test:2"
    assert proxy_for(config(proxies={"https": "p.test:3128"})) == "http://p.test:3128"


def test_the_environments_proxy_applies_unless_no_proxy_names_the_host(no_proxy_environment):
    env = no_proxy_environment
    env.setenv("HTTPS_PROXY", "http://env.test:3128")
    assert proxy_for(config()) == "http://env.test:3128"
    assert proxy_for(config(host="http://sms.example.test/api")) is None  # no HTTP_PROXY
    env.setenv("NO_PROXY", "other.test, example.test")
    assert proxy_for(config()) is None
    env.setenv("NO_PROXY", "10.0.0.0/8")
    assert proxy_for(config(host="https://10.1.2.3/api")) is None
    assert proxy_for(config(host="https://192.168.1.2/api")) == "http://env.test:3128"
    # The connection's own proxy is not subject to NO_PROXY, and wins over the environment's.
    assert (
        proxy_for(config(host="https://10.1.2.3/api", proxies={"https": "http://p.test:1"}))
        == "http://p.test:1"
    )
    env.delenv("NO_PROXY")
    assert proxy_for(config(proxies={"https": "http://p.test:1"})) == "http://p.test:1"


def test_a_proxy_with_credentials_sends_them_to_the_proxy_only(no_proxy_environment):
    pool = urllib3_pool(config(proxies={"https": "http://user:p%40ss@proxy.test:3128"}))
    assert (pool.proxy.host, pool.proxy.port) == ("proxy.test", 3128)
    assert pool.proxy_headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert "Proxy-Authorization" not in pool.headers


def test_a_socks_proxy_without_pysocks_is_a_clear_error(no_proxy_environment):
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed")
    with pytest.raises(SMSNexusError, match="PySocks") as info:
        urllib3_pool(config(proxies={"https": "socks5://user:secret@proxy.test:1080"}))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("how", ["extra", "environment"])
def test_requests_go_through_the_proxy_the_connection_or_the_environment_names(no_proxy_environment, how):
    with CannedServer(canned("200 OK", BALANCE)) as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        if how == "environment":
            no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
            target = config(host="http://sms.example.test/api")
        else:
            target = config(host="http://sms.example.test/api", proxies={"http": proxy_url})
        answer = urllib3_send(urllib3_pool(target), "GET", request_url(target, "/api/balance"))
    assert isinstance(answer, Answer)
    assert answer.status == 200
    (request,) = proxy.requests  # the proxy's own record: the absolute-form request a forward proxy gets
    assert request.startswith(b"GET http://sms.example.test/api/balance HTTP/1.1\r\n")
    assert f"Authorization: Bearer {TOKEN}".encode() in request


# -- one attempt -------------------------------------------------------------------------------------------


def test_query_parameters_are_url_encoded_as_requests_encoded_them():
    params = {"start_date": "2026-03-01T00:00:00+01:00", "q": "a b&c", "skip": None, "page": 2, "ids": [1, 2]}
    url = request_url(config(), "/api/messages", params)
    assert url == (
        "https://sms.example.test/api/messages?start_date=2026-03-01T00%3A00%3A00%2B01%3A00&q=a+b%26c&page=2"
        "&ids=1&ids=2"
    )
    assert request_url(config(), "/api/balance", {}) == "https://sms.example.test/api/balance"
    assert (
        urllib.parse.urlsplit(request_url(config(), "/api/messages?x=1", {"page": 1})).query == "x=1&page=1"
    )


def test_one_attempt_answers_the_servers_status_and_body(smsnexus_emulator, no_proxy_environment):
    emulator_config = config(host=smsnexus_emulator.base_url, token=smsnexus_emulator.token)
    answer = urllib3_send(urllib3_pool(emulator_config), "GET", request_url(emulator_config, "/api/balance"))
    assert isinstance(answer, Answer)
    assert answer.status == 200
    assert json.loads(answer.text)["data"]["credits"] == smsnexus_emulator.admin.account()["credits"]
    assert answer.headers.get("content-type", "").startswith("application/json")  # case-insensitive


def test_a_json_body_reaches_the_emulator_exactly_with_any_characters(
    smsnexus_emulator, no_proxy_environment
):
    emulator_config = config(host=smsnexus_emulator.base_url, token=smsnexus_emulator.token)
    text = 'Grüße "quoted" \\ back\nslash ✓ 👋 ¿sí?'
    payload = {"from": "+12125550100", "to": "+12125550150", "message": text}
    answer = urllib3_send(
        urllib3_pool(emulator_config),
        "POST",
        request_url(emulator_config, "/api/sms/send"),
        json_bytes(payload),
    )
    assert isinstance(answer, Answer), answer
    assert answer.status in (200, 201)
    (stored,) = smsnexus_emulator.admin.sent_messages()
    assert (stored["to"], stored["body"]) == ("+12125550150", text)


def test_the_answers_charset_is_used_and_bad_bytes_do_not_raise(no_proxy_environment):
    latin = canned("502 Bad Gateway", "caf\xe9", content_type="text/html; charset=ISO-8859-1")
    with CannedServer(latin) as server:
        target = config(host=server.url("http"))
        answer = urllib3_send(urllib3_pool(target), "GET", request_url(target, "/api/balance"))
    assert answer.text == "caf\xe9"
    with CannedServer(canned("200 OK", "\xff\xfe!")) as server:  # not UTF-8
        target = config(host=server.url("http"))
        answer = urllib3_send(urllib3_pool(target), "GET", request_url(target, "/api/balance"))
    assert answer.text == "\ufffd\ufffd!"


def test_a_redirect_is_not_followed_and_a_posts_outcome_is_unknown(no_proxy_environment):
    moved = canned("303 See Other", "", "Location: /api/messages/1\r\n")
    with CannedServer(moved) as server:
        target = config(host=server.url("http"))
        pool = urllib3_pool(target)
        posted = urllib3_send(pool, "POST", request_url(target, "/api/sms/send"), json_bytes({"to": "+1"}))
        got = urllib3_send(pool, "GET", request_url(target, "/api/balance"))
    assert posted == NoAnswer("redirect 303, not followed", UNKNOWN)
    assert isinstance(got, Answer)
    assert got.status == 303
    assert [r.split(b"\r\n", 1)[0] for r in server.requests] == [
        b"POST /api/sms/send HTTP/1.1",
        b"GET /api/balance HTTP/1.1",
    ]  # the server's record: nothing went to the Location


def test_a_refused_connection_is_no_answer_naming_only_the_class(no_proxy_environment):
    closed = config(host=f"http://127.0.0.1:{refused_port()}/api", timeout=2)
    answer = urllib3_send(urllib3_pool(closed), "GET", request_url(closed, "/api/balance"))
    assert isinstance(answer, NoAnswer)
    assert answer.outcome == NOT_SENT
    assert "127.0.0.1" not in repr(answer)


def test_an_unknown_scheme_is_a_permanent_not_sent(no_proxy_environment):
    odd = config(host="ftp://sms.example.test/api")
    answer = urllib3_send(urllib3_pool(odd), "GET", request_url(odd, "/api/balance"))
    assert answer == NoAnswer("URLSchemeUnknown", NOT_SENT, permanent=True)


# -- the ad-hoc session and aiohttp ------------------------------------------------------------------------


def test_the_ad_hoc_session_carries_the_headers_verification_and_proxies_without_urllib3_retries():
    session = requests_session(config(verify=False, proxies={"https": "http://proxy.test:3128"}))
    assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert session.verify is False
    assert session.proxies == {"https": "http://proxy.test:3128"}
    assert session.get_adapter("https://sms.example.test").max_retries.total == 0


def test_aiohttp_options_follow_verify_and_the_proxy_of_the_base_urls_scheme(no_proxy_environment):
    assert isinstance(aiohttp_options(config())["ssl"], ssl.SSLContext)  # verify true: the CA-bundle rule
    assert aiohttp_options(config(verify=False)) == {"ssl": False}
    proxied = config(
        verify=False, proxies={"https": "http://proxy.test:3128", "http": "http://other.test:80"}
    )
    assert aiohttp_options(proxied) == {"ssl": False, "proxy": "http://proxy.test:3128"}


def test_aiohttp_options_build_a_context_from_a_ca_bundle(tls_ca_bundle):
    options = aiohttp_options(config(verify=tls_ca_bundle))
    assert isinstance(options["ssl"], ssl.SSLContext)


@pytest.fixture
def tls_ca_bundle(tmp_path) -> str:
    from tests.hooks.tls_servers import self_signed_certificate

    return str(self_signed_certificate(tmp_path).cert_path)
