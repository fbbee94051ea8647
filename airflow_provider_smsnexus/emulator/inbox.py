"""The emulator's inbox page at ``/`` (loopback clients only, as the inspection API): the account, its conversations as
phone-style threads, replying as the customer, final statuses on demand, faults and rate limits; and the
two inspection routes it needs beyond the existing ones (its state in one answer, a message's status)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations at run time
from fastapi.responses import HTMLResponse, JSONResponse

from airflow_provider_smsnexus.emulator.api_routes import ok, read_json
from airflow_provider_smsnexus.emulator.store import DELIVERED, FAILED, INBOUND
from airflow_provider_smsnexus.emulator.validation import EmulatorHTTPError, ValidationFailed

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.state import Emulator

#: The newest messages the page shows (threads are built from them).
DEFAULT_LIMIT = 300
FINAL = {"delivered": DELIVERED, "failed": FAILED}


def page_html() -> str:
    """The page: plain HTML and a little JavaScript, shipped with the package."""
    return (
        resources.files("airflow_provider_smsnexus.emulator").joinpath("static/inbox.html").read_text("utf-8")
    )


def threads(account: Account, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The newest ``limit`` messages as conversations (account number, contact), newest thread first."""
    store = account.store
    total = len(store)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in range(max(0, total - limit), total):
        message = store.message_dict(row)
        inbound = message["direction"] == "inbound"
        key = (message["to"], message["from"]) if inbound else (message["from"], message["to"])
        grouped.setdefault(key, []).append(message)
    ordered = sorted(grouped.items(), key=lambda item: item[1][-1]["id"], reverse=True)
    return [{"number": number, "contact": contact, "messages": rows} for (number, contact), rows in ordered]


def set_final_status(emulator: Emulator, account: Account, message_id: int, status: Any) -> dict[str, Any]:
    """Give an outbound message ``delivered`` or ``failed`` now, with its webhook, as a carrier would."""
    if status not in FINAL:
        raise ValidationFailed({"status": ["The status must be delivered or failed."]})
    store = account.store
    row = store.row_of(message_id)
    if row is None:
        raise EmulatorHTTPError(404, f"Message {message_id} not found")
    if store.direction[row] == INBOUND:
        raise ValidationFailed({"status": ["An inbound message has no delivery status."]})
    emulator.lifecycle.settle(account, row, FINAL[status])
    return store.message_dict(row)


def add_inbox_routes(api: FastAPI, emulator: Emulator) -> None:
    """Register ``/`` (the page) and the routes only it needs.

    :param api: the FastAPI application.
    :param emulator: the state they serve.
    """

    @api.get("/")
    async def inbox_page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @api.get("/_emulator/inbox/{account_id}")
    async def inbox_state(account_id: str) -> JSONResponse:
        account = emulator.account_at(account_id)
        return ok(
            {
                "account": {**account.summary(), "balance": emulator.balance(account)},
                "threads": threads(account),
                "config": emulator.settings.public_dict(),
                "stats": emulator.stats(),
            }
        )

    @api.post("/_emulator/accounts/{account_id}/messages/{message_id}/status")
    async def message_status(account_id: str, message_id: str, request: Request) -> JSONResponse:
        if not message_id.isdigit():
            raise EmulatorHTTPError(404, f"Message {message_id} not found")
        body = await read_json(request)
        status = body.get("status") if isinstance(body, dict) else None
        return ok(set_final_status(emulator, emulator.account_at(account_id), int(message_id), status))
