"""The inspection API (``/_emulator/...``, loopback clients only): reset, settings, counters,
accounts, the record of every message, inbound texts, seeding, the lifecycle and webhook deliveries.
It is how tests read the emulator's own record and change its behaviour at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations at run time
from fastapi.responses import JSONResponse  # noqa: TC002

from airflow_provider_smsnexus.emulator.api_routes import choice_param, ok, read_json
from airflow_provider_smsnexus.emulator.store import DIRECTIONS, ORIGINS
from airflow_provider_smsnexus.emulator.validation import ValidationFailed, parse_moment

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_provider_smsnexus.emulator.state import Emulator


def add_inspection_routes(api: FastAPI, emulator: Emulator) -> None:
    """Register the ``/_emulator`` routes (the ASGI layer keeps them to loopback clients).

    :param api: the FastAPI application.
    :param emulator: the state they serve.
    """
    _add_run_routes(api, emulator)
    _add_account_routes(api, emulator)


def _add_run_routes(api: FastAPI, emulator: Emulator) -> None:
    """The routes about the whole run: health, reset, settings, counters, lifecycle, webhook deliveries."""

    @api.get("/_emulator/health")
    async def health() -> JSONResponse:
        return ok({"status": "ok", "accounts": len(emulator.accounts), "run": emulator.run_id})

    @api.post("/_emulator/reset")
    async def reset() -> JSONResponse:
        emulator.reset()
        return ok({"accounts": [account.id for account in emulator.accounts.values()]})

    @api.get("/_emulator/config")
    async def get_config() -> JSONResponse:
        return ok(emulator.settings.public_dict())

    @api.post("/_emulator/config")
    async def set_config(request: Request) -> JSONResponse:
        body = await read_json(request)
        return ok(emulator.configure(body if isinstance(body, dict) else {}))

    @api.get("/_emulator/stats")
    async def stats() -> JSONResponse:
        return ok(emulator.stats())

    @api.post("/_emulator/lifecycle/advance")
    async def advance() -> JSONResponse:
        return ok(emulator.advance_lifecycle())

    @api.get("/_emulator/webhook-deliveries")
    async def deliveries() -> JSONResponse:
        return ok(emulator.dispatcher.deliveries())


def _add_account_routes(api: FastAPI, emulator: Emulator) -> None:
    """The routes of the accounts: list, add, read and change them, their messages, inbound texts, seeding."""

    @api.get("/_emulator/accounts")
    async def accounts() -> JSONResponse:
        return ok([account.summary() for account in emulator.accounts.values()])

    @api.post("/_emulator/accounts")
    async def add_account(request: Request) -> JSONResponse:
        body = await read_json(request)
        body = body if isinstance(body, dict) else {}
        account = emulator.add_account(
            body.get("token"),
            credits=body.get("credits"),
            plan=body.get("plan"),
            numbers=body.get("numbers"),
            suspended=bool(body.get("suspended", False)),
        )
        return ok(account.summary())

    @api.get("/_emulator/accounts/{account_id}")
    async def get_account(account_id: str) -> JSONResponse:
        return ok(emulator.account_at(account_id).summary())

    @api.patch("/_emulator/accounts/{account_id}")
    async def update_account(account_id: str, request: Request) -> JSONResponse:
        body = await read_json(request)
        account = emulator.update_account(
            emulator.account_at(account_id).id, body if isinstance(body, dict) else {}
        )
        return ok(account.summary())

    @api.get("/_emulator/accounts/{account_id}/messages")
    async def inspect_messages(account_id: str, request: Request) -> JSONResponse:
        account = emulator.account_at(account_id)
        errors: dict[str, list[str]] = {}
        origins = request.query_params.getlist("origin") or None
        if origins and any(origin not in ORIGINS for origin in origins):
            errors["origin"] = ["The selected origin is invalid."]
        direction = choice_param(request.query_params, "direction", DIRECTIONS, errors)
        if errors:
            raise ValidationFailed(errors)
        return ok(emulator.inspect_messages(account, origins=origins, direction=direction))

    @api.post("/_emulator/accounts/{account_id}/inbound")
    async def inbound(account_id: str, request: Request) -> JSONResponse:
        body = await read_json(request)
        body = body if isinstance(body, dict) else {}
        message = emulator.receive(
            emulator.account_at(account_id), body.get("from"), body.get("to"), body.get("body")
        )
        return ok(message)

    @api.post("/_emulator/accounts/{account_id}/seed")
    async def seed(account_id: str, request: Request) -> JSONResponse:
        body = await read_json(request)
        body = body if isinstance(body, dict) else {}
        count, start, end = _seed_request(body)
        return ok(
            emulator.seed(
                emulator.account_at(account_id).id,
                count,
                random_seed=int(body.get("random_seed") or 0),
                start=start,
                end=end,
            )
        )


def _seed_request(body: dict[str, Any]) -> tuple[int, float | None, float | None]:
    """The count and the ``start`` and ``end`` bounds of a seeding request; a 422 naming each bad field.

    :param body: the decoded JSON body.
    """
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
    assert isinstance(count, int)
    return count, bounds["start"], bounds["end"]
