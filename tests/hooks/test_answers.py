"""Reading answers (hooks/_answers.py): a token a server echoes never reaches an error's text in any encoding,
a successful answer's data is never rewritten; and two transport rules of the hook that tests had not shown:
a webhook registration is never repeated once it may have arrived, and the ``verify`` extra holds even when
``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` is set."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusServerError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks._scrub import scrub
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

if TYPE_CHECKING:
    from pathlib import Path

BASE = "http://smsnexus.test/api"
TOKEN = "SMSNEXUS-MOCK-SECRET-ab/c+d=e"


def hook_for(monkeypatch: pytest.MonkeyPatch, token: str = TOKEN, host: str = BASE, **extra) -> SMSNexusHook:
    extra = {"retry_backoff": 0.01, "retry_backoff_max": 0.02, "max_retries": 2, **extra}
    conn = {"conn_type": "smsnexus", "host": host, "password": token, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SMSNEXUS_ANSWERS", json.dumps(conn))
    return SMSNexusHook(smsnexus_conn_id="smsnexus_answers")


def encodings(token: str) -> dict[str, str]:
    """The token as a server might write it back."""
    return {
        "plain": token,
        "php_json": token.replace("/", "\\/"),
        "json_u002f": token.replace("/", "\\u002f"),
        "json_every_char": "".join(f"\\u{ord(c):04x}" for c in token),
        "url": quote(token, safe=""),
        "url_plus": quote_plus(token),
        "base64": base64.b64encode(token.encode()).decode(),
        "base64_bearer": base64.b64encode(f"Bearer {token}".encode()).decode(),
        "html": "".join(f"&#{ord(c)};" for c in token),
    }


def texts_of(error: SMSNexusError) -> str:
    return " ".join(
        [str(error), repr(error), str(error.server_message), json.dumps(getattr(error, "errors", None))]
    )


@pytest.mark.parametrize("how", list(encodings(TOKEN)))
@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (401, "json_message", SMSNexusAuthError),
        (422, "json_errors", SMSNexusValidationError),
        (502, "html", SMSNexusServerError),
        (200, "success_false", SMSNexusResponseError),
        (200, "html", SMSNexusResponseError),
    ],
)
@responses.activate
def test_an_echoed_token_never_reaches_the_error_in_any_encoding(monkeypatch, how, status, kind, error):
    echoed = encodings(TOKEN)[how]
    hook = hook_for(monkeypatch, max_retries=0)
    if kind == "html":
        responses.get(f"{BASE}/balance", body=f"<html>token {echoed} refused</html>", status=status)
    else:
        # Written as raw text, so that the JSON escapes reach the client as the server wrote them.
        inner = f'"header {echoed} refused"'
        body = {
            "json_message": f'{{"success": false, "message": {inner}}}',
            "json_errors": f'{{"success": false, "message": "bad", "errors": {{"to": [{inner}]}}}}',
            "success_false": f'{{"success": false, "message": {inner}}}',
        }[kind]
        responses.get(f"{BASE}/balance", body=body, status=status, content_type="application/json")
    with pytest.raises(error) as caught:
        hook.get_balance()
    text = texts_of(caught.value)
    for form in encodings(TOKEN).values():
        assert form not in text
    assert "***" in text  # the echo was there, and was scrubbed


@responses.activate
def test_a_one_character_token_leaves_a_valid_answer_valid_and_untouched(monkeypatch):
    # One character cannot carry the secrets guard's marker: the assertion below is this test's own guard.
    hook = hook_for(monkeypatch, token="e")
    balance = {"credits": 1500, "currency": "credits", "plan": "Professional", "credits_used_today": 3}
    responses.get(f"{BASE}/balance", json={"success": True, "data": balance})
    assert hook.get_balance() == balance  # "e" occurs in the body: a rewrite would break the JSON


@responses.activate
def test_a_successful_answer_holding_the_token_is_returned_as_the_server_sent_it(monkeypatch):
    hook = hook_for(monkeypatch)
    message = {"id": 1, "status": "queued", "body": f"your key is {TOKEN}", "credits_used": 1}
    responses.post(f"{BASE}/sms/send", json={"success": True, "data": message})
    assert hook.send_sms("+12125550100", "+12125550150", "hi")["body"] == f"your key is {TOKEN}"


def test_scrubbing_finds_the_token_inside_longer_encoded_texts():
    token = "SMSNEXUS-TEST-TOKEN-xY/9+z=Q_k"
    for encoded in encodings(token).values():
        assert token not in scrub(f"a{encoded}b", token)
        assert scrub(f"a{encoded}b", token) != f"a{encoded}b"
    assert scrub("nothing here", token) == "nothing here"
    assert scrub("anything", "") == "anything"


# -- a webhook registration is sent once -----------------------------------------------------------


def test_a_webhook_registration_answered_500_is_not_sent_again(smsnexus_emulator, smsnexus_conn):
    admin = smsnexus_emulator.admin
    admin.set_faults(fail_before_share=1.0)
    with pytest.raises(SMSNexusServerError):
        SMSNexusHook().create_webhook("https://example.test/hook", ["message.received"])
    stats = admin.stats()
    assert stats["requests"]["other"] == 1  # one POST, no retry
    assert stats["faults"]["fail_before"] == 1


@responses.activate
def test_a_webhook_registration_whose_connection_dropped_is_not_sent_again(monkeypatch):
    from urllib3.exceptions import ProtocolError

    hook = hook_for(monkeypatch, max_retries=3)
    dropped = requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError())
    )
    responses.post(f"{BASE}/webhooks", body=dropped)
    with pytest.raises(SMSNexusError):
        hook.create_webhook("https://example.test/hook", ["message.received"])
    assert len(responses.calls) == 1


# -- verify holds against the CA-bundle environment variables --------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A local HTTPS server with a self-signed certificate, answering ``GET /api/balance``."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Balance(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"success": True, "data": {"credits": 42, "plan": "Pro"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Balance)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/api", cert
    server.shutdown()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("verify", ["false", "bundle"])
def test_the_verify_extra_holds_when_a_ca_bundle_variable_points_elsewhere(
    monkeypatch, tls_server, variable, verify
):
    import certifi

    url, cert = tls_server
    monkeypatch.setenv(variable, certifi.where())  # a bundle that does not trust the local server
    hook = hook_for(monkeypatch, host=url, max_retries=0, verify=False if verify == "false" else str(cert))
    assert hook.get_balance()["credits"] == 42

    # And the variable alone (verify left at its default) does refuse the server: the test can fail.
    strict = hook_for(monkeypatch, host=url, max_retries=0)
    with pytest.raises(SMSNexusError):
        strict.get_balance()


def test_the_self_signed_server_is_refused_without_the_extra(tls_server, tmp_path: Path):
    url, _ = tls_server
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/balance", timeout=5)
