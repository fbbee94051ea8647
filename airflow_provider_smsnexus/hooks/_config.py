"""The connection configuration of the SMS Nexus hooks: every extra parsed and checked in one place.

What each extra takes is written in ``_extras``; a bad one fails here, before any request, with an
:class:`~airflow_provider_smsnexus.exceptions.SMSNexusConfigError` naming the connection, the extra and what it
takes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import (
    SMSNexusConfigError,
    SMSNexusConnectionNotFoundError,
)
from airflow_provider_smsnexus.hooks._clock import DEFAULT_UNCERTAINTY_SECONDS
from airflow_provider_smsnexus.hooks._extras import (
    NUMBER_RULES,
    TEXT_EXTRAS,
    read_proxies,
    read_text,
    read_verify,
)
from airflow_provider_smsnexus.hooks.connection_form import DEFAULT_BASE_URL
from airflow_provider_smsnexus.utils.rate_budget import DEFAULT_RESERVE_SHARE

#: The default listing-delay bound (s): the API reference promises no bound; see docs/guarantees.md.
LISTING_DELAY_SECONDS = 5.0

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Connection


PROCESS, HOST, SQL, REDIS = "process", "host", "sql", "redis"
#: The values of the ``rate_budget`` extra.
BUDGET_KINDS = (PROCESS, HOST, SQL, REDIS)


@dataclass(frozen=True)
class BudgetSettings:
    """
    The connection's choice of rate budget.

    :param kind: one of :data:`BUDGET_KINDS`.
    :param store: where a shared budget lives: for ``host`` a directory (default: ``smsnexus-rate-budget``
        under the temporary directory); for ``sql`` an Airflow connection id or a SQLAlchemy URL; for
        ``redis`` an Airflow connection id or a ``redis://`` URL.
    :param reserve_share: the share of each limit that bulk calls leave to interactive calls (0 to 0.5).
    """

    kind: str = PROCESS
    store: str | None = None
    reserve_share: float = DEFAULT_RESERVE_SHARE

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> BudgetSettings:
        """
        Read ``rate_budget``, ``rate_budget_store`` and ``rate_budget_reserve``.

        :raises ValueError: one is bad; the text names it and what it takes (the connection adds its name).
        """
        kind = extra.get("rate_budget") or PROCESS  # null or "": a field of the form left empty
        if not isinstance(kind, str) or kind.strip().lower() not in BUDGET_KINDS:
            raise ValueError(f"rate_budget={kind!r}: expected one of {', '.join(BUDGET_KINDS)}")
        kind = kind.strip().lower()
        store = extra.get("rate_budget_store")
        if store is not None and not isinstance(store, str):
            # Its value is not shown: a URL may hold a password.
            raise ValueError(
                f"rate_budget_store: a {type(store).__name__}; expected text (a directory, connection id or URL)"
            )
        store = (store or "").strip() or None
        if kind in (SQL, REDIS) and store is None:
            what = "a SQLAlchemy URL" if kind == SQL else "a redis:// URL"
            raise ValueError(
                f"rate_budget_store: missing; rate_budget={kind} needs a connection id or {what}"
            )
        raw = extra.get("rate_budget_reserve")
        raw = DEFAULT_RESERVE_SHARE if raw is None or raw == "" else raw
        try:
            reserve = float(raw)
        except (TypeError, ValueError):
            reserve = -1.0
        if not 0 <= reserve <= 0.5 or isinstance(raw, bool):
            raise ValueError(f"rate_budget_reserve={raw!r}: expected a share of the limit from 0 to 0.5")
        return cls(kind=kind, store=store, reserve_share=reserve)


def _mask(secret: str) -> None:
    """Register the token with Airflow's secrets masker, so that no log line can show it."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def _read_extras(extra: dict[str, Any]) -> dict[str, Any]:
    """The extras ``extra`` sets, read as :mod:`._extras` says (a ``ValueError`` names a bad one)."""
    values: dict[str, Any] = {
        name: rule.read(name, extra[name]) for name, rule in NUMBER_RULES.items() if name in extra
    }
    values.update({name: read_text(name, extra[name]) for name in TEXT_EXTRAS if name in extra})
    if "verify" in extra:
        values["verify"] = read_verify(extra["verify"])
    if "proxies" in extra:
        values["proxies"] = read_proxies(extra["proxies"])
    return values


@dataclass(frozen=True)
class SMSNexusConnectionConfig:
    """
    Everything a hook needs from an Airflow connection, parsed in one place.

    :param base_url: the API's base URL including ``/api`` (the connection's host).
    :param token: the API token (the connection's password); never shown in ``repr``.
    :param timeout: seconds to wait for the server (connect and read).
    :param max_retries: retries of one request after a 5xx or a transport failure (429s are bounded by
        ``max_rate_limit_wait`` instead).
    :param verify: TLS verification: True (the CA bundle the environment names, else certifi's: see
        ``_transport.trusted_ca_bundle``), False, or the path of a CA bundle file or certificate directory.
    :param proxies: a requests-style proxies mapping; its ``no_proxy`` entry lists the hosts reached directly.
    :param send_rate_limit: sends allowed per ``rate_limit_period`` until the server announces its limit.
    :param read_rate_limit: other requests allowed per ``rate_limit_period``.
    :param rate_limit_period: the length of the rate-limit window in seconds (60 for SMS Nexus).
    :param retry_backoff: the first backoff delay in seconds; doubles with every retry.
    :param retry_backoff_max: the largest backoff delay in seconds.
    :param max_rate_limit_wait: the seconds one request may spend waiting on 429s (for the server's resets)
        before it gives up with :class:`SMSNexusRateLimitError`; also the longest single wait for a reset.
    :param date_from_param: the query parameter that carries the start of a date range.
    :param date_to_param: the query parameter that carries the end of a date range.
    :param server_clock_uncertainty: how far off (seconds) the server's clock may be while no answer's ``Date``
        header has been seen yet (see ``hook.server_clock``).
    :param listing_delay: the listing-delay bound (seconds): the server lists a message it created within this
        long of the moment the answer to its request was seen, or, with no answer, of the moment the client
        stopped waiting. Every "not listed, so not sent" (a campaign's lookups) and every "the window is
        complete" (exports, inbound triggers) waits it out. Default :data:`LISTING_DELAY_SECONDS`.
    :param explicit_limits: the rate-limit extras the connection sets on purpose; those are never raised to
        the limit the server announces (a worker's share of an account stays its share).
    :param rate_budget: the rate budget the hooks draw from (the ``rate_budget*`` extras): their own, or one
        shared by every process using the account (see :doc:`/guides/budget`).
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
    server_clock_uncertainty: float = DEFAULT_UNCERTAINTY_SECONDS
    listing_delay: float = LISTING_DELAY_SECONDS
    explicit_limits: frozenset[str] = frozenset()
    rate_budget: BudgetSettings = field(default_factory=BudgetSettings)

    def __post_init__(self) -> None:
        for name, rule in NUMBER_RULES.items():
            rule.check(name, getattr(self, name))

    @classmethod
    def from_connection(cls, conn: Connection) -> SMSNexusConnectionConfig:
        """Build the configuration from an Airflow connection, checking each extra."""
        # A form field left empty is stored as null (or ""): the extra is then unset, and its default applies.
        extra = {key: value for key, value in (conn.extra_dejson or {}).items() if value not in (None, "")}
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
                **_read_extras(extra),
                explicit_limits=frozenset(k for k in ("send_rate_limit", "read_rate_limit") if k in extra),
                rate_budget=BudgetSettings.from_extra(extra),
            )
        except ValueError as exc:  # each names its extra and what it takes (see _extras)
            raise SMSNexusConfigError(f"Connection {conn.conn_id!r} has an invalid extra {exc}.") from None

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``/api/balance`` (the base URL already ends in ``/api``)."""
        base = self.base_url
        if base.endswith("/api") and path.startswith("/api/"):
            base = base[: -len("/api")]
        return f"{base}{path}"

    @property
    def request_seconds(self) -> float:
        """The longest one request may take on this side: connecting and reading are each bounded by
        ``timeout``, so a request that starts has left, and been given up on, within twice it."""
        return 2 * self.timeout

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


async def aget_connection(conn_id: str) -> Connection:
    """
    The Airflow connection ``conn_id``, looked up from an event loop (an async hook, a trigger).

    Airflow's asynchronous lookup first; when it finds nothing, the synchronous lookup in a worker thread.
    ``airflow dags test`` (and ``dag.test()``) in Airflow 3.3 runs a deferred task's trigger inline, in its
    own process rather than a triggerer, through a channel to the metadata database that answers synchronous
    requests only: there the asynchronous lookup misses a connection stored with ``airflow connections add``,
    and the synchronous one finds it. Where both look in the same places (a triggerer), the second lookup only confirms the miss.

    :param conn_id: the connection id.
    :raises SMSNexusConnectionNotFoundError: neither lookup found it; the text says where to define it.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from asgiref.sync import sync_to_async

    try:
        return await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        pass
    try:
        return await sync_to_async(BaseHook.get_connection)(conn_id)
    except AirflowNotFoundException:
        raise SMSNexusConnectionNotFoundError(
            f"The SMS Nexus connection {conn_id!r} is not defined where this trigger runs. Define it where "
            f"Airflow's triggerer (or `airflow dags test`) can read it: `airflow connections add {conn_id} "
            "--conn-type smsnexus --conn-host <base URL> --conn-password <API token>` in the metadata "
            f"database, the environment variable AIRFLOW_CONN_{conn_id.upper()}, or a secrets backend. "
            "See the troubleshooting page of the docs.",
            conn_id=conn_id,
        ) from None
