"""The routes of the SMS Nexus API itself (``/api/...``) and the request-reading helpers they share
with the inspection API: JSON bodies, paging, choice and date parameters, the success envelope.
Authentication, limits and faults happen before a route runs (see :mod:`.app`); the hot read
paths are plain functions the ASGI layer also calls directly (:data:`FAST_GET_ANSWERS`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations at run time
from fastapi.responses import JSONResponse, Response

from airflow_provider_smsnexus.emulator.answers import (
    MsgspecJSONResponse,
    encode_json,
    envelope,
    message_page_body,
)
from airflow_provider_smsnexus.emulator.store import DIRECTIONS, STATUSES
from airflow_provider_smsnexus.emulator.validation import ValidationFailed, parse_moment

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fastapi import FastAPI

    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.state import Emulator

#: Where the ASGI layer leaves the authenticated account for the route.
ACCOUNT_SCOPE_KEY = "smsnexus.account"
MAX_PER_PAGE = 100


def account_of_request(request: Request) -> Any:
    """The account the ASGI layer authenticated for this request."""
    return request.scope[ACCOUNT_SCOPE_KEY]


async def read_json(request: Request) -> Any:
    """The decoded JSON body; anything unreadable counts as an empty body (then 'required' errors).

    :param request: the request.
    """
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def ok(data: Any, message: str | None = None, meta: dict[str, int] | None = None) -> JSONResponse:
    """The success envelope of the reference as an answer (see :func:`.answers.envelope`).

    :param data: the answer's data.
    :param message: a human-readable message.
    :param meta: pagination meta of a list.
    """
    return MsgspecJSONResponse(envelope(data, message, meta))


def _page_params(params: Mapping[str, str], errors: dict[str, list[str]]) -> tuple[int, int]:
    page = _int_param(params, "page", 1, errors, maximum=None)
    per_page = _int_param(params, "per_page", 25, errors, maximum=MAX_PER_PAGE)
    return page, per_page


def _int_param(
    params: Mapping[str, str], name: str, default: int, errors: dict[str, list[str]], *, maximum: int | None
) -> int:
    raw = params.get(name)
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


def choice_param(
    params: Mapping[str, str], name: str, choices: tuple[str, ...], errors: dict[str, list[str]]
) -> str | None:
    """A query parameter that must be one of ``choices`` (absent or empty: None).

    :param params: the query parameters (the last value of a repeated one).
    :param name: the parameter.
    :param choices: its allowed values.
    :param errors: where a bad value is recorded.
    """
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        errors[name] = [f"The selected {name} is invalid."]
        return None
    return raw


def _date_param(params: Mapping[str, str], name: str, errors: dict[str, list[str]]) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_moment(raw)
    if moment is None:
        errors[name] = [f"The {name.replace('_', ' ')} field must be a valid date."]
    return moment


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters of an ASGI ``scope``, read as Starlette's ``request.query_params``
    does (latin-1, blank values kept, the last of a repeated name wins).

    :param scope: the request's ASGI scope.
    """
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


# -- the answers of the hot read paths: plain functions, so the ASGI layer can serve them without
# FastAPI's per-request machinery (:data:`FAST_GET_ANSWERS`) and the routes below stay their one
# definition. Each takes the state, the calling account and the query parameters, and raises
# ValidationFailed for a bad parameter.


def messages_answer(emulator: Emulator, account: Account, params: Mapping[str, str]) -> bytes:
    """``GET /api/messages``: a page of the caller's messages, filtered by the query."""
    errors: dict[str, list[str]] = {}
    page, per_page = _page_params(params, errors)
    status = choice_param(params, "status", STATUSES, errors)
    direction = choice_param(params, "direction", DIRECTIONS, errors)
    start = end = None
    if not emulator.settings.ignore_date_params:  # else not even validated
        start = _date_param(params, "start_date", errors)
        end = _date_param(params, "end_date", errors)
    if start is not None and end is not None and end < start:
        errors["end_date"] = ["The end date field must be a date after or equal to start date."]
    if errors:
        raise ValidationFailed(errors)
    query = {"status": status, "direction": direction, "start": start, "end": end}
    return emulator.message_page(account, message_page_body, page=page, per_page=per_page, **query)


def conversations_answer(emulator: Emulator, account: Account, params: Mapping[str, str]) -> bytes:
    """``GET /api/conversations``: a page of the caller's conversations."""
    errors: dict[str, list[str]] = {}
    page, per_page = _page_params(params, errors)
    if errors:
        raise ValidationFailed(errors)
    data, meta = emulator.list_conversations(account, page=page, per_page=per_page)
    return encode_json(envelope(data, meta=meta))


def balance_answer(emulator: Emulator, account: Account, params: Mapping[str, str]) -> bytes:
    """``GET /api/balance`` (no parameters).

    :param emulator: the state.
    :param account: the caller.
    :param params: the query parameters (unused).
    """
    return encode_json(envelope(emulator.balance(account)))


#: ``GET`` paths the ASGI layer answers itself, after authentication, limits and faults; the same
#: functions back the FastAPI routes (reached with a trailing slash, which FastAPI redirects).
FAST_GET_ANSWERS: dict[str, Callable[[Emulator, Account, Mapping[str, str]], bytes]] = {
    "/api/messages": messages_answer,
    "/api/conversations": conversations_answer,
    "/api/balance": balance_answer,
}


def _json_answer(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def add_api_routes(api: FastAPI, emulator: Emulator) -> None:
    """Register the ``/api`` routes.

    :param api: the FastAPI application.
    :param emulator: the state they serve.
    """

    @api.post("/api/sms/send")
    async def send_sms(request: Request) -> JSONResponse:
        data = emulator.send(account_of_request(request), await read_json(request))
        return ok(data, message="Message sent successfully")

    @api.get("/api/balance")
    async def balance(request: Request) -> Response:
        return _json_answer(balance_answer(emulator, account_of_request(request), request.query_params))

    @api.get("/api/messages")
    async def messages(request: Request) -> Response:
        return _json_answer(messages_answer(emulator, account_of_request(request), request.query_params))

    @api.get("/api/phone-numbers")
    async def phone_numbers(request: Request) -> JSONResponse:
        return ok(emulator.phone_numbers(account_of_request(request)))

    @api.get("/api/conversations")
    async def conversations(request: Request) -> Response:
        return _json_answer(conversations_answer(emulator, account_of_request(request), request.query_params))

    @api.post("/api/webhooks")
    async def create_webhook(request: Request) -> JSONResponse:
        data = emulator.create_webhook(account_of_request(request), await read_json(request))
        return ok(data, message="Webhook created successfully")

    @api.get("/api/webhooks")
    async def list_webhooks(request: Request) -> JSONResponse:
        return ok(emulator.list_webhooks(account_of_request(request)))

    @api.delete("/api/webhooks/{webhook_id}")
    async def delete_webhook(request: Request, webhook_id: str) -> JSONResponse:
        emulator.delete_webhook(account_of_request(request), webhook_id)
        return MsgspecJSONResponse({"success": True, "message": "Webhook deleted successfully"})
