"""The emulator's HTTP side: FastAPI routes for ``/api`` and ``/_emulator``, wrapped in a small ASGI
layer that does what must happen around every ``/api`` request — authentication, rate limiting and
its headers, latency and fault injection — and keeps the inspection API to loopback clients.

Serve :func:`create_app`'s result with uvicorn; :mod:`.server` and :mod:`.cli` do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_smsnexus.emulator.ratelimit import OTHER, SEND, RateDecision
from airflow_provider_smsnexus.emulator.settings import EmulatorSettings
from airflow_provider_smsnexus.emulator.state import (
    Emulator,
    EmulatorHTTPError,
    ValidationFailed,
    parse_moment,
)
from airflow_provider_smsnexus.emulator.store import DIRECTIONS, ORIGINS, STATUSES

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ACCOUNT_SCOPE_KEY = "smsnexus.account"
MAX_PER_PAGE = 100
TICK_SECONDS = 0.05


def _json_body(status: int, content: dict[str, Any]) -> tuple[int, bytes]:
    return status, json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


async def _send_json(
    send: Send, status: int, content: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with a JSON body from the ASGI layer (outside FastAPI)."""
    _, body = _json_body(status, content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/_emulator" or path.startswith("/_emulator/"):
            if not _is_loopback(scope.get("client")):
                await _send_json(
                    send, 403, {"success": False, "message": "The inspection API is loopback-only."}
                )
                return
            await self.api(scope, receive, send)
            return
        if path == "/api" or path.startswith("/api/"):
            await self._serve_api(scope, receive, send)
            return
        await self.api(scope, receive, send)

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        emulator = self.emulator
        delay = emulator.request_delay()
        if delay > 0:
            # The request has reached the server before it waits: a client that dies meanwhile cannot take
            # it back (without this, uvicorn would hand the route a disconnect instead of the body).
            receive = await _buffered(receive)
            await asyncio.sleep(delay)
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
        if emulator.roll_fail_before():
            await _send_json(send, 500, {"success": False, "message": "Server Error"}, headers)
            return
        scope[ACCOUNT_SCOPE_KEY] = account
        await self.api(scope, receive, self._answering(send, endpoint_class, decision))

    def _answering(self, send: Send, endpoint_class: str, decision: RateDecision) -> Send:
        """Wrap ``send``: add the rate-limit headers; after a processed send, wait ``send_hold_ms``,
        then maybe answer 500 or drop the connection instead (fault injection)."""
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
                    _drop_connection(send)
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


# -- routes -------------------------------------------------------------------------------------------


def _account(request: Request) -> Any:
    return request.scope[ACCOUNT_SCOPE_KEY]


async def _read_json(request: Request) -> Any:
    """The decoded JSON body; anything unreadable counts as an empty body (then 'required' errors)."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _ok(data: Any, message: str | None = None, meta: dict[str, int] | None = None) -> JSONResponse:
    content: dict[str, Any] = {"success": True}
    if message is not None:
        content["message"] = message
    content["data"] = data
    if meta is not None:
        content["meta"] = meta
    return JSONResponse(content)


def _page_params(request: Request, errors: dict[str, list[str]]) -> tuple[int, int]:
    page = _int_param(request, "page", 1, errors, maximum=None)
    per_page = _int_param(request, "per_page", 25, errors, maximum=MAX_PER_PAGE)
    return page, per_page


def _int_param(
    request: Request, name: str, default: int, errors: dict[str, list[str]], *, maximum: int | None
) -> int:
    raw = request.query_params.get(name)
    label = name.replace("_", " ")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"The {label} field must be an integer."]
        return default
    if value < 1:
        errors[name] = [f"The {label} field must be at least 1."]
    elif maximum is not None and value > maximum:
        errors[name] = [f"The {label} field must not be greater than {maximum}."]
    return value


def _choice_param(
    request: Request, name: str, choices: tuple[str, ...], errors: dict[str, list[str]]
) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        errors[name] = [f"The selected {name} is invalid."]
        return None
    return raw


def _date_param(request: Request, name: str, errors: dict[str, list[str]]) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_moment(raw)
    if moment is None:
        errors[name] = [f"The {name.replace('_', ' ')} field must be a valid date."]
    return moment


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
    async def validation_failed(_: Request, exc: ValidationFailed) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message, "errors": exc.errors}, status_code=422)

    @api.exception_handler(EmulatorHTTPError)
    async def http_error(_: Request, exc: EmulatorHTTPError) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=exc.status_code)

    @api.exception_handler(StarletteHTTPException)
    async def starlette_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"success": False, "message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    # -- SMS Nexus API ------------------------------------------------------------------------------

    @api.post("/api/sms/send")
    async def send_sms(request: Request) -> JSONResponse:
        data = emulator.send(_account(request), await _read_json(request))
        return _ok(data, message="Message sent successfully")

    @api.get("/api/balance")
    async def balance(request: Request) -> JSONResponse:
        return _ok(emulator.balance(_account(request)))

    @api.get("/api/messages")
    async def messages(request: Request) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        page, per_page = _page_params(request, errors)
        status = _choice_param(request, "status", STATUSES, errors)
        direction = _choice_param(request, "direction", DIRECTIONS, errors)
        start = _date_param(request, "start_date", errors)
        end = _date_param(request, "end_date", errors)
        if start is not None and end is not None and end < start:
            errors["end_date"] = ["The end date field must be a date after or equal to start date."]
        if errors:
            raise ValidationFailed(errors)
        data, meta = emulator.list_messages(
            _account(request),
            page=page,
            per_page=per_page,
            status=status,
            direction=direction,
            start=start,
            end=end,
        )
        return _ok(data, meta=meta)

    @api.get("/api/phone-numbers")
    async def phone_numbers(request: Request) -> JSONResponse:
        return _ok(emulator.phone_numbers(_account(request)))

    @api.get("/api/conversations")
    async def conversations(request: Request) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        page, per_page = _page_params(request, errors)
        if errors:
            raise ValidationFailed(errors)
        data, meta = emulator.list_conversations(_account(request), page=page, per_page=per_page)
        return _ok(data, meta=meta)

    @api.post("/api/webhooks")
    async def create_webhook(request: Request) -> JSONResponse:
        data = emulator.create_webhook(_account(request), await _read_json(request))
        return _ok(data, message="Webhook created successfully")

    @api.get("/api/webhooks")
    async def list_webhooks(request: Request) -> JSONResponse:
        return _ok(emulator.list_webhooks(_account(request)))

    @api.delete("/api/webhooks/{webhook_id}")
    async def delete_webhook(request: Request, webhook_id: str) -> JSONResponse:
        emulator.delete_webhook(_account(request), webhook_id)
        return JSONResponse({"success": True, "message": "Webhook deleted successfully"})

    # -- inspection API (loopback only; see EmulatorApp) ---------------------------------------------

    def account_of(account_id: str) -> Any:
        if not account_id.isdigit():
            raise EmulatorHTTPError(404, f"Account {account_id} not found")
        return emulator.account(int(account_id))

    @api.get("/_emulator/health")
    async def health() -> JSONResponse:
        return _ok({"status": "ok", "accounts": len(emulator.accounts)})

    @api.post("/_emulator/reset")
    async def reset() -> JSONResponse:
        emulator.reset()
        return _ok({"accounts": [account.id for account in emulator.accounts.values()]})

    @api.get("/_emulator/config")
    async def get_config() -> JSONResponse:
        return _ok(emulator.settings.public_dict())

    @api.post("/_emulator/config")
    async def set_config(request: Request) -> JSONResponse:
        body = await _read_json(request)
        return _ok(emulator.configure(body if isinstance(body, dict) else {}))

    @api.get("/_emulator/stats")
    async def stats() -> JSONResponse:
        return _ok(emulator.stats())

    @api.get("/_emulator/accounts")
    async def accounts() -> JSONResponse:
        return _ok([account.summary() for account in emulator.accounts.values()])

    @api.post("/_emulator/accounts")
    async def add_account(request: Request) -> JSONResponse:
        body = await _read_json(request)
        body = body if isinstance(body, dict) else {}
        account = emulator.add_account(
            body.get("token"),
            credits=body.get("credits"),
            plan=body.get("plan"),
            numbers=body.get("numbers"),
            suspended=bool(body.get("suspended", False)),
        )
        return _ok(account.summary())

    @api.get("/_emulator/accounts/{account_id}")
    async def get_account(account_id: str) -> JSONResponse:
        return _ok(account_of(account_id).summary())

    @api.patch("/_emulator/accounts/{account_id}")
    async def update_account(account_id: str, request: Request) -> JSONResponse:
        body = await _read_json(request)
        account = emulator.update_account(account_of(account_id).id, body if isinstance(body, dict) else {})
        return _ok(account.summary())

    @api.get("/_emulator/accounts/{account_id}/messages")
    async def inspect_messages(account_id: str, request: Request) -> JSONResponse:
        account = account_of(account_id)
        errors: dict[str, list[str]] = {}
        origins = request.query_params.getlist("origin") or None
        if origins and any(origin not in ORIGINS for origin in origins):
            errors["origin"] = ["The selected origin is invalid."]
        direction = _choice_param(request, "direction", DIRECTIONS, errors)
        if errors:
            raise ValidationFailed(errors)
        return _ok(emulator.inspect_messages(account, origins=origins, direction=direction))

    @api.post("/_emulator/accounts/{account_id}/inbound")
    async def inbound(account_id: str, request: Request) -> JSONResponse:
        body = await _read_json(request)
        body = body if isinstance(body, dict) else {}
        message = emulator.receive(account_of(account_id), body.get("from"), body.get("to"), body.get("body"))
        return _ok(message)

    @api.post("/_emulator/accounts/{account_id}/seed")
    async def seed(account_id: str, request: Request) -> JSONResponse:
        body = await _read_json(request)
        body = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        count = body.get("n")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            errors["n"] = ["The n field must be an integer of at least 0."]
        bounds: dict[str, float | None] = {}
        for name in ("start", "end"):
            bounds[name] = parse_moment(body.get(name))
            if body.get(name) is not None and bounds[name] is None:
                errors[name] = [f"The {name} field must be a valid date."]
        if errors:
            raise ValidationFailed(errors)
        return _ok(
            emulator.seed(
                account_of(account_id).id,
                count,
                random_seed=int(body.get("random_seed") or 0),
                start=bounds["start"],
                end=bounds["end"],
            )
        )

    @api.post("/_emulator/lifecycle/advance")
    async def advance() -> JSONResponse:
        return _ok(emulator.advance_lifecycle())

    @api.get("/_emulator/webhook-deliveries")
    async def deliveries() -> JSONResponse:
        return _ok(emulator.dispatcher.deliveries())

    return api


async def _run_lifecycle(emulator: Emulator) -> None:
    """Advance the automatic lifecycle a few times a second until cancelled."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            emulator.tick()
        except Exception:
            log.exception("Lifecycle step failed")
