"""Small real servers for transport tests: TLS servers that fail at a chosen moment, and raw TCP servers.

Each runs its accept loop in a daemon thread on a free loopback port and keeps its own record of what it
received (``requests``: the raw bytes of each request read in full), so a test can tell "the request left
and arrived" from "nothing arrived" without trusting the client's account. Used as context managers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType


def corrupt_tls_record() -> bytes:
    """A TLS application-data record header (32 bytes long) and 32 random bytes: no key decrypts them, so
    the client's TLS layer fails on them after the handshake."""
    return b"\x17\x03\x03\x00\x20" + os.urandom(32)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for ``127.0.0.1`` and ``localhost``, as PEM files."""

    cert_path: Path
    key_path: Path


def self_signed_certificate(directory: Path) -> Certificate:
    """Write a self-signed certificate (with ``cryptography`` when installed, else the ``openssl`` CLI)."""
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    try:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key_path), "-out", str(cert_path), "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return Certificate(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_path, key_path)


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP/1.1 request (headers, then a ``Content-Length`` body) from a connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class _Server:
    """The accept loop and the record shared by the servers below; ``handle`` is each one's behaviour."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        self.received = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, scheme: str) -> str:
        """The API base URL of this server."""
        return f"{scheme}://127.0.0.1:{self.port}/api"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def _record(self, request: bytes) -> None:
        with self._lock:
            self.requests.append(request)
        self.received.set()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                self.connections += 1
            with conn, contextlib.suppress(OSError, ssl.SSLError):
                conn.settimeout(10)
                self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class CorruptAfterRequestTLSServer(_Server):
    """Completes the TLS handshake, reads and records the whole request, then writes a corrupt TLS record."""

    def __init__(self, certificate: Certificate) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate.cert_path, certificate.key_path)
        self.handshakes = 0

    def handle(self, conn: socket.socket) -> None:
        tls = self._context.wrap_socket(conn, server_side=True)
        self.handshakes += 1
        request = read_request(tls)
        if request:
            self._record(request)
        # Under the TLS layer, straight onto the socket: the client meets it after its request was written.
        os.write(tls.fileno(), corrupt_tls_record())


class TLSHandshakeServer(_Server):
    """A TLS server with a self-signed certificate that serves nothing: a client that refuses the certificate
    fails the handshake; ``requests`` records anything that arrived after one."""

    def __init__(self, certificate: Certificate) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate.cert_path, certificate.key_path)
        self.handshake_failures = 0

    def handle(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            return
        request = read_request(tls)
        if request:
            self._record(request)


class GarbageHandshakeServer(_Server):
    """Answers a TLS ClientHello with bytes that are not TLS, so the handshake fails inside the client's connect."""

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65536)  # the ClientHello
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


class SilentServer(_Server):
    """Plain TCP: reads and records the whole request, then answers nothing until the client gives up."""

    def handle(self, conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            self._record(request)
        with contextlib.suppress(OSError, TimeoutError):
            while conn.recv(65536):
                pass


def refused_port() -> int:
    """A loopback port where nothing listens (bound, then closed), so a connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
