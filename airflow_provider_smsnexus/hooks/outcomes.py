"""What one attempt at a request came to, for the SMS Nexus hooks: an :class:`Answer`, or :class:`NoAnswer`
and whether a send may have reached the server.

An error raised before the request can have left this machine is :data:`NOT_SENT` (safe to retry, or to mark
failed); anything after the request may have been written is :data:`UNKNOWN`: never repeated, settled by a
lookup ("Exactly once" in the sending guide). :func:`urllib3_failure` and :func:`aiohttp_failure` classify the
two transports' errors alike; :func:`send_outcome` reads the hooks' own errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The request provably never left this machine, or the server refused it unprocessed (429, 4xx).
NOT_SENT = "not_sent"
#: The request may have reached the server and been acted on: never repeat it, look the result up.
UNKNOWN = "unknown"
#: Methods whose repetition changes nothing on the server, so a retry after it may have arrived is safe.
REPEATABLE_METHODS = frozenset({"GET", "DELETE"})


@dataclass(frozen=True)
class Answer:
    """
    An answer arrived.

    :param status: the HTTP status.
    :param headers: the answer's headers (a case-insensitive mapping).
    :param text: the body as text.
    """

    status: int
    headers: Mapping[str, str]
    text: str


@dataclass(frozen=True)
class NoAnswer:
    """
    No answer arrived.

    :param kind: the transport error's class name (its text is not kept: it may hold the URL).
    :param outcome: :data:`NOT_SENT` or :data:`UNKNOWN`.
    :param permanent: no retry can fix it (an invalid URL, a TLS failure while connecting).
    """

    kind: str
    outcome: str
    permanent: bool = False


# Functions of urllib3 that run only while a connection is being opened (DNS, TCP, proxy tunnel, TLS
# handshake): an error whose traceback passes through one was raised before a byte of the request was sent.
_URLLIB3_CONNECTING = frozenset({"_new_conn", "connect", "_validate_conn"})


def _chain(exc: BaseException) -> list[BaseException]:
    """The error and every error it wraps (causes, contexts, urllib3 reasons, exception arguments)."""
    seen: set[int] = set()
    found: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return found


def _raised_while_connecting(exc: BaseException) -> bool:
    for error in _chain(exc):
        tb = error.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            if module.startswith("urllib3.") and tb.tb_frame.f_code.co_name in _URLLIB3_CONNECTING:
                return True
            tb = tb.tb_next
    return False


def urllib3_failure(exc: BaseException) -> NoAnswer:
    """
    Classify a transport error of ``urllib3`` (the sync hook's pool sends with ``retries=False``, so urllib3
    raises the error itself): :data:`NOT_SENT` only when it provably happened before the request left -- a DNS
    failure, a refused connection, a connect timeout, a TLS handshake or certificate failure while connecting,
    an invalid URL; everything else (read timeout, dropped connection, a TLS error after the handshake, a
    broken body) is :data:`UNKNOWN`.
    """
    from urllib3.exceptions import (
        ConnectTimeoutError,
        LocationValueError,
        NewConnectionError,
        SSLError,
        URLSchemeUnknown,
    )

    kind = type(exc).__name__
    if isinstance(exc, (LocationValueError, URLSchemeUnknown)):  # LocationParseError too
        return NoAnswer(kind, NOT_SENT, permanent=True)
    connecting = _raised_while_connecting(exc)
    if isinstance(exc, SSLError):
        # A certificate or handshake failure while connecting is a setting to fix; any later TLS error
        # came after the request may have been written.
        return NoAnswer(kind, NOT_SENT, permanent=True) if connecting else NoAnswer(kind, UNKNOWN)
    if connecting or any(isinstance(e, (NewConnectionError, ConnectTimeoutError)) for e in _chain(exc)):
        return NoAnswer(kind, NOT_SENT)  # NewConnectionError includes NameResolutionError
    return NoAnswer(kind, UNKNOWN)


def aiohttp_failure(exc: BaseException) -> NoAnswer:
    """Classify a transport error of ``aiohttp`` as :func:`urllib3_failure` does."""
    import aiohttp

    kind = type(exc).__name__
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError)):
        return NoAnswer(kind, NOT_SENT, permanent=True)
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", ())  # aiohttp >= 3.10
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.InvalidURL)) or (
        connect_timeout and isinstance(exc, connect_timeout)
    ):
        return NoAnswer(kind, NOT_SENT, permanent=isinstance(exc, aiohttp.InvalidURL))
    return NoAnswer(kind, UNKNOWN)


def send_outcome(error: BaseException) -> str:
    """
    What an error raised by :meth:`SMSNexusHook.send_sms` says about the message.

    :return: :data:`NOT_SENT` for a refusal (401, 403, 404, 422, 429, other 4xx) or a request that provably
        never left; :data:`UNKNOWN` for :class:`SMSNexusSendOutcomeUnknownError` (5xx, no answer after the
        request may have left), for :class:`SMSNexusResponseError` (a 2xx whose body cannot be read: the
        server probably acted) and for any error that is not the hook's own.
    """
    if isinstance(error, (SMSNexusSendOutcomeUnknownError, SMSNexusResponseError)):
        return UNKNOWN
    return NOT_SENT if isinstance(error, SMSNexusError) else UNKNOWN
