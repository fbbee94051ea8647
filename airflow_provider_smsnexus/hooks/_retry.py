"""The retry decisions of the SMS Nexus hooks: which failures are retried, after how long, and which
transport errors prove that a request never left this machine."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import requests
from urllib3.exceptions import NewConnectionError

from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

if TYPE_CHECKING:
    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

SEND_PATH = "/api/sms/send"
#: Methods whose repetition changes nothing on the server, so a retry after it may have arrived is safe.
REPEATABLE_METHODS = frozenset({"GET", "DELETE"})


def rate_class(method: str, path: str) -> str:
    """The server's rate-limit class of a request: ``send`` for sending messages, ``read`` for the rest."""
    return "send" if method == "POST" and path == SEND_PATH else "read"


def retry_delay(
    config: SMSNexusConnectionConfig,
    attempt: int,
    *,
    repeatable: bool,
    status: int | None = None,
    info: RateLimitInfo | None = None,
    sent: bool = True,
) -> float | None:
    """
    Decide whether a failed attempt is retried, and after how long.

    :param attempt: how many retries were made already (0 for the first failure).
    :param repeatable: whether repeating the request is harmless (GET, DELETE); a POST creates something (a
        message, a webhook) and is never repeated once it may have arrived.
    :param status: the answer's status, or None when no answer came.
    :param info: the answer's rate-limit headers.
    :param sent: for a failure without an answer: whether the request may have reached the server.
    :return: the seconds to wait before retrying, or None when the failure is final.
    """
    if attempt >= config.max_retries:
        return None
    if status == 429:
        # A refused request was not processed: safe to repeat, sends included.
        wait = (info or RateLimitInfo()).seconds_until_allowed(time.time(), config.backoff(attempt))
        return wait if wait <= config.max_rate_limit_wait else None
    if not repeatable and (status is not None or sent):
        return None
    if status is None or status >= 500:
        return config.backoff(attempt)
    return None


# Errors that no retry can fix: a bad URL or a TLS failure.
PERMANENT_TRANSPORT_ERRORS = (
    requests.exceptions.SSLError,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)


def never_left(exc: requests.RequestException) -> bool:
    """Whether a transport error happened before the request could reach the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(reason, NewConnectionError)  # includes NameResolutionError
    return False
