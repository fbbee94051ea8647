"""Hooks for the SMS Nexus REST API: :class:`SMSNexusHook` (urllib3) and :class:`SMSNexusAsyncHook` (aiohttp).

Both hooks share one core, in the modules beside this one: the connection configuration (``_config``),
answer interpretation and error mapping (``_answers``), retry decisions (``_retry``), the page walker
(:mod:`.pagination`, with the message list's query in ``_endpoints``) and the walk both hooks drive, read ahead
on request (``_read_ahead``); only the transport differs (``_transport``).

.. seealso:: :doc:`/connection`, the connection and the hook.
"""

from __future__ import annotations

import threading
from functools import cached_property, partial
from itertools import chain
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.exceptions import SMSNexusSendOutcomeUnknownError
from airflow_provider_smsnexus.hooks._answers import extract_data
from airflow_provider_smsnexus.hooks._budget import check_priority
from airflow_provider_smsnexus.hooks._clock import ServerClock
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig, aget_connection
from airflow_provider_smsnexus.hooks._endpoints import message_page, message_page_query
from airflow_provider_smsnexus.hooks._read_ahead import aiter_pages, iter_pages
from airflow_provider_smsnexus.hooks._retry import (
    SEND_PATH,
    RetryDriver,
    blocking_steps,
    new_stats,
    run_async,
    run_attempts,
)
from airflow_provider_smsnexus.hooks._transport import (
    aiohttp_options,
    aiohttp_send,
    aiohttp_session,
    json_bytes,
    request_url,
    requests_session,
    urllib3_pool,
    urllib3_send,
)
from airflow_provider_smsnexus.hooks.connection_form import hook_ui_field_behaviour
from airflow_provider_smsnexus.hooks.pagination import (
    MAX_PER_PAGE,
    PageWalk,
    PageWalker,
    message_query,
    message_walker,
    page_params,
)
from airflow_provider_smsnexus.utils.rate_budget import INTERACTIVE
from airflow_provider_smsnexus.utils.times import as_utc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Hashable, Iterator, Mapping
    from datetime import datetime

    import requests
    import urllib3

    from airflow_provider_smsnexus.utils.rate_limit import RateLimiter

__all__ = ["WEBHOOK_EVENTS", "SMSNexusAsyncHook", "SMSNexusHook"]

WEBHOOK_EVENTS = ("message.received", "message.delivered", "message.failed")


class _SMSNexusBaseHook(BaseHook):
    """What the sync and async hooks share: the connection's identity and priority, its form, a token-free repr."""

    conn_name_attr = "smsnexus_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "smsnexus"
    hook_name = "SMS Nexus"

    def __init__(
        self, smsnexus_conn_id: str = default_conn_name, *, priority: str = INTERACTIVE, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.smsnexus_conn_id = smsnexus_conn_id
        #: ``interactive`` or ``bulk``: which calls a shared rate budget serves first (see the connection's
        #: ``rate_budget``).
        self.priority = check_priority(priority)
        #: Requests sent, 429s met, retries made and seconds waited, counted by the retry driver.
        self.stats: dict[str, float] = new_stats()
        self._stats_lock = threading.Lock()

    def _new_driver(self, config: SMSNexusConnectionConfig, server_clock: ServerClock) -> RetryDriver:
        """The retry driver of this hook's requests (one per hook, shared by its threads)."""
        return RetryDriver(
            config,
            stats=self.stats,
            stats_lock=self._stats_lock,
            server_clock=server_clock,
            log=self.log,
            priority=self.priority,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(smsnexus_conn_id={self.smsnexus_conn_id!r})"

    def iter_message_pages(
        self,
        status: str | None = None,
        direction: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        per_page: int = MAX_PER_PAGE,
        *,
        read_id: Callable[[Any], Hashable] | None = None,
        columns: bool = False,
        read_ahead: bool = False,
    ) -> PageWalk:
        """
        Walk the message list page by page; yield each page's new rows inside [start_date, end_date).

        The window is sent to the server and also applied here, so a server that ignores or renames the
        date parameters still yields exactly the window. ``status`` is applied here only (a message that
        changes status while the list is paged would move the rows of a server-filtered list under the
        walk). No id is yielded twice in one walk, even while new messages push older ones onto later
        pages, and the walk stops before the last page only when the rows read prove newest-first order.
        Pages left with no new rows are not yielded. Iterate the walk with ``for`` on :class:`SMSNexusHook`,
        ``async for`` on :class:`SMSNexusAsyncHook` (which never reads ahead).

        :param read_id: turns a row's ``id`` into the value it is deduplicated by (see :class:`PageWalker`).
        :param columns: a page may come as
            :class:`~airflow_provider_smsnexus.hooks.message_columns.MessageColumns` instead of a list of
            dicts: on :class:`SMSNexusHook`, every page whose values are all of their documented types (no
            dict per row: an export's path). Default False: lists of dicts.
        :param read_ahead: the caller reads every page: page n+1 is fetched while the caller works on page n.
            Default False: page n+1 is fetched when it is asked for (closing the walk early drops a page
            fetched ahead and ends its thread).
        :return: the walk: iterate it for the pages, then read its :attr:`~PageWalk.stats`.
        """
        start, end = as_utc(start_date, "start_date"), as_utc(end_date, "end_date")
        walker = message_walker(
            status, direction, start, end, read_id=read_id, columns=columns, read_ahead=read_ahead
        )
        # Status is checked by the walker only: a server-filtered list would shrink under the walk.
        query = {"direction": direction, "start": start, "end": end}
        return PageWalk(walker, self._message_pages(walker, query, per_page))

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the connection form's fields for SMS Nexus (see :mod:`.connection_form`)."""
        return hook_ui_field_behaviour()


class SMSNexusHook(_SMSNexusBaseHook):
    """
    Talks to the SMS Nexus REST API.

    One urllib3 connection pool per hook (:attr:`pool`); a client-side limiter per rate-limit class (sends
    and reads) that obeys the server's ``X-RateLimit-*`` headers and adapts its pace to the 429s it meets;
    429s retried for as long as the server's resets say (up to ``max_rate_limit_wait``); reads retried with
    capped, jittered exponential backoff; and never a second attempt at a send that may have reached the
    server. The server's clock offset is measured from every answer (:attr:`server_clock`). Page walks fetch
    the next page while the caller works on the current one.

    :param smsnexus_conn_id: the Airflow connection: host is the base URL (``https://www.smsnexus.net/api``
        when empty), password the API token, extras tune timeouts, retries and rate limits.
    :param priority: ``interactive`` (the default: someone waits on these calls) or ``bulk`` (exports and
        campaign sends). With a shared rate budget (the ``rate_budget`` extra), interactive calls are served
        first and wait at most one rate-limit window; bulk calls share the rest. See :doc:`/guides/budget`.
    """

    def __init__(
        self,
        smsnexus_conn_id: str = _SMSNexusBaseHook.default_conn_name,
        *,
        priority: str = INTERACTIVE,
        **kwargs: Any,
    ) -> None:
        super().__init__(smsnexus_conn_id, priority=priority, **kwargs)
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()

    @cached_property
    def config(self) -> SMSNexusConnectionConfig:
        """The parsed connection."""
        return SMSNexusConnectionConfig.from_connection(self.get_connection(self.smsnexus_conn_id))

    def get_conn(self) -> requests.Session:
        """:attr:`session`, for ad-hoc calls."""
        return self.session

    @cached_property
    def session(self) -> requests.Session:
        """A ``requests`` session with the connection's headers, ``verify`` and ``proxies``, built on first use,
        for calls the hook has no method for; the hook's own requests go through :attr:`pool`."""
        return requests_session(self.config)

    @property
    def pool(self) -> urllib3.PoolManager:
        """
        The connection pool every request of this hook goes through (a ``urllib3.PoolManager``, or a
        ``ProxyManager`` when a proxy applies), built once on first use, safely from any thread. The proxy and
        CA-bundle variables of the environment are read then: see the connection's ``verify`` and ``proxies``.
        """
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = urllib3_pool(self.config)
        return self._pool

    @cached_property
    def _driver(self) -> RetryDriver:
        return self._new_driver(
            self.config, ServerClock(default_uncertainty=self.config.server_clock_uncertainty)
        )

    @property
    def limiters(self) -> dict[str, RateLimiter]:
        """One limiter per rate-limit class: ``send`` and ``read``, shared by every thread using this hook (with a
        shared ``rate_budget``, they pace the hook only while the budget's store cannot be reached)."""
        return self._driver.limiters

    def sends_per_second(self) -> float:
        """The pace this hook sends at now (its send limiter's, adapted to the server's answers), per second."""
        limiter = self.limiters["send"]
        return limiter.pace / limiter.period

    @property
    def server_clock(self) -> ServerClock:
        """
        The server's clock as measured from the ``Date`` header of every answer of this hook.

        ``server_clock.offset`` (server minus local, seconds), ``.uncertainty`` (half-width: the true offset is
        within ``offset ± uncertainty``), ``.samples``, and ``.to_server(local_datetime)`` returning
        ``(server_datetime, uncertainty)``. Before any answer: offset 0 and the connection's
        ``server_clock_uncertainty`` extra (60 s by default).
        """
        return self._driver.server_clock

    def _attempts(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        announce: bool = False,
        stop: threading.Event | None = None,
        decode: Callable[[str], Any] | None = None,
    ) -> Generator[None, None, dict[str, Any]]:
        """One API request through the retry driver, as a generator (:func:`blocking_steps`: it yields right
        before each attempt leaves when ``announce``) that returns the decoded JSON body."""
        pool, url = self.pool, request_url(self.config, path, params)
        body = None if json_body is None else json_bytes(json_body)  # once, for every attempt
        # A partial, not a lambda: the attempt runs in the transport, with no frame of this module above it.
        return blocking_steps(
            self._driver.steps(method, path, announce=announce, decode=decode),
            partial(urllib3_send, pool, method, url, body),
            stop=stop,
        )

    def _request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """Send one API request through the retry driver; return the decoded JSON body. ``options``:
        ``params``, ``json_body``, ``stop`` and ``decode`` of :meth:`_attempts`."""
        return run_attempts(self._attempts(method, path, **options))

    # -- endpoints ---------------------------------------------------------------------------------

    def send_sms(
        self,
        from_number: str,
        to: str,
        message: str,
        media_url: str | None = None,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """
        Send one SMS, or an MMS when ``media_url`` is given.

        Retried only when the server provably did not process it: a 429 (for as long as the server's reset
        times say, up to ``max_rate_limit_wait`` seconds of waiting), or a connection that could not be
        opened. When the outcome is unknown, raises :class:`SMSNexusSendOutcomeUnknownError`;
        :func:`~airflow_provider_smsnexus.hooks.outcomes.send_outcome` tells for any error raised here whether the message may have been sent.

        :param from_number: a number of the account, E.164.
        :param to: the recipient, E.164.
        :param message: the text, at most 1600 characters.
        :param media_url: the URL of a media attachment.
        :param before_send: called with no arguments right before each attempt's request leaves: after the
            limiter's wait and after any 429 backoff. A caller writes its durable "pending" mark here; the
            time it reads inside the callback is a lower bound of the moment the request left (convert it
            with :attr:`server_clock` for the server's ``created_at``). If it raises, nothing is sent and
            its exception propagates unchanged.
        :return: the created message (``id``, ``status``, ``credits_used``, ...).
        """
        return run_attempts(self.send_sms_attempts(from_number, to, message, media_url), before_send)

    def send_sms_attempts(
        self, from_number: str, to: str, message: str, media_url: str | None = None
    ) -> Generator[None, None, dict[str, Any]]:
        """
        :meth:`send_sms` as a generator its caller drives, so that the caller's mark runs in its own frame:
        each ``next()`` returns right before an attempt's request leaves (after the limiter's wait and any 429
        backoff); the caller writes its mark, then calls ``next()`` again to send, or throws its exception in
        (``attempts.throw(exc)``: nothing is sent, the request's place in the rate budget is given back, and
        the exception comes back out). The created message is the generator's return value
        (``StopIteration.value``); the errors are :meth:`send_sms`'s.
        """
        payload: dict[str, Any] = {"from": from_number, "to": to, "message": message}
        if media_url:
            payload["media_url"] = media_url
        try:
            body = yield from self._attempts("POST", SEND_PATH, json_body=payload, announce=True)
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
        filters = {"status": status, "direction": direction, "start_date": start_date, "end_date": end_date}
        params = message_page_query(self.config, page=page, per_page=per_page, **filters)
        return message_page(self._request("GET", "/api/messages", params=params))

    def _fetch_page(
        self,
        path: str,
        params: Mapping[str, Any],
        per_page: int,
        decode: Callable[[str], Any] | None,
        page: int,
        stop: threading.Event,
    ) -> dict[str, Any]:
        query = {**params, **page_params(per_page, page)}
        return self._request("GET", path, params=query, stop=stop, decode=decode)

    def _walk(self, path: str, params: Mapping[str, Any], per_page: int, walker: PageWalker) -> PageWalk:
        """The pages of ``path`` as ``walker`` takes them (read ahead when it asks for it: see ``_read_ahead``)."""
        return PageWalk(
            walker, iter_pages(walker, partial(self._fetch_page, path, params, per_page, walker.decode))
        )

    def _message_pages(
        self, walker: PageWalker, query: Mapping[str, Any], per_page: int
    ) -> Iterator[list[dict[str, Any]]]:
        params = message_query(self.config, status=None, **query)
        return iter_pages(walker, partial(self._fetch_page, "/api/messages", params, per_page, walker.decode))

    def iter_messages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every message of :meth:`iter_message_pages` (same arguments), one at a time."""
        return chain.from_iterable(self.iter_message_pages(**kwargs))

    def get_phone_numbers(self) -> list[dict[str, Any]]:
        """The account's phone numbers with their capabilities and status."""
        return extract_data(self._request("GET", "/api/phone-numbers"), "/api/phone-numbers", list)

    def iter_conversation_pages(
        self,
        per_page: int = MAX_PER_PAGE,
        *,
        read_id: Callable[[Any], Hashable] | None = None,
        read_ahead: bool = False,
    ) -> PageWalk:
        """
        Walk the conversation list page by page, never yielding an id twice, until every conversation is read.

        A conversation with a new message moves to the top of the list, past the walk; so the list is read
        again from page 1 until the distinct ids read equal the list's ``meta.total`` (the walk's
        ``stats.reread_rows`` counts those the re-reads found).

        :param read_id: as for :meth:`iter_message_pages`.
        :param read_ahead: as for :meth:`iter_message_pages`.
        :raises SMSNexusResponseError: the count cannot be reached or is missing, so completeness is unproven.
        """
        walker = PageWalker("/api/conversations", read_id=read_id, prove_by_total=True, read_ahead=read_ahead)
        return self._walk("/api/conversations", {}, per_page, walker)

    def iter_conversations(self, per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Every conversation, one at a time."""
        return chain.from_iterable(self.iter_conversation_pages(per_page=per_page))

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

    #: The longest wait of :meth:`test_connection` (a shorter connection ``timeout`` wins).
    test_connection_timeout: float = 10.0

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection by reading the balance once; never raises.

        One attempt, no retries and no waiting on 429s, within ``min(timeout, 10)`` seconds: the UI's Test
        button answers quickly for an unreachable or silent host instead of retrying it.
        """
        import dataclasses

        try:
            probe = type(self)(smsnexus_conn_id=self.smsnexus_conn_id)
            probe.config = dataclasses.replace(
                self.config,
                max_retries=0,
                max_rate_limit_wait=0.0,
                timeout=min(self.config.timeout, self.test_connection_timeout),
            )
            balance = probe.get_balance()
        except Exception as exc:
            return False, str(exc)
        return True, f"Connected: {balance.get('credits')} credits on plan {balance.get('plan')!s}"


class SMSNexusAsyncHook(_SMSNexusBaseHook):
    """
    The read side of the SMS Nexus API for triggers, on aiohttp; never blocks the event loop.

    Shares the connection parsing, headers, answer interpretation, error mapping and the retry driver of
    :class:`SMSNexusHook`: its requests go through the same kind of limiter (one per hook instance, so a
    trigger's polls are paced and counted), count the same :attr:`stats` and feed a :attr:`server_clock`.

    :param smsnexus_conn_id: the Airflow connection, as for :class:`SMSNexusHook`.
    :param priority: as for :class:`SMSNexusHook` (default ``interactive``: triggers are waited on).
    """

    hook_name = "SMS Nexus (async)"

    def __init__(
        self,
        smsnexus_conn_id: str = _SMSNexusBaseHook.default_conn_name,
        *,
        priority: str = INTERACTIVE,
        **kwargs: Any,
    ) -> None:
        super().__init__(smsnexus_conn_id, priority=priority, **kwargs)
        self._config: SMSNexusConnectionConfig | None = None
        self._driver: RetryDriver | None = None
        self._transport_options: dict[str, Any] = {}
        #: The server's clock, as for :attr:`SMSNexusHook.server_clock`.
        self.server_clock = ServerClock()

    async def get_config(self) -> SMSNexusConnectionConfig:
        """The parsed connection, read without blocking the event loop."""
        if self._config is None:
            conn = await aget_connection(self.smsnexus_conn_id)
            self._config = SMSNexusConnectionConfig.from_connection(conn)
        return self._config

    async def _get_driver(self) -> RetryDriver:
        if self._driver is None:
            config = await self.get_config()
            self.server_clock.default_uncertainty = config.server_clock_uncertainty
            self._transport_options = aiohttp_options(config)
            self._driver = self._new_driver(config, self.server_clock)
        return self._driver

    @property
    def limiters(self) -> dict[str, RateLimiter]:
        """The limiters of this hook (``send``, ``read``); empty until its first request read the connection."""
        return self._driver.limiters if self._driver is not None else {}

    async def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        driver = await self._get_driver()
        config = driver.config
        async with aiohttp_session(config) as session:
            options = self._transport_options
            return await run_async(
                driver.steps(method, path),
                partial(aiohttp_send, session, config, options, method, path, params=params),
            )

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
        filters = {"status": status, "direction": direction, "start_date": start_date, "end_date": end_date}
        params = message_page_query(await self.get_config(), page=page, per_page=per_page, **filters)
        return message_page(await self._request("GET", "/api/messages", params=params))

    def _message_pages(
        self, walker: PageWalker, query: Mapping[str, Any], per_page: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        # Each page is one get_messages, requested when it is asked for (no read-ahead in the event loop).
        window = {"start_date": query["start"], "end_date": query["end"]}
        fetch = partial(self.get_messages, per_page=per_page, direction=query["direction"], **window)
        return aiter_pages(walker, fetch)
