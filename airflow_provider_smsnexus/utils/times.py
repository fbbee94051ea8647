"""Times as the SMS Nexus API writes them: reading ISO 8601 values as aware UTC, and writing them back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError

if TYPE_CHECKING:
    from collections.abc import Mapping


def utcnow() -> datetime:
    """The machine's time, aware UTC: the one clock the client side reads (the server's is in ``_clock``)."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | str | None, name: str) -> datetime | None:
    """Read a datetime or an ISO 8601 string as an aware UTC datetime (naive values are taken as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SMSNexusError(f"{name}={value!r} is not an ISO 8601 date or datetime") from None
    if not isinstance(value, datetime):
        raise SMSNexusError(f"{name} must be a datetime or an ISO 8601 string, not {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso_utc(value: datetime) -> str:
    """Format an aware datetime as the API does: ``2026-03-08T12:00:00Z`` (microseconds kept when set)."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def created_at_of(row: Mapping[str, Any]) -> datetime | None:
    """A row's ``created_at`` as an aware UTC datetime; None when it is missing or not ISO 8601."""
    value = row.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
