"""Run the emulator with uvicorn: in a background thread (tests, benchmarks) or in the foreground
(the CLI). The socket is bound before uvicorn starts, so port 0 gives a free port without races.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.extra import require_server
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    import uvicorn

    from airflow_provider_smsnexus.emulator.app import EmulatorApp
    from airflow_provider_smsnexus.emulator.state import Emulator

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    :param host: address to listen on.
    :param port: port, or 0.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it an
    # answer's two writes (head, body) meet Nagle and delayed ACKs: 40 ms a request on loopback.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class QuietSignalServer(uvicorn.Server):
        """A uvicorn server that leaves signal handling to its owner (no re-raised signals)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietSignalServer


class EmulatorServer:
    """An emulator served by uvicorn on a pre-bound socket.

    Use :meth:`start` / :meth:`stop` (or ``with``) to run it in a daemon thread, or :meth:`serve`
    to run it in the calling thread until :meth:`request_stop`.

    :param settings: start-up settings (default: the CLI defaults).
    :param host: address to listen on.
    :param port: port; 0 picks a free one.
    :param access_log: log each request line (off by default; tokens never appear in URLs anyway).
    :param log_level: uvicorn's log level.
    :param configure_logging: let uvicorn install its logging configuration (the CLI does);
        otherwise its loggers just propagate to the application's.
    :raises ~.extra.EmulatorNotInstalledError: the provider was installed without its ``[emulator]`` extra.
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
        log_level: str = "warning",
        configure_logging: bool = False,
    ) -> None:
        require_server()  # FastAPI, uvicorn and httptools: the [emulator] extra
        from airflow_provider_smsnexus.emulator.app import create_app

        self.settings = settings or EmulatorSettings()
        self.app: EmulatorApp = create_app(self.settings)
        self.host = host
        self.socket = bind_socket(host, port)
        self.port: int = self.socket.getsockname()[1]
        config = _uvicorn_config(
            self.app, access_log=access_log, log_level=log_level, configure_logging=configure_logging
        )
        self._server = _server_class()(config)
        self._thread: threading.Thread | None = None

    @property
    def emulator(self) -> Emulator:
        """The served state (touch it only from the server's thread, or through the admin API)."""
        return self.app.emulator

    @property
    def root_url(self) -> str:
        """``http://host:port`` (the inspection API lives under ``/_emulator/``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL for connections: ``http://host:port/api``."""
        return f"{self.root_url}/api"

    @property
    def started(self) -> bool:
        """Whether uvicorn is accepting connections."""
        return bool(self._server.started)

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return bool(self._server.should_exit)

    def serve(self) -> None:
        """Serve in the calling thread until :meth:`request_stop`."""
        self._server.run(sockets=[self.socket])

    def request_stop(self, force: bool = False) -> None:
        """Ask the server to finish (safe from signal handlers and other threads).

        :param force: also cut open connections short.
        """
        self._server.should_exit = True
        if force:
            self._server.force_exit = True

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Serve in a daemon thread and wait until it accepts connections.

        :param timeout: seconds to wait for start-up.
        """
        self._thread = threading.Thread(target=self.serve, name="smsnexus-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("The SMS Nexus emulator failed to start; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"The SMS Nexus emulator did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background server and release its port.

        :param timeout: seconds to wait for a graceful stop before forcing it.
        """
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.request_stop(force=True)
                self._thread.join(timeout)
            self._thread = None
        self.socket.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _uvicorn_config(app: Any, *, access_log: bool, log_level: str, configure_logging: bool) -> uvicorn.Config:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    return uvicorn.Config(
        app,
        log_config=LOGGING_CONFIG if configure_logging else None,
        access_log=access_log,
        log_level=log_level,
        lifespan="on",
        http="httptools",  # the C parser: a third less server CPU per request than h11
        loop="auto",  # uvloop where installed; with TCP_NODELAY on, asyncio measured as fast
        ws="none",
        timeout_graceful_shutdown=5,
        server_header=False,
        date_header=False,  # the app dates its answers on the server's clock (clock_offset_seconds)
    )
