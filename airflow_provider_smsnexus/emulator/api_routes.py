"""The routes of the SMS Nexus API itself (``/api/...``) and the request-reading helpers they share
with the inspection API: JSON bodies, paging, choice and date parameters, the success envelope.
Authentication, limits and faults happen before a route runs (see :mod:`.app`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations at run time
from fastapi.responses import JSONResponse

from airflow_provider_smsnexus.emulator.store import DIRECTIONS, STATUSES
from airflow_provider_smsnexus.emulator.validation import ValidationFailed, parse_moment

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    """The success envelope of the reference: ``success``, ``message`` (optional), ``data``, ``meta``.

    :param data: the answer's data.
    :param message: a human-readable message.
    :param meta: pagination meta of a list.
    """
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


def choice_param(
    request: Request, name: str, choices: tuple[str, ...], errors: dict[str, list[str]]
) -> str | None:
    """A query parameter that must be one of ``choices`` (absent or empty: None).

    :param request: the request.
    :param name: the parameter.
    :param choices: its allowed values.
    :param errors: where a bad value is recorded.
    """
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
    async def balance(request: Request) -> JSONResponse:
        return ok(emulator.balance(account_of_request(request)))

    @api.get("/api/messages")
    async def messages(request: Request) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        page, per_page = _page_params(request, errors)
        status = choice_param(request, "status", STATUSES, errors)
        direction = choice_param(request, "direction", DIRECTIONS, errors)
        start = end = None
        if not emulator.settings.ignore_date_params:  # else not even validated
            start = _date_param(request, "start_date", errors)
            end = _date_param(request, "end_date", errors)
        if start is not None and end is not None and end < start:
            errors["end_date"] = ["The end date field must be a date after or equal to start date."]
        if errors:
            raise ValidationFailed(errors)
        data, meta = emulator.list_messages(
            account_of_request(request),
            page=page,
            per_page=per_page,
            status=status,
            direction=direction,
            start=start,
            end=end,
        )
        return ok(data, meta=meta)

    @api.get("/api/phone-numbers")
    async def phone_numbers(request: Request) -> JSONResponse:
        return ok(emulator.phone_numbers(account_of_request(request)))

    @api.get("/api/conversations")
    async def conversations(request: Request) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        page, per_page = _page_params(request, errors)
        if errors:
            raise ValidationFailed(errors)
        data, meta = emulator.list_conversations(account_of_request(request), page=page, per_page=per_page)
        return ok(data, meta=meta)

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
        return JSONResponse({"success": True, "message": "Webhook deleted successfully"})
