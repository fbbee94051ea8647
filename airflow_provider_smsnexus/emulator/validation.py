"""How the emulator judges what clients send: the error types it answers with (422 in Laravel's
shape, or another status), the server's own limits (E.164 pattern, 1,600 characters), Laravel-style
field checks and the reading of dates. These are the server's facts, kept apart from the client's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from datetime import datetime

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_MESSAGE_LENGTH = 1600


class ValidationFailed(Exception):
    """A request that fails validation (HTTP 422); nothing was changed.

    :param errors: field -> messages, Laravel style.
    :param message: top-level message.
    """

    def __init__(self, errors: dict[str, list[str]], message: str = "Validation failed") -> None:
        super().__init__(message)
        self.errors = errors
        self.message = message


class EmulatorHTTPError(Exception):
    """An error answer other than 422.

    :param status_code: HTTP status.
    :param message: the ``message`` of the body.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def required_string(data: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str | None:
    """Laravel's ``required|string``: a missing, null or blank value is 'required'.

    :param data: the decoded body.
    :param name: the field.
    :param errors: where a problem is recorded.
    """
    label = name.replace("_", " ")
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = [f"The {label} field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"The {label} field must be a string."]
        return None
    return value


def optional_url(data: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str | None:
    """Laravel's ``nullable|url`` limited to http(s).

    :param data: the decoded body.
    :param name: the field.
    :param errors: where a problem is recorded.
    """
    value = data.get(name)
    if value is None or value == "":
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        errors[name] = [f"The {name.replace('_', ' ')} field must be a valid URL."]
        return None
    return value


def parse_moment(value: str | float | datetime | None) -> float | None:
    """Epoch seconds from an ISO 8601 string (``Z`` or an offset; naive means UTC; a bare date is
    midnight), a number, or a datetime; None when it cannot be read.

    :param value: the value to read.
    """
    from datetime import datetime, timezone

    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        # An unencoded "+" in a query string arrives as a space: "...T12:00:00 00:00".
        text = re.sub(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", text)
        # Python 3.10's fromisoformat wants exactly 3 or 6 digits of fraction.
        text = re.sub(r"(T\d{2}:\d{2}:\d{2})\.(\d+)", lambda m: f"{m[1]}.{(m[2] + '000000')[:6]}", text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
