"""A TLS front for the emulator that lets chosen requests reach the emulator and then corrupts their answer.

The proxy ends TLS, reads each request in full, forwards it to the emulator over plain HTTP and reads the
emulator's answer; for a request ``corrupt(request)`` picks, it writes a corrupt TLS record instead of the
answer (under the TLS layer, straight onto the socket), so the client's TLS layer fails *after* the server
acted. ``corrupted`` records, for each such request, the emulator's own answer: the message it stored.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.hooks.tls_servers import corrupt_tls_record, read_request

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from tests.hooks.tls_servers import Certificate

_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


def is_send(request: bytes) -> bool:
    """Whether a raw request is ``POST /api/sms/send``."""
    return request.startswith(b"POST ") and b" /api/sms/send " in request.split(b"\r\n", 1)[0] + b" "


class CorruptingTLSProxy:
    """
    TLS in front of the emulator at ``upstream`` (its base URL); corrupts the answers ``corrupt`` picks.

    :param certificate: the proxy's certificate (clients verify against its PEM file).
    :param upstream: the emulator's API base URL, ``http://127.0.0.1:<port>/api``.
    :param corrupt: picks the requests whose answer is replaced by a corrupt TLS record (default: sends).
    """

    def __init__(
        self, certificate: Certificate, upstream: str, corrupt: Callable[[bytes], bool] = is_send
    ) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.corrupt = corrupt
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate.cert_path, certificate.key_path)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        #: ``(request, the emulator's JSON answer)`` for every request whose answer was corrupted: for a send,
        #: the answer's ``data`` is the message the emulator stored.
        self.corrupted: list[tuple[bytes, Any]] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The API base URL clients use."""
        return f"https://127.0.0.1:{self.port}/api"

    def __enter__(self) -> CorruptingTLSProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ssl.SSLError):
            conn.settimeout(30)
            tls = self._context.wrap_socket(conn, server_side=True)
            while True:  # keep-alive: one request after another on this connection
                request = read_request(tls)
                if not request:
                    return
                status, reason, headers, body = self._forward(request)
                if self.corrupt(request):
                    with self._lock:
                        self.corrupted.append((request, json.loads(body or b"null")))
                    os.write(tls.fileno(), corrupt_tls_record())
                    return
                head = [f"HTTP/1.1 {status} {reason}".encode()]
                head += [name + b": " + value for name, value in headers if name.lower() not in _HOP_BY_HOP]
                head += [b"Content-Length: " + str(len(body)).encode(), b"Connection: keep-alive"]
                tls.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)

    def _forward(self, request: bytes) -> tuple[int, str, list[tuple[bytes, bytes]], bytes]:
        with socket.create_connection(self._upstream, timeout=30) as upstream:
            upstream.sendall(request)
            answer = http.client.HTTPResponse(upstream)
            answer.begin()
            body = answer.read()
        with self._lock:
            self.forwarded += 1
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.getheaders()]
        return answer.status, answer.reason, headers, body
