"""Helpers for the emulator's own tests: a plain HTTP client written from the API reference only,
and a local webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_provider_smsnexus.emulator.testing import EmulatorHandle

SENDER = "+12125550100"  # sms + mms, active
CONTACT = "+12125550150"


class ApiClient:
    """A minimal SMS Nexus client: Bearer token, JSON, nothing else (no retries, no pacing).

    :param base_url: ``http://127.0.0.1:<port>/api``.
    :param token: Bearer token, or None to send none.
    """

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Accept"] = "application/json"
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", params=params, timeout=10)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=body, timeout=10, **kwargs)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(f"{self.base_url}{path}", timeout=10)

    def send(
        self, message: str = "Hello", to: str = CONTACT, sender: str = SENDER, **extra: Any
    ) -> requests.Response:
        return self.post("/sms/send", {"from": sender, "to": to, "message": message, **extra})


@pytest.fixture
def api(smsnexus_emulator: EmulatorHandle) -> ApiClient:
    """A client of the default account."""
    return ApiClient(smsnexus_emulator.base_url, smsnexus_emulator.token)


@pytest.fixture
def client_for(smsnexus_emulator: EmulatorHandle) -> Callable[[str | None], ApiClient]:
    """Make a client for another token (or none)."""
    return lambda token: ApiClient(smsnexus_emulator.base_url, token)


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records every JSON POST it gets.

    :param status: the status it answers with.
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "json": json.loads(body),
                        }
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` POSTs arrived and return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"only {len(self.received)} of {count} webhook POSTs arrived")


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def _wait_for_window_start(window: float = 1.0, margin: float = 0.05) -> None:
    time.sleep(window - (time.time() % window) + margin)


@pytest.fixture
def window_start() -> Callable[..., None]:
    """Sleep until just after a fixed rate-limit window begins, so a short burst usually stays in one
    window (whether it did is for :func:`_in_windows` to check)."""
    return _wait_for_window_start


def window_of(response: requests.Response) -> int:
    """The window the emulator counted ``response``'s request in: its ``X-RateLimit-Reset`` (the
    window's end in epoch seconds; windows are epoch-aligned, so each window has one)."""
    return int(response.headers["X-RateLimit-Reset"])


Burst = list[requests.Response]
ATTEMPTS = 5


def _in_windows(scenario: Callable[[], Sequence[Burst]], attempts: int = ATTEMPTS) -> list[Burst]:
    """Run ``scenario`` (it sets itself up from a reset emulator) until each of its bursts was
    counted in one window, the bursts in consecutive windows, as the emulator's own answers say
    (:func:`window_of`).

    A loaded machine may stretch a burst over a window boundary; then the scenario is run again,
    and after ``attempts`` such runs the test fails saying so, instead of checking something else.

    :param scenario: returns its bursts, each a list of answers in request order.
    :param attempts: runs before giving up.
    """
    seen: list[list[list[int]]] = []
    for _ in range(attempts):
        bursts = [list(burst) for burst in scenario()]
        windows = [sorted({window_of(response) for response in burst}) for burst in bursts]
        firsts = [burst_windows[0] for burst_windows in windows]
        if all(len(burst_windows) == 1 for burst_windows in windows) and firsts == list(
            range(firsts[0], firsts[0] + len(firsts))
        ):
            return bursts
        seen.append(windows)
    pytest.fail(
        f"in {attempts} runs the bursts never each fitted one 1-second window, in consecutive windows "
        f"(windows per burst, per run: {seen}): the machine is too loaded for this scenario"
    )


@pytest.fixture
def in_windows() -> Callable[..., list[Burst]]:
    """Run a rate-limit scenario until its bursts each fell in one window; see :func:`_in_windows`."""
    return _in_windows
