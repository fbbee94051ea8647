"""The emulator's HTTP side: the FastAPI application (routes in :mod:`.api_routes` and
:mod:`.inspection`), wrapped in a small ASGI layer that does what must happen around every ``/api``
request — the maintenance page, authentication, rate limiting and its headers, latency and fault
injection —, dates every answer on the server's clock (``Date``) and keeps the inspection API and the
inbox page to loopback clients (unless the settings' ``allow_remote_inspection`` opens them).

Serve :func:`create_app`'s result with uvicorn; :mod:`.server` and :mod:`.cli` do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from airflow_provider_smsnexus.emulator.extra import EmulatorNotInstalledError

try:  # FastAPI comes with the [emulator] extra: without it, say what to install (not a bare ImportError)
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:
    raise EmulatorNotInstalledError(exc.name or "fastapi") from exc

from airflow_provider_smsnexus import RUN_HEADER
from airflow_provider_smsnexus.emulator.answers import (
    MsgspecJSONResponse,
    encode_json,
    http_error_body,
    validation_error_body,
)
from airflow_provider_smsnexus.emulator.api_routes import (
    ACCOUNT_SCOPE_KEY,
    FAST_GET_ANSWERS,
    add_api_routes,
    query_params,
)
from airflow_provider_smsnexus.emulator.inspection import add_inspection_routes
from airflow_provider_smsnexus.emulator.ratelimit import OTHER, SEND, RateDecision
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.state import Emulator
from airflow_provider_smsnexus.emulator.validation import EmulatorHTTPError, ValidationFailed

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TICK_SECONDS = 0.05
#: The body of every ``/api`` answer while ``maintenance_page`` is on (status 200, text/html).
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body>"
    "<h1>We'll be right back</h1><p>SMS Nexus is down for scheduled maintenance.</p></body></html>"
)


async def _send_json(
    send: Send, status: int, content: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with a JSON body from the ASGI layer (outside FastAPI)."""
    await _send_body(send, status, b"application/json", encode_json(content), headers)


async def _send_body(
    send: Send, status: int, content_type: bytes, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _gateway_page(status: int) -> bytes:
    """The HTML error page of a proxy in front of the API (nginx-like), for a fault status other than 500."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status without a standard phrase, e.g. 599
        title = str(status)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()


#: The answer to a client beyond loopback, unless the emulator was started to allow it.
LOOPBACK_ONLY = (
    "The inspection API and the inbox page are loopback-only. Start the emulator with "
    "--allow-remote-inspection to serve them to other addresses (e.g. a browser outside its Docker container)."
)


def _is_loopback(client: Any) -> bool:
    host = client[0] if client else ""
    return host in ("::1", "localhost") or host.startswith(("127.", "::ffff:127."))


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; return a ``receive`` that replays it, then defers to the client."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _drop_connection(send: Send) -> None:
    """Close the client's connection without any answer (the client sees a dropped connection).

    ASGI has no message for this; with uvicorn the ``send`` callable is bound to the request cycle,
    which holds the transport. Marking the cycle disconnected keeps uvicorn from writing a 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("Dropping a connection needs uvicorn; this server cannot emulate it")
    transport.close()
    cycle.disconnected = True  # type: ignore[union-attr]


class EmulatorApp:
    """The ASGI application: the wrapper around the FastAPI routes.

    :param emulator: the state it serves.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.api = _build_api(emulator)
        self._date: tuple[int, bytes] = (-1, b"")

    async def __call__(self, scope: Scope, receive: Receive, raw_send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, raw_send)
            return
        send = self._dated(raw_send)
        path: str = scope["path"]
        if path in ("/", "/_emulator") or path.startswith("/_emulator/"):
            if not (self.emulator.settings.allow_remote_inspection or _is_loopback(scope.get("client"))):
                await _send_json(send, 403, {"success": False, "message": LOOPBACK_ONLY})
                return
            await self.api(scope, receive, send)
            return
        if path == "/api" or path.startswith("/api/"):
            await self._serve_api(scope, receive, send, raw_send)
            return
        await self.api(scope, receive, send)

    def _dated(self, send: Send) -> Send:
        """Wrap ``send``: add a ``Date`` header on the server's clock, and the run's name, to every answer."""

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"date", self._date_header()),
                    (RUN_HEADER.lower().encode(), self.emulator.run_id.encode()),
                ]
            await send(message)

        return dated

    def _date_header(self) -> bytes:
        """``Date`` on the server's clock (formatted once a second: it has whole seconds)."""
        second = int(self.emulator.server_now())
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True).encode())
        return self._date[1]

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send, raw_send: Send) -> None:
        emulator = self.emulator
        delay = emulator.request_delay()
        if delay > 0:
            # The request has reached the server before it waits: a client that dies meanwhile cannot take
            # it back (without this, uvicorn would hand the route a disconnect instead of the body).
            receive = await _buffered(receive)
            await asyncio.sleep(delay)
        if emulator.in_maintenance():
            await _send_body(send, 200, b"text/html; charset=utf-8", MAINTENANCE_PAGE.encode())
            return
        account = emulator.authenticate(_bearer_token(scope))
        endpoint_class = SEND if scope["method"] == "POST" and path_is_send(scope["path"]) else OTHER
        client = scope.get("client")
        bucket: Any = account.id if account is not None else f"anon:{client[0] if client else '?'}"
        decision = emulator.rate_limit(bucket, endpoint_class)
        headers = decision.headers()
        if not decision.allowed:
            await _send_json(send, 429, {"success": False, "message": "Too Many Attempts."}, headers)
            return
        if account is None:
            await _send_json(
                send,
                401,
                {"success": False, "message": "Unauthenticated."},
                [*headers, (b"www-authenticate", b"Bearer")],
            )
            return
        if account.suspended:
            await _send_json(send, 403, {"success": False, "message": "Your account is suspended."}, headers)
            return
        failure = emulator.roll_fail_before()
        if failure == 500:
            await _send_json(send, 500, {"success": False, "message": "Server Error"}, headers)
            return
        if failure is not None:
            await _send_body(send, failure, b"text/html", _gateway_page(failure), headers)
            return
        answer = FAST_GET_ANSWERS.get(scope["path"]) if scope["method"] == "GET" else None
        if answer is not None:  # a hot read path: the same answer as its FastAPI route, without FastAPI
            try:
                status, body = 200, answer(emulator, account, query_params(scope))
            except ValidationFailed as exc:
                status, body = 422, validation_error_body(exc)
            except EmulatorHTTPError as exc:
                status, body = exc.status_code, http_error_body(exc)
            await _send_body(send, status, b"application/json", body, headers)
            return
        scope[ACCOUNT_SCOPE_KEY] = account
        await self.api(scope, receive, self._answering(send, raw_send, endpoint_class, decision))

    def _answering(self, send: Send, raw_send: Send, endpoint_class: str, decision: RateDecision) -> Send:
        """Wrap ``send``: add the rate-limit headers; after a processed send, wait ``send_hold_ms``,
        then maybe answer 500 or drop the connection instead (fault injection; dropping needs
        uvicorn's own ``raw_send``)."""
        fate: list[str | None] = [None]
        headers = decision.headers()

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                if endpoint_class == SEND and message["status"] == 200:
                    hold = self.emulator.settings.send_hold_ms
                    if hold > 0:  # processed, not yet answered: the window a killed client dies in
                        await asyncio.sleep(hold / 1000)
                    fate[0] = self.emulator.roll_after_send()
                if fate[0] == "fail":
                    await _send_json(send, 500, {"success": False, "message": "Server Error"}, headers)
                    return
                if fate[0] == "drop":
                    _drop_connection(raw_send)
                    return
                message["headers"] = [*message.get("headers", []), *headers]
            elif fate[0] is not None:
                return
            await send(message)

        return answer


def path_is_send(path: str) -> bool:
    """Whether ``path`` is the send endpoint (its own rate-limit class).

    :param path: request path.
    """
    return path.rstrip("/") == "/api/sms/send"


def create_app(settings: EmulatorSettings | None = None, emulator: Emulator | None = None) -> EmulatorApp:
    """Build the ASGI application.

    :param settings: start-up settings (default: :class:`EmulatorSettings` defaults, as the CLI).
    :param emulator: an existing state to serve instead (then ``settings`` is ignored).
    """
    return EmulatorApp(emulator or Emulator(settings or EmulatorSettings()))


def _build_api(emulator: Emulator) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        emulator.dispatcher.start()
        ticker = asyncio.create_task(_run_lifecycle(emulator))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            emulator.dispatcher.stop()

    api = FastAPI(
        title="SMS Nexus emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    @api.exception_handler(ValidationFailed)
    async def validation_failed(_: Request, exc: ValidationFailed) -> Response:
        return Response(validation_error_body(exc), status_code=422, media_type="application/json")

    @api.exception_handler(EmulatorHTTPError)
    async def http_error(_: Request, exc: EmulatorHTTPError) -> Response:
        return Response(http_error_body(exc), status_code=exc.status_code, media_type="application/json")

    @api.exception_handler(StarletteHTTPException)
    async def starlette_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return MsgspecJSONResponse(
            {"success": False, "message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    add_api_routes(api, emulator)
    add_inspection_routes(api, emulator)
    from airflow_provider_smsnexus.emulator.inbox import add_inbox_routes

    add_inbox_routes(
        api, emulator
    )  # the inbox page at "/" (kept to loopback above, as /_emulator) and its routes
    return api


async def _run_lifecycle(emulator: Emulator) -> None:
    """Advance the automatic lifecycle a few times a second until cancelled."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            emulator.tick()
        except Exception:
            log.exception("Lifecycle step failed")
