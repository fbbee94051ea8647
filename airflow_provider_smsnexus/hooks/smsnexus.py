"""Hooks for the SMS Nexus REST API: :class:`SMSNexusHook` (requests) and :class:`SMSNexusAsyncHook` (aiohttp).

Both hooks share one core (connection parsing, URLs, headers, answer interpretation, error mapping, retry
decisions and rate-limit parsing); only the transport differs.

.. seealso:: the "SMSNexusHook" section of the README.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from airflow_provider_smsnexus import DEFAULT_BASE_URL, UI_FIELD_BEHAVIOUR
from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusForbiddenError,
    SMSNexusNotFoundError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusServerError,
    SMSNexusValidationError,
)
from airflow_provider_smsnexus.utils.rate_limit import RateLimiter, RateLimitInfo, parse_rate_limit_headers

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow.sdk import Connection

SEND_PATH = "/api/sms/send"
MAX_PER_PAGE = 100
MAX_PAGES_WITHOUT_NEW_IDS = 5
WEBHOOK_EVENTS = ("message.received", "message.delivered", "message.failed")


# --------------------------------------------------------------------------------------------------
# The shared core: everything but the transport.
# --------------------------------------------------------------------------------------------------


def _mask(secret: str) -> None:
    """Register the token with Airflow's secrets masker, so that no log line can show it."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow 3.1 kept it in the execution-time package
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)


def _extra_bool_or_str(value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return value


@dataclass(frozen=True)
class SMSNexusConnectionConfig:
    """
    Everything a hook needs from an Airflow connection, parsed in one place.

    :param base_url: the API's base URL including ``/api`` (the connection's host).
    :param token: the API token (the connection's password); never shown in ``repr``.
    :param timeout: seconds to wait for the server (connect and read).
    :param max_retries: retries of one request after a transient failure or a 429.
    :param verify: TLS verification: True, False, or a CA bundle path.
    :param proxies: a requests-style proxies mapping.
    :param send_rate_limit: sends allowed per ``rate_limit_period`` until the server announces its limit.
    :param read_rate_limit: other requests allowed per ``rate_limit_period``.
    :param rate_limit_period: the length of the rate-limit window in seconds (60 for SMS Nexus).
    :param retry_backoff: the first backoff delay in seconds; doubles with every retry.
    :param retry_backoff_max: the largest backoff delay in seconds.
    :param max_rate_limit_wait: the longest wait for a rate-limit reset before giving up with a 429 error.
    :param date_from_param: the query parameter that carries the start of a date range.
    :param date_to_param: the query parameter that carries the end of a date range.
    :param explicit_limits: the rate-limit extras the connection sets on purpose; those are never raised to
        the limit the server announces (a worker's share of an account stays its share).
    """

    base_url: str = DEFAULT_BASE_URL
    token: str = field(default="", repr=False)
    timeout: float = 30.0
    max_retries: int = 5
    verify: bool | str = True
    proxies: dict[str, str] | None = None
    send_rate_limit: int = 30
    read_rate_limit: int = 60
    rate_limit_period: float = 60.0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 30.0
    max_rate_limit_wait: float = 120.0
    date_from_param: str = "start_date"
    date_to_param: str = "end_date"
    explicit_limits: frozenset[str] = frozenset()

    @classmethod
    def from_connection(cls, conn: Connection) -> SMSNexusConnectionConfig:
        """Build the configuration from an Airflow connection, checking each extra."""
        extra = conn.extra_dejson or {}
        if conn.password:
            _mask(conn.password)
        host = (conn.host or "").strip()
        if host and "://" not in host:
            host = f"https://{host}"
        base_url = (host or DEFAULT_BASE_URL).rstrip("/")
        try:
            return cls(
                base_url=base_url,
                token=conn.password or "",
                timeout=float(extra.get("timeout", cls.timeout)),
                max_retries=int(extra.get("max_retries", cls.max_retries)),
                verify=_extra_bool_or_str(extra.get("verify", True)),
                proxies=extra.get("proxies") or None,
                send_rate_limit=int(extra.get("send_rate_limit", cls.send_rate_limit)),
                read_rate_limit=int(extra.get("read_rate_limit", cls.read_rate_limit)),
                rate_limit_period=float(extra.get("rate_limit_period", cls.rate_limit_period)),
                retry_backoff=float(extra.get("retry_backoff", cls.retry_backoff)),
                retry_backoff_max=float(extra.get("retry_backoff_max", cls.retry_backoff_max)),
                max_rate_limit_wait=float(extra.get("max_rate_limit_wait", cls.max_rate_limit_wait)),
                date_from_param=str(extra.get("date_from_param", cls.date_from_param)),
                date_to_param=str(extra.get("date_to_param", cls.date_to_param)),
                explicit_limits=frozenset(k for k in ("send_rate_limit", "read_rate_limit") if k in extra),
            )
        except (TypeError, ValueError) as exc:
            raise SMSNexusError(
                f"Connection {conn.conn_id!r} has an invalid extra: {exc}. "
                "timeout, rate_limit_period and retry_backoff* take numbers; max_retries and *_rate_limit "
                "take whole numbers."
            ) from None

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``/api/balance`` (the base URL already ends in ``/api``)."""
        base = self.base_url
        if base.endswith("/api") and path.startswith("/api/"):
            base = base[: -len("/api")]
        return f"{base}{path}"

    def headers(self) -> dict[str, str]:
        """The headers every request sends."""
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": "airflow-provider-smsnexus",
        }

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter for retry number ``attempt`` (0-based)."""
        cap = min(self.retry_backoff_max, self.retry_backoff * (2**attempt))
        return random.uniform(cap / 2, cap)


def rate_class(method: str, path: str) -> str:
    """The server's rate-limit class of a request: ``send`` for sending messages, ``read`` for the rest."""
    return "send" if method == "POST" and path == SEND_PATH else "read"


def _decode_body(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None


def _readable_snippet(text: str, limit: int = 200) -> str:
    """A short, single-line excerpt of a non-JSON body, for error messages."""
    snippet = " ".join(text.split())
    return snippet[:limit] + ("..." if len(snippet) > limit else "")


def interpret_answer(
    method: str, path: str, status: int, text: str, info: RateLimitInfo, secret: str = ""
) -> Any:
    """
    Turn an answer into its JSON body, or raise the error class its status means.

    :param method: the request's HTTP method, for messages.
    :param path: the request's API path, for messages.
    :param status: the HTTP status code.
    :param text: the body as text.
    :param info: the rate-limit headers of the answer.
    :param secret: the API token: a server that echoes it in an error must not put it in ours.
    :return: the decoded JSON body of a 2xx answer.
    """
    if secret and secret in text:
        text = text.replace(secret, "***")
    body = _decode_body(text)
    server_message = body.get("message") if isinstance(body, dict) else None
    if server_message is not None and not isinstance(server_message, str):
        server_message = str(server_message)
    if 200 <= status < 300:
        if not isinstance(body, dict):
            what = "an empty body" if not text else f"a body that is not JSON: {_readable_snippet(text)!r}"
            raise SMSNexusResponseError(f"{method} {path} answered {status} with {what}", status_code=status)
        if body.get("success") is False:
            raise SMSNexusResponseError(
                f"{method} {path} answered {status} but success=false: {server_message or 'no message'}",
                status_code=status,
                server_message=server_message,
            )
        return body

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
        errors = {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
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
            raise SMSNexusResponseError(f"{path} answered a list holding a non-object item: {odd!r}")
    return data


def retry_delay(
    config: SMSNexusConnectionConfig,
    attempt: int,
    *,
    is_send: bool,
    status: int | None = None,
    info: RateLimitInfo | None = None,
    sent: bool = True,
) -> float | None:
    """
    Decide whether a failed attempt is retried, and after how long.

    :param attempt: how many retries were made already (0 for the first failure).
    :param is_send: whether the request sends a message (those are never retried once they may have arrived).
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
    if is_send and (status is not None or sent):
        return None
    if status is None or status >= 500:
        return config.backoff(attempt)
    return None


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


def message_query(
    config: SMSNexusConnectionConfig,
    *,
    status: str | None,
    direction: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The query parameters of ``/api/messages`` for the given filters (page parameters excluded)."""
    params: dict[str, Any] = {}
    if status:
        params["status"] = status
    if direction:
        params["direction"] = direction
    if start is not None:
        params[config.date_from_param] = iso_utc(start)
    if end is not None:
        params[config.date_to_param] = iso_utc(end)
    return params


def _page_params(per_page: int, page: int) -> dict[str, int]:
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise SMSNexusError(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
    if page < 1:
        raise SMSNexusError(f"page must be 1 or more, not {page}")
    return {"page": page, "per_page": per_page}


class IdSet:
    """
    A set of integer ids that stays small for the dense ids of a message history.

    Ids within a growing window are kept as bits (125 kB per million ids); any others fall back to a
    plain set, so correctness never depends on the ids being dense.
    """

    _MAX_SPAN = 64_000_000  # 8 MB of bits at most

    def __init__(self) -> None:
        self._base: int | None = None
        self._bits = bytearray()
        self._other: set[Any] = set()
        self.size = 0

    def add(self, value: Any) -> bool:
        """Add ``value``; return False when it was already there."""
        if isinstance(value, int) and not isinstance(value, bool):
            if self._base is None:
                self._base = max(0, value - self._MAX_SPAN // 2)
            offset = value - self._base
            if 0 <= offset < self._MAX_SPAN:
                byte, bit = divmod(offset, 8)
                if byte >= len(self._bits):
                    self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
                if self._bits[byte] >> bit & 1:
                    return False
                self._bits[byte] |= 1 << bit
                self.size += 1
                return True
        if value in self._other:
            return False
        self._other.add(value)
        self.size += 1
        return True


def _created_at(row: Mapping[str, Any]) -> datetime | None:
    value = row.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class PageWalker:
    """
    The state of one walk through a paginated list: dedup by id, the client-side date window, and the
    decision when to stop.

    Page-number pagination over a live account drifts: a new message pushes older ones onto the next page,
    so a row can come twice (dropped here by id). Rows are never skipped by such drift, since rows are
    only added. When the server is seen to list newest first, the walk stops at the first page that
    reaches past the window's start, even if the server ignored the date parameters.

    :param path: the list's path, for error messages.
    :param start: the window's start (inclusive), or None.
    :param end: the window's end (exclusive), or None.
    """

    def __init__(self, path: str, start: datetime | None = None, end: datetime | None = None):
        self.path = path
        self.start = start
        self.end = end
        self.seen = IdSet()
        self.pages = 0
        self.duplicates = 0
        self.outside_window = 0
        self._newest_first = True
        self._previous: datetime | None = None
        self._reached_start = False
        self._pages_without_new_ids = 0

    def take(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the new rows of one page's answer that lie inside the window."""
        rows = extract_data(body, self.path, list)
        self.pages += 1
        seen_before = self.seen.size
        fresh: list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, dict) or "id" not in row:
                raise SMSNexusResponseError(
                    f"{self.path} page {self.pages} holds a row without an id: {row!r}"
                )
            if isinstance(row["id"], bool) or not isinstance(row["id"], int | str):
                raise SMSNexusResponseError(
                    f"{self.path} page {self.pages} holds a row whose id is not a number: {row['id']!r}"
                )
            if not self.seen.add(row["id"]):
                self.duplicates += 1
                continue
            created = _created_at(row) if (self.start or self.end) else None
            self._track_order(created)
            if (self.start or self.end) and created is None:
                raise SMSNexusResponseError(
                    f"{self.path}: row id {row['id']} has no readable created_at to place it in the window"
                )
            if created is not None and (
                (self.start and created < self.start) or (self.end and created >= self.end)
            ):
                self.outside_window += 1
                if self.start and created < self.start:
                    self._reached_start = True
                continue
            fresh.append(row)
        self._check_progress(bool(rows) and self.seen.size == seen_before)
        return fresh

    def _check_progress(self, nothing_new: bool) -> None:
        # Drift repeats a few rows at a page's head; whole pages of nothing new mean the server ignores
        # the page parameter, and reading on would never end.
        self._pages_without_new_ids = self._pages_without_new_ids + 1 if nothing_new else 0
        if self._pages_without_new_ids >= MAX_PAGES_WITHOUT_NEW_IDS:
            raise SMSNexusResponseError(
                f"{self.path}: {MAX_PAGES_WITHOUT_NEW_IDS} pages in a row up to page {self.pages} held only "
                "rows already read: the server seems to ignore the page parameter"
            )

    def _track_order(self, created: datetime | None) -> None:
        if created is None:
            return
        if self._previous is not None and created > self._previous:
            self._newest_first = False
        self._previous = created

    def is_done(self, body: dict[str, Any], page: int) -> bool:
        """Whether the page just taken was the last one worth reading."""
        if not body.get("data"):
            return True
        if self._reached_start and self._newest_first:
            return True
        meta = body.get("meta")
        last_page = meta.get("last_page") if isinstance(meta, dict) else None
        if isinstance(last_page, int) and not isinstance(last_page, bool):
            return page >= last_page
        return False  # no meta: read on until an empty page


# --------------------------------------------------------------------------------------------------
# The synchronous hook.
# --------------------------------------------------------------------------------------------------


# Errors that no retry can fix: a bad URL or a TLS failure.
_PERMANENT_TRANSPORT_ERRORS = (
    requests.exceptions.SSLError,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)


def _never_left(exc: requests.RequestException) -> bool:
    """Whether a transport error happened before the request could reach the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(reason, NewConnectionError)  # includes NameResolutionError
    return False


class _SMSNexusBaseHook(BaseHook):
    """What the sync and async hooks share: the connection's identity, its form, and a token-free repr."""

    conn_name_attr = "smsnexus_conn_id"
    default_conn_name = "smsnexus_default"
    conn_type = "smsnexus"
    hook_name = "SMS Nexus"

    def __init__(self, smsnexus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smsnexus_conn_id = smsnexus_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(smsnexus_conn_id={self.smsnexus_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the connection form's fields for SMS Nexus."""
        return UI_FIELD_BEHAVIOUR


class SMSNexusHook(_SMSNexusBaseHook):
    """
    Talks to the SMS Nexus REST API.

    One pooled HTTP session per hook; a client-side limiter per rate-limit class (sends and reads) that
    also obeys the server's ``X-RateLimit-*`` headers; retries with capped, jittered exponential backoff
    for reads; and never a second attempt at a send that may have reached the server.

    :param smsnexus_conn_id: the Airflow connection: host is the base URL (``https://www.smsnexus.net/api``
        when empty), password the API token, extras tune timeouts, retries and rate limits.
    """

    def __init__(self, smsnexus_conn_id: str = _SMSNexusBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(smsnexus_conn_id, **kwargs)
        self.stats: dict[str, float] = {"requests": 0, "rate_limited": 0, "retries": 0, "waited_seconds": 0.0}
        self._stats_lock = threading.Lock()

    @cached_property
    def config(self) -> SMSNexusConnectionConfig:
        """The parsed connection."""
        return SMSNexusConnectionConfig.from_connection(self.get_connection(self.smsnexus_conn_id))

    def get_conn(self) -> requests.Session:
        """The pooled HTTP session of this hook."""
        return self.session

    @cached_property
    def session(self) -> requests.Session:
        """One pooled HTTP session, reused by every request of this hook."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(self.config.headers())
        session.verify = self.config.verify
        if self.config.proxies:
            session.proxies.update(self.config.proxies)
        return session

    @cached_property
    def limiters(self) -> dict[str, RateLimiter]:
        """One limiter per rate-limit class: ``send`` and ``read``."""
        config = self.config
        return {
            name: RateLimiter(
                limit,
                config.rate_limit_period,
                max_wait=config.max_rate_limit_wait,
                adopt_announced_limit=f"{name}_rate_limit" not in config.explicit_limits,
            )
            for name, limit in (("send", config.send_rate_limit), ("read", config.read_rate_limit))
        }

    def _count(self, key: str, amount: float = 1) -> None:
        with self._stats_lock:
            self.stats[key] += amount

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> dict[str, Any]:
        """Send one API request with rate limiting and retries; return the decoded JSON body."""
        config = self.config
        is_send = rate_class(method, path) == "send"
        limiter = self.limiters[rate_class(method, path)]
        attempt = 0
        while True:
            self._count("waited_seconds", limiter.acquire())
            self._count("requests")
            try:
                response = self.session.request(
                    method, config.url(path), params=params, json=json_body, timeout=config.timeout
                )
            except _PERMANENT_TRANSPORT_ERRORS as exc:
                raise SMSNexusError(
                    f"{method} {path}: cannot reach {config.base_url} ({type(exc).__name__}); "
                    "check the connection's host and TLS settings"
                ) from None
            except requests.RequestException as exc:
                sent = not _never_left(exc)
                delay = retry_delay(config, attempt, is_send=is_send, sent=sent)
                if delay is None:
                    raise self._transport_error(
                        method, path, exc, is_send=is_send, sent=sent, attempt=attempt
                    ) from None
                self.log.warning(
                    "%s %s failed (%s); retry %d of %d in %.2fs",
                    method,
                    path,
                    type(exc).__name__,
                    attempt + 1,
                    config.max_retries,
                    delay,
                )
            else:
                info = parse_rate_limit_headers(response.headers)
                if response.status_code == 429:
                    self._count("rate_limited")
                    limiter.refused(info)
                else:
                    limiter.update(info)
                if response.status_code < 400:
                    return interpret_answer(
                        method, path, response.status_code, response.text, info, config.token
                    )
                delay = retry_delay(config, attempt, is_send=is_send, status=response.status_code, info=info)
                if delay is None:
                    self._raise_for_final_answer(method, path, response, info, is_send=is_send)
                self.log.warning(
                    "%s %s answered %d; retry %d of %d in %.2fs",
                    method,
                    path,
                    response.status_code,
                    attempt + 1,
                    config.max_retries,
                    delay,
                )
            self._count("retries")
            self._count("waited_seconds", delay)
            time.sleep(delay)
            attempt += 1

    def _raise_for_final_answer(
        self,
        method: str,
        path: str,
        response: requests.Response,
        info: RateLimitInfo,
        *,
        is_send: bool,
    ) -> None:
        if is_send and response.status_code >= 500:
            raise SMSNexusSendOutcomeUnknownError(
                f"{method} {path} answered {response.status_code}: the server may or may not have sent "
                "the message. Look for it in /api/messages before sending again.",
                status_code=response.status_code,
            )
        interpret_answer(method, path, response.status_code, response.text, info, self.config.token)

    def _transport_error(
        self,
        method: str,
        path: str,
        exc: requests.RequestException,
        *,
        is_send: bool,
        sent: bool,
        attempt: int,
    ) -> SMSNexusError:
        # The exception's own text may carry the URL but never the headers, so the token cannot leak.
        what = f"{type(exc).__name__}"
        if is_send and sent:
            return SMSNexusSendOutcomeUnknownError(
                f"{method} {path}: no answer ({what}) after the request was sent: the server may or may "
                "not have sent the message. Look for it in /api/messages before sending again."
            )
        return SMSNexusServerError(
            f"{method} {path}: no answer from {self.config.base_url} after {attempt + 1} attempt(s) ({what})"
        )

    # -- endpoints ---------------------------------------------------------------------------------

    def send_sms(
        self, from_number: str, to: str, message: str, media_url: str | None = None
    ) -> dict[str, Any]:
        """
        Send one SMS, or an MMS when ``media_url`` is given.

        Retried only when the server provably did not process it (a 429, or a connection that could not
        be opened). When the outcome is unknown, raises :class:`SMSNexusSendOutcomeUnknownError`.

        :param from_number: a number of the account, E.164.
        :param to: the recipient, E.164.
        :param message: the text, at most 1600 characters.
        :param media_url: the URL of a media attachment.
        :return: the created message (``id``, ``status``, ``credits_used``, ...).
        """
        payload: dict[str, Any] = {"from": from_number, "to": to, "message": message}
        if media_url:
            payload["media_url"] = media_url
        try:
            body = self._request("POST", SEND_PATH, json_body=payload)
        except SMSNexusSendOutcomeUnknownError as exc:
            exc.from_number, exc.to = from_number, to
            raise
        return extract_data(body, SEND_PATH, dict)

    def get_balance(self) -> dict[str, Any]:
        """The account's credit balance: ``credits``, ``currency``, ``plan``, ``credits_used_today``."""
        return extract_data(self._request("GET", "/api/balance"), "/api/balance", dict)

    def get_messages(
        self,
        page: int = 1,
        per_page: int = 25,
        status: str | None = None,
        direction: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> dict[str, Any]:
        """
        One page of the message list, as ``{"data": [...], "meta": {...}}``.

        :param page: the page number, from 1.
        :param per_page: rows per page, at most 100.
        :param status: only messages in this status (queued, sent, delivered, failed).
        :param direction: only ``outbound`` or ``inbound`` messages.
        :param start_date: the window's start on created_at, sent as the connection's ``date_from_param``.
        :param end_date: the window's end on created_at, sent as the connection's ``date_to_param``.
        """
        params = message_query(
            self.config,
            status=status,
            direction=direction,
            start=as_utc(start_date, "start_date"),
            end=as_utc(end_date, "end_date"),
        )
        body = self._request("GET", "/api/messages", params={**params, **_page_params(per_page, page)})
        return {"data": extract_data(body, "/api/messages", list), "meta": body.get("meta") or {}}

    def _iter_pages(
        self, path: str, params: Mapping[str, Any], per_page: int, walker: PageWalker
    ) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body = self._request("GET", path, params={**params, **_page_params(per_page, page)})
            rows = walker.take(body)
            if rows:
                yield rows
            if walker.is_done(body, page):
                return
            page += 1

    def iter_message_pages(
        self,
        status: str | None = None,
        direction: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        per_page: int = MAX_PER_PAGE,
        walker: PageWalker | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """
        Walk the message list page by page; yield each page's new rows inside [start_date, end_date).

        The window is sent to the server and also applied here, so a server that ignores or renames the
        date parameters still yields exactly the window. No id is yielded twice in one walk, even while
        new messages push older ones onto later pages. Pages left with no new rows are not yielded.

        :param walker: pass a :class:`PageWalker` to read its counters (pages, duplicates) afterwards.
        """
        start, end = as_utc(start_date, "start_date"), as_utc(end_date, "end_date")
        params = message_query(self.config, status=status, direction=direction, start=start, end=end)
        walker = walker or PageWalker("/api/messages", start, end)
        yield from self._iter_pages("/api/messages", params, per_page, walker)

    def iter_messages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every message of :meth:`iter_message_pages` (same arguments), one at a time."""
        for page in self.iter_message_pages(**kwargs):
            yield from page

    def get_phone_numbers(self) -> list[dict[str, Any]]:
        """The account's phone numbers with their capabilities and status."""
        return extract_data(self._request("GET", "/api/phone-numbers"), "/api/phone-numbers", list)

    def iter_conversation_pages(
        self, per_page: int = MAX_PER_PAGE, walker: PageWalker | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Walk the conversation list page by page, never yielding an id twice."""
        yield from self._iter_pages(
            "/api/conversations", {}, per_page, walker or PageWalker("/api/conversations")
        )

    def iter_conversations(self, per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Every conversation, one at a time."""
        for page in self.iter_conversation_pages(per_page=per_page):
            yield from page

    def create_webhook(self, url: str, events: list[str]) -> dict[str, Any]:
        """
        Register a webhook.

        :param url: the HTTPS URL that receives the events.
        :param events: any of ``message.received``, ``message.delivered``, ``message.failed``.
        """
        body = self._request("POST", "/api/webhooks", json_body={"url": url, "events": list(events)})
        return extract_data(body, "/api/webhooks", dict)

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The registered webhooks."""
        return extract_data(self._request("GET", "/api/webhooks"), "/api/webhooks", list)

    def delete_webhook(self, webhook_id: int | str) -> None:
        """Delete a webhook; raises :class:`SMSNexusNotFoundError` when it does not exist."""
        self._request("DELETE", f"/api/webhooks/{webhook_id}")

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection by reading the balance; never raises."""
        try:
            balance = self.get_balance()
        except Exception as exc:
            return False, str(exc)
        return True, f"Connected: {balance.get('credits')} credits on plan {balance.get('plan')!s}"


# --------------------------------------------------------------------------------------------------
# The asynchronous hook, for triggers.
# --------------------------------------------------------------------------------------------------


def _aiohttp_transport_options(config: SMSNexusConnectionConfig) -> dict[str, Any]:
    """The ``verify`` and ``proxies`` extras in aiohttp's terms."""
    options: dict[str, Any] = {}
    if isinstance(config.verify, str):
        import ssl

        options["ssl"] = ssl.create_default_context(cafile=config.verify)
    elif config.verify is False:
        options["ssl"] = False
    scheme = config.base_url.split("://", 1)[0]
    if config.proxies and config.proxies.get(scheme):
        options["proxy"] = config.proxies[scheme]
    return options


class SMSNexusAsyncHook(_SMSNexusBaseHook):
    """
    The read side of the SMS Nexus API for triggers, on aiohttp; never blocks the event loop.

    Shares the connection parsing, headers, answer interpretation, error mapping and retry decisions of
    :class:`SMSNexusHook`.

    :param smsnexus_conn_id: the Airflow connection, as for :class:`SMSNexusHook`.
    """

    hook_name = "SMS Nexus (async)"

    def __init__(self, smsnexus_conn_id: str = _SMSNexusBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(smsnexus_conn_id, **kwargs)
        self._config: SMSNexusConnectionConfig | None = None

    async def get_config(self) -> SMSNexusConnectionConfig:
        """The parsed connection, read without blocking the event loop."""
        if self._config is None:
            conn = await self.aget_connection(self.smsnexus_conn_id)
            self._config = SMSNexusConnectionConfig.from_connection(conn)
        return self._config

    async def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        import aiohttp

        config = await self.get_config()
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        attempt = 0
        async with aiohttp.ClientSession(headers=config.headers(), timeout=timeout) as session:
            while True:
                try:
                    async with session.request(
                        method, config.url(path), params=params, **_aiohttp_transport_options(config)
                    ) as response:
                        text = await response.text()
                        status = response.status
                        info = parse_rate_limit_headers(response.headers)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    delay = retry_delay(config, attempt, is_send=False)
                    if delay is None:
                        raise SMSNexusServerError(
                            f"{method} {path}: no answer from {config.base_url} after {attempt + 1} "
                            f"attempt(s) ({type(exc).__name__})"
                        ) from None
                else:
                    if status < 400:
                        return interpret_answer(method, path, status, text, info, config.token)
                    delay = retry_delay(config, attempt, is_send=False, status=status, info=info)
                    if delay is None:
                        interpret_answer(method, path, status, text, info, config.token)
                self.log.warning("%s %s failed; retry %d in %.2fs", method, path, attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def get_balance(self) -> dict[str, Any]:
        """The account's credit balance (see :meth:`SMSNexusHook.get_balance`)."""
        return extract_data(await self._request("GET", "/api/balance"), "/api/balance", dict)

    async def get_messages(
        self,
        page: int = 1,
        per_page: int = 25,
        status: str | None = None,
        direction: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> dict[str, Any]:
        """One page of the message list (see :meth:`SMSNexusHook.get_messages`)."""
        config = await self.get_config()
        params = message_query(
            config,
            status=status,
            direction=direction,
            start=as_utc(start_date, "start_date"),
            end=as_utc(end_date, "end_date"),
        )
        body = await self._request("GET", "/api/messages", params={**params, **_page_params(per_page, page)})
        return {"data": extract_data(body, "/api/messages", list), "meta": body.get("meta") or {}}
