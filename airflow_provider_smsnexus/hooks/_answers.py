"""How the SMS Nexus hooks read an answer: the JSON body of a success, or the error class its status means.

A server may echo the request's token back (in an error's message, or a proxy's error page). The token is
scrubbed from every text an error carries, in every encoding a server might have written it in (``_scrub``);
a successful answer's data is never rewritten.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusForbiddenError,
    SMSNexusNotFoundError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusServerError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.hooks._scrub import scrub

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo


def decode_body(text: str) -> Any:
    """A body as JSON: None when it is empty or not JSON."""
    if not text:
        return None
    import msgspec  # a C decoder: 4x faster than json on list pages (bench/README.md)

    try:
        return msgspec.json.decode(text)
    except msgspec.MsgspecError:  # what msgspec refuses (NaN, 1e400, ...) json.loads judges, as before
        pass
    except RecursionError:  # absurdly nested JSON
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None


def _readable_snippet(text: str, limit: int = 200) -> str:
    """A short, single-line excerpt of a non-JSON body, for error messages."""
    snippet = " ".join(text.split())
    return snippet[:limit] + ("..." if len(snippet) > limit else "")


def interpret_answer(
    method: str,
    path: str,
    status: int,
    text: str,
    info: RateLimitInfo,
    secret: str = "",
    decode: Callable[[str], Any] | None = None,
) -> Any:
    """
    Turn an answer into its JSON body, or raise the error class its status means.

    :param method: the request's HTTP method, for messages.
    :param path: the request's API path, for messages.
    :param status: the HTTP status code.
    :param text: the body as text.
    :param info: the rate-limit headers of the answer.
    :param secret: the API token: a server that echoes it in an error must not put it in ours.
    :param decode: decodes a 2xx body instead of :func:`decode_body` (a typed decoder that falls back to it).
    :return: the decoded JSON body of a 2xx answer.
    """
    body = (decode or decode_body)(text) if 200 <= status < 300 else decode_body(text)
    server_message = body.get("message") if isinstance(body, dict) else None
    if server_message is not None and not isinstance(server_message, str):
        server_message = str(server_message)
    if 200 <= status < 300 and isinstance(body, dict) and body.get("success") is not False:
        return body  # a success's data as the server sent it: only error texts are scrubbed
    server_message = None if server_message is None else scrub(server_message, secret)
    text = scrub(text, secret)
    if 200 <= status < 300:
        if not isinstance(body, dict):
            what = "an empty body" if not text else f"a body that is not JSON: {_readable_snippet(text)!r}"
            raise SMSNexusResponseError(f"{method} {path} answered {status} with {what}", status_code=status)
        raise SMSNexusResponseError(
            f"{method} {path} answered {status} but success=false: {server_message or 'no message'}",
            status_code=status,
            server_message=server_message,
        )

    detail = server_message or (_readable_snippet(text) if text and body is None else None) or "no message"
    detail = detail.rstrip(". ")
    where = f"{method} {path} answered {status}: {detail}"
    if status == 401:
        raise SMSNexusAuthError(
            f"{where}. The API token is missing or invalid: check the connection's password.",
            status_code=status,
            server_message=server_message,
        )
    if status == 403:
        raise SMSNexusForbiddenError(
            f"{where}. The account is suspended or the resource belongs to another account.",
            status_code=status,
            server_message=server_message,
        )
    if status == 404:
        raise SMSNexusNotFoundError(where, status_code=status, server_message=server_message)
    if status == 422:
        errors = body.get("errors") if isinstance(body, dict) else None
        errors = errors if isinstance(errors, dict) else {}
        errors = {
            scrub(str(k), secret): [scrub(str(m), secret) for m in (v if isinstance(v, list) else [v])]
            for k, v in errors.items()
        }
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        raise SMSNexusValidationError(
            f"{where}" + (f" ({fields})" if fields else ""),
            server_message=server_message,
            errors=errors,
        )
    if status == 429:
        raise SMSNexusRateLimitError(
            f"{where}. The rate limit stayed exhausted after the hook's retries.",
            server_message=server_message,
            reset_at=info.reset_at,
        )
    if status >= 500:
        raise SMSNexusServerError(where, status_code=status, server_message=server_message)
    raise SMSNexusError(where, status_code=status, server_message=server_message)


def extract_data(body: dict[str, Any], path: str, expect: type) -> Any:
    """The ``data`` of a successful answer: an object, or a list of objects, as ``expect`` says."""
    data = body.get("data")
    if not isinstance(data, expect):
        raise SMSNexusResponseError(
            f"{path} answered without a {'list' if expect is list else 'object'} in 'data' "
            f"(got {type(data).__name__})"
        )
    if expect is list:
        odd = next((item for item in data if not isinstance(item, dict)), None)
        if odd is not None or None in data:
            # The item's type, not its value: an error text never repeats what a server sent.
            raise SMSNexusResponseError(
                f"{path} answered a list holding a non-object item (a {type(odd).__name__})"
            )
    return data
