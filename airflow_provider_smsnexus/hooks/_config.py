"""The connection configuration of the SMS Nexus hooks: every extra parsed and checked in one place."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus import DEFAULT_BASE_URL
from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._clock import DEFAULT_UNCERTAINTY_SECONDS

if TYPE_CHECKING:
    from airflow.sdk import Connection


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
    :param max_retries: retries of one request after a 5xx or a transport failure (429s are bounded by
        ``max_rate_limit_wait`` instead).
    :param verify: TLS verification: True, False, or a CA bundle path.
    :param proxies: a requests-style proxies mapping.
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
    server_clock_uncertainty: float = DEFAULT_UNCERTAINTY_SECONDS
    explicit_limits: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.server_clock_uncertainty >= 0:
            raise ValueError(f"server_clock_uncertainty={self.server_clock_uncertainty!r} is below 0")

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
                server_clock_uncertainty=float(
                    extra.get("server_clock_uncertainty", cls.server_clock_uncertainty)
                ),
                explicit_limits=frozenset(k for k in ("send_rate_limit", "read_rate_limit") if k in extra),
            )
        except (TypeError, ValueError) as exc:
            raise SMSNexusError(
                f"Connection {conn.conn_id!r} has an invalid extra: {exc}. "
                "timeout, rate_limit_period, retry_backoff*, max_rate_limit_wait and server_clock_uncertainty "
                "take numbers (server_clock_uncertainty >= 0); max_retries and *_rate_limit take whole numbers."
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
