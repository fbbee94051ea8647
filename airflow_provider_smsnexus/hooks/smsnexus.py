"""Hooks for the SMS Nexus REST API: :class:`SMSNexusHook` (requests) and :class:`SMSNexusAsyncHook` (aiohttp).

Both hooks share one core, in the private modules beside this one: the connection configuration
(``_config``), answer interpretation and error mapping (``_answers``), retry decisions (``_retry``), pagination
(``_pagination``) and times (``_times``); only the transport differs.

.. seealso:: the "SMSNexusHook" section of the README.
"""

from __future__ import annotations

import asyncio
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter

from airflow_provider_smsnexus import UI_FIELD_BEHAVIOUR
from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusServerError,
)
from airflow_provider_smsnexus.hooks._answers import extract_data, interpret_answer
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks._pagination import (
    MAX_PER_PAGE,
    IdSet,
    PageWalker,
    message_query,
    page_params,
)
from airflow_provider_smsnexus.hooks._retry import (
    PERMANENT_TRANSPORT_ERRORS,
    REPEATABLE_METHODS,
    SEND_PATH,
    never_left,
    rate_class,
    retry_delay,
)
from airflow_provider_smsnexus.hooks._times import as_utc, iso_utc
from airflow_provider_smsnexus.utils.rate_limit import RateLimiter, parse_rate_limit_headers

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from datetime import datetime

    from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

__all__ = [
    "MAX_PER_PAGE",
    "WEBHOOK_EVENTS",
    "IdSet",
    "PageWalker",
    "SMSNexusAsyncHook",
    "SMSNexusConnectionConfig",
    "SMSNexusHook",
    "as_utc",
    "iso_utc",
]

WEBHOOK_EVENTS = ("message.received", "message.delivered", "message.failed")


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
        repeatable = method in REPEATABLE_METHODS
        limiter = self.limiters[rate_class(method, path)]
        attempt = 0
        while True:
            self._count("waited_seconds", limiter.acquire())
            self._count("requests")
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's.
                response = self.session.request(
                    method,
                    config.url(path),
                    params=params,
                    json=json_body,
                    timeout=config.timeout,
                    verify=config.verify,
                )
            except PERMANENT_TRANSPORT_ERRORS as exc:
                raise SMSNexusError(
                    f"{method} {path}: cannot reach {config.base_url} ({type(exc).__name__}); "
                    "check the connection's host and TLS settings"
                ) from None
            except requests.RequestException as exc:
                sent = not never_left(exc)
                delay = retry_delay(config, attempt, repeatable=repeatable, sent=sent)
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
                delay = retry_delay(
                    config, attempt, repeatable=repeatable, status=response.status_code, info=info
                )
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
        body = self._request("GET", "/api/messages", params={**params, **page_params(per_page, page)})
        return {"data": extract_data(body, "/api/messages", list), "meta": body.get("meta") or {}}

    def _iter_pages(
        self, path: str, params: Mapping[str, Any], per_page: int, walker: PageWalker
    ) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body = self._request("GET", path, params={**params, **page_params(per_page, page)})
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
                    delay = retry_delay(config, attempt, repeatable=True)
                    if delay is None:
                        raise SMSNexusServerError(
                            f"{method} {path}: no answer from {config.base_url} after {attempt + 1} "
                            f"attempt(s) ({type(exc).__name__})"
                        ) from None
                else:
                    if status < 400:
                        return interpret_answer(method, path, status, text, info, config.token)
                    delay = retry_delay(config, attempt, repeatable=True, status=status, info=info)
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
        body = await self._request("GET", "/api/messages", params={**params, **page_params(per_page, page)})
        return {"data": extract_data(body, "/api/messages", list), "meta": body.get("meta") or {}}
