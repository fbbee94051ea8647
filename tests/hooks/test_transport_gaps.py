"""The transport's last gaps, for both hooks, over real HTTP: a token a gateway echoes in a named-entity, XML or
doubly URL-encoded form never reaches an error; every extra is checked once, with a typed error naming it; one
CA-bundle rule (the ``verify`` extra and the environment's variables) for both hooks; and a ``no_proxy`` key in
the ``proxies`` extra sends the hosts it names around the proxy."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
import shutil
import ssl
import subprocess
import threading
from html.entities import html5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

import jsonschema
import pytest

from airflow_provider_smsnexus.exceptions import SMSNexusConfigError, SMSNexusError
from airflow_provider_smsnexus.hooks._extras import NUMBER_RULES
from airflow_provider_smsnexus.hooks._scrub import scrub
from airflow_provider_smsnexus.hooks._transport import CA_BUNDLE_VARIABLES
from airflow_provider_smsnexus.hooks.connection_form import CONN_FIELDS
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook, SMSNexusHook
from tests.hooks.tls_servers import refused_port, self_signed_certificate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MARKER = "SMSNEXUS-TEST-TOKEN"  # in every token below: the suite's secrets guard watches for it too
#: Tokens holding every character an encoding rewrites, literal escape sequences and a space.
TOKENS = {
    "escapes": f"{MARKER}-a&b<c>d\"e'f+g/h=i%j;k",
    "base64ish": f"{MARKER}-Zm9v+YmFy/YmF6==",
    "literal_escapes": f"{MARKER}-x%2Fy%41&amp;z w",
}
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
BALANCE = {"success": True, "data": {"credits": 42, "plan": "Pro"}}


def _html5_names(text: str) -> str:
    """Every character that has a named HTML5 entity written as that entity (``&sol;``, ``&plus;``, ...)."""
    names: dict[str, str] = {}
    for name, value in html5.items():
        if len(value) == 1 and name.endswith(";"):
            names.setdefault(value, name)
    return "".join(f"&{names[c]}" if c in names else c for c in text)


#: How a gateway may write the token back: named entities, XML, URL-encoding twice, and layers of them.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "html_named": lambda t: html.escape(t, quote=True),
    "xml": lambda t: xml_escape(t, {'"': "&quot;", "'": "&apos;"}),
    "html5_every_name": _html5_names,
    "html_twice": lambda t: html.escape(html.escape(t)),
    "html_of_numeric": lambda t: html.escape("".join(f"&#{ord(c)};" for c in t)),
    "url_twice": lambda t: quote(quote(t, safe=""), safe=""),
    "url_twice_lowercase_hex": lambda t: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), quote(quote(t, safe=""))
    ),
    "url_plus_twice": lambda t: quote_plus(quote_plus(t)),
    "url_thrice": lambda t: quote(quote(quote(t, safe=""), safe=""), safe=""),
    "url_then_html": lambda t: html.escape(quote_plus(t)),
    "html_then_url": lambda t: quote(html.escape(t), safe=""),
    "json_then_html": lambda t: html.escape(json.dumps(t)[1:-1]),
    "html_then_json": lambda t: json.dumps(html.escape(t))[1:-1].replace("&", "\\u0026"),
    "base64_then_url": lambda t: quote(base64.b64encode(t.encode()).decode(), safe=""),
    "base64_then_html": lambda t: html.escape(base64.b64encode(t.encode()).decode()),
}


def use(monkeypatch: pytest.MonkeyPatch, host: str, token: str = TOKENS["escapes"], **extra: Any) -> str:
    """Define the connection ``smsnexus_gaps`` (no retries, fast) and return its id."""
    extra = {"max_retries": 0, "timeout": 5, "retry_backoff": 0.01, **extra}
    conn = {"conn_type": "smsnexus", "host": host, "password": token, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_GAPS", json.dumps(conn))
    return "smsnexus_gaps"


def sync_balance(conn_id: str) -> dict[str, Any]:
    return SMSNexusHook(smsnexus_conn_id=conn_id).get_balance()


def async_balance(conn_id: str) -> dict[str, Any]:
    return asyncio.run(SMSNexusAsyncHook(smsnexus_conn_id=conn_id).get_balance())


HOOKS = {"sync": sync_balance, "async": async_balance}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy and no CA-bundle variables: each test sets the ones it is about."""
    for name in (*CA_BUNDLE_VARIABLES, *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def serve(handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run ``handler`` on a loopback port (over TLS with ``context``); yield the API base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# -- 1. a token echoed in any encoding -------------------------------------------------------------------


class EchoGateway(_Quiet):
    """Answers with an error that echoes the request's token, encoded as the path's first part says:
    ``/<encoding>/<kind>/api/balance``."""

    def do_GET(self) -> None:
        _, encoding, kind, *_ = self.path.split("/")
        token = self.headers["Authorization"].removeprefix("Bearer ")
        echo = ENCODINGS[encoding](token)
        if kind == "html502":
            self.answer(502, f"<p>{echo}</p><h1>Bad Gateway</h1>", "text/html")
        elif kind == "html200":
            self.answer(200, f"<p>{echo}</p><h1>Login</h1>", "text/html")
        elif kind == "json401":
            self.answer(
                401, json.dumps({"success": False, "message": f"{echo} is invalid"}), "application/json"
            )
        else:  # json422
            body = {"success": False, "message": "bad", "errors": {echo: [f"{echo} refused"]}}
            self.answer(422, json.dumps(body), "application/json")


@pytest.fixture(scope="module")
def echo_gateway() -> Iterator[str]:
    yield from serve(EchoGateway)


def texts_of(error: BaseException) -> str:
    fields = [str(error), repr(error), str(getattr(error, "server_message", ""))]
    return " ".join([*fields, json.dumps(getattr(error, "errors", None))])


@pytest.mark.parametrize("kind", ["html502", "html200", "json401", "json422"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("token", list(TOKENS))
@pytest.mark.parametrize("hook", list(HOOKS))
def test_an_echoed_token_never_reaches_the_error_in_any_encoding(
    monkeypatch, clean_environment, echo_gateway, hook, token, encoding, kind
):
    host = echo_gateway.replace("/api", f"/{encoding}/{kind}/api")
    conn_id = use(monkeypatch, host, TOKENS[token])
    with pytest.raises(SMSNexusError) as caught:
        HOOKS[hook](conn_id)
    text = texts_of(caught.value)
    assert MARKER not in text  # no part of the token, in any form
    assert "***" in text  # the echo came, and was scrubbed


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("token", list(TOKENS))
def test_the_connection_tests_message_holds_no_form_of_an_echoed_token(
    monkeypatch, clean_environment, echo_gateway, token, encoding
):
    host = echo_gateway.replace("/api", f"/{encoding}/html502/api")
    ok, message = SMSNexusHook(smsnexus_conn_id=use(monkeypatch, host, TOKENS[token])).test_connection()
    assert ok is False
    assert MARKER not in message
    assert "***" in message


def test_scrubbing_keeps_the_text_around_the_token():
    token = TOKENS["escapes"]
    for name, encode in ENCODINGS.items():
        scrubbed = scrub(f"<b>before {encode(token)} after</b>", token)
        if name.startswith("base64"):  # its last characters depend on what follows the token: they stay
            assert scrubbed.startswith("<b>before ***")
            assert len(scrubbed) <= len("<b>before ***xxxx after</b>")
        else:
            assert scrubbed == "<b>before *** after</b>"
    assert scrub("a page with &amp; and %2F but no token", token) == "a page with &amp; and %2F but no token"


# -- 2. every extra checked once, with a typed error naming it -----------------------------------------

#: (extra, value, words the error must hold): each refused by both hooks before any request.
BAD_EXTRAS = [
    ("proxies", "http://proxy.example:3128", "mapping"),
    ("proxies", '"http://proxy.example:3128"', "mapping"),
    ("proxies", ["http://proxy.example:3128"], "mapping"),
    ("proxies", {"https": 3128}, "proxy URL"),
    ("proxies", {"https": "ftp://proxy.example:21"}, "scheme"),
    ("proxies", {"no_proxy": 5}, "no_proxy"),
    ("timeout", 0, "above 0"),
    ("timeout", -1, "above 0"),
    ("timeout", "soon", "number"),
    ("timeout", "nan", "number"),
    ("timeout", True, "number"),
    ("verify", "/nonexistent/ca.pem", "does not exist"),
    ("verify", 1, "true, false"),
    ("max_retries", -1, "0 or more"),
    ("max_retries", 2.5, "whole number"),
    ("max_retries", "many", "whole number"),
    ("send_rate_limit", "fast", "whole number"),
    ("send_rate_limit", 0, "1 or more"),
    ("read_rate_limit", -3, "1 or more"),
    ("rate_limit_period", 0, "above 0"),
    ("rate_limit_period", "minute", "number"),
    ("retry_backoff", -1, "0 or more"),
    ("retry_backoff_max", -0.5, "0 or more"),
    ("max_rate_limit_wait", -5, "0 or more"),
    ("server_clock_uncertainty", -1, "0 or more"),
    ("listing_delay", -1, "0 or more"),
    ("listing_delay", "later", "number"),
    ("date_from_param", {"a": 1}, "text"),
    ("date_to_param", 5, "text"),
]


@pytest.mark.parametrize("hook", list(HOOKS))
@pytest.mark.parametrize(("name", "value", "expected"), BAD_EXTRAS, ids=lambda v: repr(v)[:30])
def test_a_bad_extra_is_a_typed_error_naming_it_and_what_it_takes(
    monkeypatch, clean_environment, hook, name, value, expected
):
    conn_id = use(monkeypatch, f"http://127.0.0.1:{refused_port()}/api", **{name: value})
    with pytest.raises(SMSNexusConfigError) as caught:  # fails the task at once: a retry reads the same
        HOOKS[hook](conn_id)
    text = str(caught.value)
    assert f"'smsnexus_gaps' has an invalid extra {name}" in text
    assert expected in text
    assert "cannot reach" not in text  # refused before any request
    assert "no answer" not in text
    assert MARKER not in text


def test_a_proxy_url_in_a_bad_proxies_extra_is_not_repeated(monkeypatch, clean_environment):
    conn_id = use(monkeypatch, "http://127.0.0.1:1/api", proxies={"https": "ftp://user:s3cr3t@proxy:21"})
    with pytest.raises(SMSNexusError) as caught:
        sync_balance(conn_id)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("name", sorted(set(NUMBER_RULES) & set(CONN_FIELDS)))
def test_the_form_accepts_no_number_the_configuration_refuses(name):
    rule, schema = NUMBER_RULES[name], CONN_FIELDS[name]["schema"]
    refused = rule.minimum if rule.above else rule.minimum - 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(refused, schema)
    jsonschema.validate(rule.minimum + 1, schema)
    assert rule.read(name, rule.minimum + 1) == rule.minimum + 1


@pytest.mark.parametrize(
    ("extra", "value"),
    [
        ("timeout", "2.5"),
        ("max_retries", "0"),
        ("max_retries", 3.0),
        ("verify", "False"),
        ("verify", " TRUE "),
        ("proxies", '{"no_proxy": "127.0.0.1"}'),
        ("proxies", {"no_proxy": ["127.0.0.1", "localhost"]}),
        ("retry_backoff", 0),
        ("listing_delay", 0),
    ],
)
def test_good_extras_in_any_spelling_are_read(
    smsnexus_emulator, monkeypatch, clean_environment, extra, value
):
    conn_id = use(monkeypatch, smsnexus_emulator.base_url, smsnexus_emulator.token, **{extra: value})
    assert sync_balance(conn_id)["credits"] == async_balance(conn_id)["credits"]


# -- 3. one CA-bundle rule -------------------------------------------------------------------------------


class Balance(_Quiet):
    def do_GET(self) -> None:
        self.answer(200, json.dumps(BALANCE), "application/json")


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """An HTTPS API whose certificate is its own CA (self-made, for 127.0.0.1): its base URL and the CA's PEM."""
    certificate = self_signed_certificate(tmp_path_factory.mktemp("ca"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert_path, certificate.key_path)
    for url in serve(Balance, context):
        yield url, certificate.cert_path


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
@pytest.mark.parametrize("hook", list(HOOKS))
def test_with_verify_true_both_hooks_trust_the_ca_bundle_variable(
    monkeypatch, clean_environment, tls_api, hook, variable
):
    url, ca = tls_api
    monkeypatch.setenv(variable, str(ca))
    assert HOOKS[hook](use(monkeypatch, url))["credits"] == 42


@pytest.mark.parametrize("hook", list(HOOKS))
def test_with_verify_true_a_directory_variable_or_extra_is_a_certificate_directory(
    monkeypatch, clean_environment, tls_api, tmp_path, hook
):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI names a certificate directory's files")
    url, ca = tls_api
    subject_hash = subprocess.run(
        ["openssl", "x509", "-subject_hash", "-noout", "-in", str(ca)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shutil.copy(ca, tmp_path / f"{subject_hash}.0")
    assert HOOKS[hook](use(monkeypatch, url, verify=str(tmp_path)))["credits"] == 42
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))
    assert HOOKS[hook](use(monkeypatch, url))["credits"] == 42


@pytest.mark.parametrize("hook", list(HOOKS))
def test_both_hooks_refuse_the_server_without_its_ca_with_a_typed_error(
    monkeypatch, clean_environment, tls_api, hook
):
    url, _ = tls_api
    with pytest.raises(SMSNexusError, match="TLS settings"):
        HOOKS[hook](use(monkeypatch, url))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify=False, on purpose
@pytest.mark.parametrize("hook", list(HOOKS))
def test_the_verify_extra_wins_over_the_variables_in_both_hooks(
    monkeypatch, clean_environment, tls_api, tmp_path, hook
):
    url, ca = tls_api
    import certifi

    for variable in CA_BUNDLE_VARIABLES[:3]:
        monkeypatch.setenv(variable, certifi.where())  # a bundle that does not trust the API
    assert HOOKS[hook](use(monkeypatch, url, verify=str(ca)))["credits"] == 42
    assert HOOKS[hook](use(monkeypatch, url, verify=False))["credits"] == 42


@pytest.mark.parametrize("hook", list(HOOKS))
def test_a_ca_bundle_variable_naming_nothing_is_a_typed_error_naming_it(
    monkeypatch, clean_environment, tls_api, hook
):
    url, _ = tls_api
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    with pytest.raises(SMSNexusError, match="REQUESTS_CA_BUNDLE"):
        HOOKS[hook](use(monkeypatch, url))


# -- 4. no_proxy in the proxies extra --------------------------------------------------------------------


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "localhost, 127.0.0.0/8", "*", ["other.test", "127.0.0.1"]]
)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_no_proxy_in_the_proxies_extra_reaches_the_host_directly(
    smsnexus_emulator, monkeypatch, clean_environment, hook, no_proxy
):
    dead = f"http://127.0.0.1:{refused_port()}"
    proxies = {"http": dead, "https": dead, "no_proxy": no_proxy}
    conn_id = use(monkeypatch, smsnexus_emulator.base_url, smsnexus_emulator.token, proxies=proxies)
    assert HOOKS[hook](conn_id)["credits"] == smsnexus_emulator.admin.account()["credits"]


@pytest.mark.parametrize("hook", list(HOOKS))
def test_a_proxy_that_no_proxy_does_not_exempt_is_used(
    smsnexus_emulator, monkeypatch, clean_environment, hook
):
    dead = f"http://127.0.0.1:{refused_port()}"
    for proxies in ({"http": dead}, {"http": dead, "no_proxy": "other.test"}):
        conn_id = use(monkeypatch, smsnexus_emulator.base_url, smsnexus_emulator.token, proxies=proxies)
        with pytest.raises(SMSNexusError, match="no answer"):
            HOOKS[hook](conn_id)


@pytest.mark.parametrize("hook", list(HOOKS))
def test_both_hooks_take_the_environments_proxy_unless_no_proxy_names_the_host(
    smsnexus_emulator, monkeypatch, clean_environment, hook
):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{refused_port()}")
    conn_id = use(monkeypatch, smsnexus_emulator.base_url, smsnexus_emulator.token)
    with pytest.raises(SMSNexusError, match="no answer"):
        HOOKS[hook](conn_id)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert HOOKS[hook](conn_id)["credits"] > 0
    # The extra's no_proxy stands for the connection: it replaces the environment's list.
    monkeypatch.setenv("NO_PROXY", "other.test")
    conn_id = use(
        monkeypatch, smsnexus_emulator.base_url, smsnexus_emulator.token, proxies={"no_proxy": "127.0.0.1"}
    )
    assert HOOKS[hook](conn_id)["credits"] > 0


class RecordingProxy(Balance):
    """A forward proxy that answers every request itself and refuses every tunnel, recording the request line
    and headers of each."""

    seen: list[tuple[str, dict[str, str]]] = []

    def record(self) -> None:
        self.seen.append((self.requestline, {name.lower(): value for name, value in self.headers.items()}))

    def do_GET(self) -> None:
        self.record()
        super().do_GET()

    def do_CONNECT(self) -> None:
        self.record()
        self.answer(502, "no tunnels here", "text/plain")


@pytest.mark.parametrize("hook", list(HOOKS))
def test_both_hooks_send_the_proxys_credentials_to_the_proxy_only(monkeypatch, clean_environment, hook):
    RecordingProxy.seen.clear()
    for url in serve(RecordingProxy):
        proxy = url.removesuffix("/api").replace("http://", "http://user:p%40ss@")
        conn_id = use(monkeypatch, "http://sms.example.test/api", proxies={"http": proxy})
        assert HOOKS[hook](conn_id)["credits"] == 42
    ((request_line, headers),) = RecordingProxy.seen
    assert request_line.startswith("GET http://sms.example.test/api/balance ")  # the absolute form: a proxy
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert "p%40ss" not in request_line


@pytest.mark.parametrize("target", ["http", "https"])
@pytest.mark.parametrize("hook", list(HOOKS))
def test_no_hook_hands_the_token_to_a_proxy_as_its_credentials(monkeypatch, clean_environment, hook, target):
    RecordingProxy.seen.clear()
    for url in serve(RecordingProxy):
        conn_id = use(
            monkeypatch, f"{target}://sms.example.test/api", proxies={target: url.removesuffix("/api")}
        )
        if target == "http":
            HOOKS[hook](conn_id)
        else:
            with pytest.raises(SMSNexusError):
                HOOKS[hook](conn_id)
    ((request_line, headers),) = RecordingProxy.seen
    assert "proxy-authorization" not in headers  # aiohttp sent a session's Authorization here
    if target == "https":  # the tunnel's request: the token travels inside it only
        assert request_line.startswith("CONNECT sms.example.test:443 ")
        assert "authorization" not in headers
