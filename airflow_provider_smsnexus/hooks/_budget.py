"""The rate budget a hook's requests draw from: its own limiters, or one shared by every process using the account.

``rate_budget`` in the connection's extras chooses:

* ``process`` (the default): one :class:`~airflow_provider_smsnexus.utils.rate_limit.RateLimiter` per
  rate-limit class in each hook (:class:`ProcessBudget`), as before shared budgets existed;
* ``host``, ``sql``, ``redis``: a :class:`SharedBudget`, one window per account and class kept in a store
  (:mod:`._budget_stores`) that every process reaches, with priorities and fair shares
  (:mod:`airflow_provider_smsnexus.utils.rate_budget`). The account is the connection's base URL and a hash of
  its token (never the token).

The retry driver asks the budget before each request and tells it each answer's headers and each 429. A
shared budget's calls do I/O (a lock, a round trip): the driver yields them, so the async hook runs them in a
thread instead of on the event loop. While its store cannot be reached, a shared budget paces its hook with
the per-process limiters, warns, and goes back to the store once it answers.

.. seealso:: :doc:`/guides/budget`, the guide.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.hooks import _budget_stores
from airflow_provider_smsnexus.hooks._budget_stores import StoreUnavailableError
from airflow_provider_smsnexus.hooks._config import PROCESS
from airflow_provider_smsnexus.utils.rate_budget import PRIORITIES, BudgetRules, SharedWindow
from airflow_provider_smsnexus.utils.rate_limit import RateLimiter

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from airflow_provider_smsnexus.hooks._budget_stores import BudgetStore
    from airflow_provider_smsnexus.hooks._config import BudgetSettings, SMSNexusConnectionConfig
    from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

#: The rate-limit classes, each with its own budget.
RATE_CLASSES = ("send", "read")
#: A store that cannot be reached is reported at most this often (seconds).
STORE_WARNING_SECONDS = 60.0


def account_key(config: SMSNexusConnectionConfig) -> str:
    """The account a budget counts for: the base URL and a hash of the token (the token is never stored)."""
    token_hash = hashlib.sha256(f"smsnexus-rate-budget:{config.token}".encode()).hexdigest()[:24]
    return f"{config.base_url}#{token_hash}"


def _limits(config: SMSNexusConnectionConfig) -> dict[str, int]:
    return {"send": config.send_rate_limit, "read": config.read_rate_limit}


class ProcessBudget:
    """
    The budget of one hook alone: a :class:`RateLimiter` per rate-limit class (``rate_budget=process``).

    :param config: the parsed connection.
    """

    #: Its calls do no I/O: the driver runs them in place.
    does_io = False

    def __init__(self, config: SMSNexusConnectionConfig) -> None:
        self.limiters = {
            name: RateLimiter(
                limit,
                config.rate_limit_period,
                max_wait=config.max_rate_limit_wait,
                adopt_announced_limit=f"{name}_rate_limit" not in config.explicit_limits,
            )
            for name, limit in _limits(config).items()
        }

    def try_acquire(self, rate_class: str) -> tuple[float, str | None]:
        """Reserve a request of ``rate_class`` now: ``(0, ticket)``, or the seconds to wait and no ticket."""
        return self.limiters[rate_class].try_acquire(), None

    def why_waiting(self, rate_class: str) -> str:
        """What the last refused request waits for, in words."""
        return self.limiters[rate_class].why_waiting()

    def answered(self, rate_class: str, ticket: str | None, info: RateLimitInfo | None) -> None:
        """An answer arrived with ``info`` (None: no answer will)."""
        if info is not None:
            self.limiters[rate_class].update(info)

    def refused(self, rate_class: str, ticket: str | None, info: RateLimitInfo) -> None:
        """A 429 arrived."""
        self.limiters[rate_class].refused(info)

    def release(self, rate_class: str, ticket: str | None) -> None:
        """A reserved request never left (its slot stays counted: a limiter keeps no tickets)."""


class SharedBudget:
    """
    A budget shared through a store by every process that uses the account (``rate_budget`` host, sql, redis).

    :param config: the parsed connection (its ``rate_budget`` settings name the store).
    :param priority: :data:`~airflow_provider_smsnexus.utils.rate_budget.INTERACTIVE` or ``BULK``.
    :param log: where an unreachable store is reported.
    :param open_store: opens the store (for tests); default :func:`._budget_stores.open_store`.
    """

    #: Its calls lock and read a store: the driver yields them (the async hook runs them in a thread).
    does_io = True

    def __init__(
        self,
        config: SMSNexusConnectionConfig,
        *,
        priority: str,
        log: logging.Logger,
        open_store: Callable[[BudgetSettings], BudgetStore] | None = None,
    ) -> None:
        self.settings = config.rate_budget
        self.priority = priority
        self.log = log
        #: Paces the hook while the store cannot be reached; fed every answer, so it is warm when needed.
        self.fallback = ProcessBudget(config)
        self.limiters = self.fallback.limiters
        #: Who asks, for fair shares: one per hook.
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        account = account_key(config)
        self.keys = {name: f"{account}#{name}" for name in RATE_CLASSES}
        self.rules = {
            name: BudgetRules(
                limit=limit,
                period=config.rate_limit_period,
                reserve_share=self.settings.reserve_share,
                request_seconds=config.request_seconds,
                adopt_announced_limit=f"{name}_rate_limit" not in config.explicit_limits,
                max_wait=config.max_rate_limit_wait,
            )
            for name, limit in _limits(config).items()
        }
        self._open_store = open_store
        self._store: BudgetStore | None = None
        self._lock = threading.Lock()
        self._unreachable_since: float | None = None
        self._warned_at: float | None = None
        self._why: dict[str, str] = {}

    @property
    def store(self) -> BudgetStore:
        """The store, opened on first use (in the thread that runs the budget's calls)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = (self._open_store or _budget_stores.open_store)(self.settings)
        return self._store

    def try_acquire(self, rate_class: str) -> tuple[float, str | None]:
        """Reserve a request of ``rate_class`` in the shared window: ``(0, ticket)``, or the seconds to wait."""
        ticket = secrets.token_hex(6)
        rules = self.rules[rate_class]

        def reserve(window: SharedWindow) -> tuple[float, str]:
            return window.reserve(
                rules, now=time.time(), priority=self.priority, claimant=self.claimant, ticket=ticket
            )

        decision = self._transact(rate_class, reserve)
        if decision is None:
            return self.fallback.try_acquire(rate_class)
        wait, self._why[rate_class] = decision
        return (wait, None) if wait > 0 else (0.0, ticket)

    def why_waiting(self, rate_class: str) -> str:
        """What the last refused request waits for, in words."""
        if self._unreachable_since is not None:
            return self.fallback.why_waiting(rate_class)
        return f"the shared {self.settings.kind} budget: {self._why.get(rate_class) or 'a free slot'}"

    def answered(self, rate_class: str, ticket: str | None, info: RateLimitInfo | None) -> None:
        """An answer arrived with ``info`` (None: no answer will): it frees the slot a window from now."""
        self.fallback.answered(rate_class, ticket, info)
        if ticket is not None:
            rules = self.rules[rate_class]
            self._transact(rate_class, lambda w: w.answered(rules, now=time.time(), ticket=ticket, info=info))

    def refused(self, rate_class: str, ticket: str | None, info: RateLimitInfo) -> None:
        """A 429: every process of the account waits for the server's reset."""
        self.fallback.refused(rate_class, ticket, info)
        rules = self.rules[rate_class]
        self._transact(rate_class, lambda w: w.refused(rules, now=time.time(), ticket=ticket, info=info))

    def release(self, rate_class: str, ticket: str | None) -> None:
        """A reserved request never left: its slot is free again."""
        if ticket is not None:
            rules = self.rules[rate_class]
            self._transact(rate_class, lambda w: w.release(rules, now=time.time(), ticket=ticket))

    def _transact(self, rate_class: str, change: Callable[[SharedWindow], Any]) -> Any:
        """Run ``change`` on the shared window; None when the store cannot be reached (warned, rate-limited)."""
        try:
            result = self.store.transact(self.keys[rate_class], change)
        except StoreUnavailableError as exc:
            now = time.monotonic()
            if self._unreachable_since is None:
                self._unreachable_since = now
            if self._warned_at is None or now - self._warned_at >= STORE_WARNING_SECONDS:
                self._warned_at = now
                self.log.warning(
                    "The shared rate budget cannot be reached (%s); this hook paces itself alone until it can",
                    exc,
                )
            return None
        if self._unreachable_since is not None:
            self.log.info(
                "The shared rate budget answers again after %.0f s",
                time.monotonic() - self._unreachable_since,
            )
            self._unreachable_since = self._warned_at = None
        return result


def open_budget(
    config: SMSNexusConnectionConfig, *, priority: str, log: logging.Logger
) -> ProcessBudget | SharedBudget:
    """
    The budget the connection's ``rate_budget`` extra names, for a hook of ``priority``.

    :raises ValueError: ``priority`` is not one of :data:`~airflow_provider_smsnexus.utils.rate_budget.PRIORITIES`.
    """
    check_priority(priority)
    if config.rate_budget.kind == PROCESS:
        return ProcessBudget(config)
    return SharedBudget(config, priority=priority, log=log)


def check_priority(priority: str) -> str:
    """``priority`` when it is one of :data:`~airflow_provider_smsnexus.utils.rate_budget.PRIORITIES`.

    :raises ValueError: it is not.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
    return priority
