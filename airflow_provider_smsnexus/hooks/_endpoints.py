"""The message-list endpoint as both hooks call it: one page's query, and the page's answer shape.

One definition for :meth:`SMSNexusHook.get_messages` and :meth:`SMSNexusAsyncHook.get_messages`, so the
two hooks cannot drift apart on the window's parameter names, its UTC handling or ``per_page``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.hooks._answers import extract_data
from airflow_provider_smsnexus.hooks.pagination import message_query, page_params
from airflow_provider_smsnexus.utils.times import as_utc

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

MESSAGES_PATH = "/api/messages"


def message_page_query(
    config: SMSNexusConnectionConfig,
    *,
    page: int,
    per_page: int,
    status: str | None,
    direction: str | None,
    start_date: datetime | str | None,
    end_date: datetime | str | None,
) -> dict[str, Any]:
    """The query of one page: filters, the window in the connection's parameter names, and paging."""
    start, end = as_utc(start_date, "start_date"), as_utc(end_date, "end_date")
    query = message_query(config, status=status, direction=direction, start=start, end=end)
    return {**query, **page_params(per_page, page)}


def message_page(body: dict[str, Any]) -> dict[str, Any]:
    """One page's answer as ``{"data": [...], "meta": {...}}``."""
    return {"data": extract_data(body, MESSAGES_PATH, list), "meta": body.get("meta") or {}}
