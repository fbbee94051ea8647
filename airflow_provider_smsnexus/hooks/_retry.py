"""The one retry driver of the SMS Nexus hooks: budget waits, attempts, retries, stats and the server clock.

The driver knows no HTTP library. :meth:`RetryDriver.steps` is a generator that yields what to do next --
:class:`Wait` so many seconds, :class:`Call` a shared rate budget's store, :data:`READY` (a send about to
leave, for its caller's mark) or :data:`SEND` the request now -- and is sent what happened: an :class:`Answer`, or a :class:`NoAnswer` that the transport has classified
(:func:`urllib3_failure`, :func:`aiohttp_failure`). It returns the decoded JSON body or raises the error the
outcome means. The sync hook runs it with :func:`blocking_steps`, the async hook with :func:`run_async` (a
store's I/O in a worker thread), so both obey the same rate budget (:mod:`._budget`), count the same stats
and feed the same server clock.

Outcome of a send ("Exactly once" in the sending guide): an error raised before the request can have left
this machine is :data:`NOT_SENT` (safe to retry, or to mark failed); anything after the request may have been
written is :data:`UNKNOWN` (:class:`SMSNexusSendOutcomeUnknownError`): never repeated, settled by a lookup.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus import RUN_HEADER
from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusSendOutcomeUnknownError,
    SMSNexusServerError,
)
from airflow_provider_smsnexus.hooks._answers import interpret_answer
from airflow_provider_smsnexus.hooks._budget import open_budget
from airflow_provider_smsnexus.hooks.outcomes import REPEATABLE_METHODS, UNKNOWN, Answer, NoAnswer
from airflow_provider_smsnexus.utils.rate_budget import INTERACTIVE
from airflow_provider_smsnexus.utils.rate_limit import RESET_MARGIN_SECONDS, parse_rate_limit_headers

if TYPE_CHECKING:
    import logging
    import threading
    from collections.abc import Awaitable, Callable, Generator

    from airflow_provider_smsnexus.hooks._budget import ProcessBudget, SharedBudget
    from airflow_provider_smsnexus.hooks._clock import ServerClock
    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
    from airflow_provider_smsnexus.utils.rate_limit import RateLimitInfo

SEND_PATH = "/api/sms/send"

#: A wait at least this long (seconds) is logged at INFO with what it waits for. A module constant so that
#: tests can lower it.
LONG_WAIT_SECONDS = 5.0

#: The stats every hook counts: requests sent, 429s met, retries made, seconds waited (limiter and retries).
STAT_KEYS = ("requests", "rate_limited", "retries", "waited_seconds")


def rate_class(method: str, path: str) -> str:
    """The server's rate-limit class of a request: ``send`` for sending messages, ``read`` for the rest."""
    return "send" if method == "POST" and path == SEND_PATH else "read"


def new_stats() -> dict[str, float]:
    """A hook's stats, all zero."""
    return dict.fromkeys(STAT_KEYS, 0)


# -- what a transport tells the driver --------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Sleep this many seconds, then resume the driver with ``None``."""

    seconds: float


class _Send:
    def __repr__(self) -> str:
        return "SEND"


#: Send the request now, then resume the driver with its :class:`Answer` or :class:`NoAnswer`.
SEND = _Send()


@dataclass(frozen=True)
class Call:
    """Run ``function`` (blocking I/O: a shared rate budget's store), then resume the driver with its result."""

    function: Callable[[], Any]


# -- the driver -------------------------------------------------------------------------------------------


class _Ready:
    def __repr__(self) -> str:
        return "READY"


#: The request is about to leave (the budget's wait and any 429 back-off are over): the caller writes its
#: durable mark now, then resumes the driver with ``None``, or throws its exception into it (the request is
#: not sent, its reservation is given back, and the exception comes back out). Yielded only when asked for.
READY = _Ready()

#: What the driver yields.
Step = Wait | _Send | Call | _Ready


class RetryDriver:
    """
    The retry loop and bookkeeping of one hook, shared by its threads: its rate budget (the connection's
    ``rate_budget``: one limiter per rate-limit class, or a budget shared with other processes), the stats and
    the server clock.

    :param config: the parsed connection.
    :param stats: the hook's stats mapping, counted in place (keys of :data:`STAT_KEYS`).
    :param stats_lock: guards ``stats``.
    :param server_clock: fed from every answer's ``Date`` header; converts the server's reset times.
    :param log: where waits and retries are logged.
    :param priority: the hook's calls are ``interactive`` (someone waits on them) or ``bulk``; a shared budget
        serves interactive calls first.
    """

    def __init__(
        self,
        config: SMSNexusConnectionConfig,
        *,
        stats: dict[str, float],
        stats_lock: threading.Lock,
        server_clock: ServerClock,
        log: logging.Logger,
        priority: str = INTERACTIVE,
    ) -> None:
        self.config = config
        self.stats = stats
        self._stats_lock = stats_lock
        self.server_clock = server_clock
        self.log = log
        self.budget: ProcessBudget | SharedBudget = open_budget(config, priority=priority, log=log)
        #: One limiter per rate-limit class: the hook's own pace (with a shared budget, its fallback).
        self.limiters = self.budget.limiters

    def count(self, key: str, amount: float = 1) -> None:
        """Add to one of the stats."""
        with self._stats_lock:
            self.stats[key] += amount

    def steps(
        self, method: str, path: str, *, announce: bool = False, decode: Callable[[str], Any] | None = None
    ) -> Generator[Step, Answer | NoAnswer | None, Any]:
        """
        Drive one request from its budget wait to its decoded JSON body, or to the error its outcome means.

        Each attempt waits for the rate budget, then, when ``announce``, yields :data:`READY` (an exception
        thrown in there propagates, the request is not sent and its reservation is given back), then yields
        :data:`SEND`; the budget is told
        every answer's rate-limit headers, every 429, and every attempt that got no answer. A 429 is retried for as long as the server's reset
        times say, until this request has spent ``max_rate_limit_wait`` seconds waiting since its first 429
        (resets and the limiter's pace); 5xx and transport failures up to ``max_retries`` times, and only
        when repeating is harmless. ``decode`` decodes a success's body (see :func:`interpret_answer`).
        """
        config = self.config
        budget_class = rate_class(method, path)
        is_send = budget_class == "send"
        repeatable = method in REPEATABLE_METHODS
        failures = 0  # 5xx and transport failures: bounded by max_retries
        refusals = 0  # 429s: bounded by the time waited for them
        waited_for_429s = 0.0
        while True:
            waited, ticket = yield from self._wait_for_budget(budget_class, method, path)
            if refusals:
                waited_for_429s += waited  # the pace after a refusal is part of waiting it out
            if announce:
                try:
                    yield READY
                except BaseException:
                    yield from self._tell_budget(self.budget.release, budget_class, ticket)
                    raise
            self.count("requests")
            sent_at = time.time()
            outcome = yield SEND
            answered_at = time.time()
            if isinstance(outcome, NoAnswer):
                yield from self._tell_budget(self.budget.answered, budget_class, ticket, None)
                self._raise_if_final_failure(method, path, outcome, is_send, repeatable, failures)
                delay = config.backoff(failures)
                why = f"no answer ({outcome.kind})"
            elif isinstance(outcome, Answer):
                headers = outcome.headers
                self.server_clock.observe(sent_at, answered_at, headers.get("Date"), headers.get(RUN_HEADER))
                info = parse_rate_limit_headers(
                    outcome.headers, answered_at, server_offset=self.server_clock.offset_for_waits()
                )
                if outcome.status == 429:
                    self.count("rate_limited")
                    yield from self._tell_budget(self.budget.refused, budget_class, ticket, info)
                    wait = self._rate_limit_wait(info, refusals, answered_at)
                    if waited_for_429s + wait > config.max_rate_limit_wait:
                        interpret_answer(method, path, 429, outcome.text, info, config.token)
                    refusals += 1
                    waited_for_429s += wait
                    self.count("retries")
                    self.log.info(
                        "%s %s answered 429 (rate limited); waiting %.2f s for the server's rate-limit reset "
                        "(%.1f of max_rate_limit_wait=%g s used)",
                        method, path, wait, waited_for_429s, config.max_rate_limit_wait,
                    )  # fmt: skip
                    yield from self._wait(wait)
                    continue
                yield from self._tell_budget(self.budget.answered, budget_class, ticket, info)
                if outcome.status < 400:
                    return interpret_answer(
                        method, path, outcome.status, outcome.text, info, config.token, decode
                    )
                self._raise_if_final_status(method, path, outcome, info, is_send, repeatable, failures)
                delay = config.backoff(failures)
                why = f"answered {outcome.status}"
            else:
                raise TypeError(f"a transport resumed the driver with {outcome!r}, not an Answer or NoAnswer")
            failures += 1
            self.count("retries")
            self.log.warning(
                "%s %s %s; retry %d of %d in %.2fs", method, path, why, failures, config.max_retries, delay
            )
            yield from self._wait(delay)

    def _rate_limit_wait(self, info: RateLimitInfo, refusals: int, now: float) -> float:
        wait = info.seconds_until_allowed(now, self.config.backoff(refusals))
        if wait <= 2 * RESET_MARGIN_SECONDS:
            # The announced reset has passed, yet the server refuses: its headers do not help, back off.
            wait = max(wait, self.config.backoff(refusals))
        return wait

    def _wait_for_budget(
        self, budget_class: str, method: str, path: str
    ) -> Generator[Step, Any, tuple[float, str | None]]:
        """Wait until the budget reserves the request; return the seconds waited and the reservation's ticket."""
        waited = 0.0
        while True:
            delay, ticket = yield from self._tell_budget(self.budget.try_acquire, budget_class)
            if delay <= 0:
                return waited, ticket
            waited += delay
            if delay >= LONG_WAIT_SECONDS:
                self.log.info(
                    "%s %s waits %.1f s for the %s budget: %s",
                    method,
                    path,
                    delay,
                    budget_class,
                    self.budget.why_waiting(budget_class),
                )
            yield from self._wait(delay)

    def _tell_budget(self, function: Callable[..., Any], *args: Any) -> Generator[Step, Any, Any]:
        """Call the budget: in place, or through :class:`Call` when it does I/O (a shared budget's store)."""
        if not self.budget.does_io:
            return function(*args)
        return (yield Call(functools.partial(function, *args)))

    def _wait(self, seconds: float) -> Generator[Step, Answer | NoAnswer | None, None]:
        # Retries and 429s log their own line with the wait; limiter waits log above when long.
        self.count("waited_seconds", seconds)
        yield Wait(seconds)

    def _raise_if_final_failure(
        self, method: str, path: str, failure: NoAnswer, is_send: bool, repeatable: bool, failures: int
    ) -> None:
        config = self.config
        if failure.permanent:
            raise SMSNexusError(
                f"{method} {path}: cannot reach {config.base_url} ({failure.kind}); "
                "check the connection's host and TLS settings"
            )
        if failure.outcome == UNKNOWN and is_send:
            raise SMSNexusSendOutcomeUnknownError(
                f"{method} {path}: no answer ({failure.kind}) after the request was sent: the server may or "
                "may not have sent the message. Look for it in /api/messages before sending again."
            )
        if failures >= config.max_retries or (failure.outcome == UNKNOWN and not repeatable):
            raise SMSNexusServerError(
                f"{method} {path}: no answer from {config.base_url} after {failures + 1} attempt(s) "
                f"({failure.kind})"
            )

    def _raise_if_final_status(
        self,
        method: str,
        path: str,
        answer: Answer,
        info: RateLimitInfo,
        is_send: bool,
        repeatable: bool,
        failures: int,
    ) -> None:
        if is_send and answer.status >= 500:
            raise SMSNexusSendOutcomeUnknownError(
                f"{method} {path} answered {answer.status}: the server may or may not have sent the message. "
                "Look for it in /api/messages before sending again.",
                status_code=answer.status,
            )
        if answer.status < 500 or not repeatable or failures >= self.config.max_retries:
            interpret_answer(method, path, answer.status, answer.text, info, self.config.token)


def blocking_steps(
    steps: Generator[Step, Answer | NoAnswer | None, Any],
    send: Callable[[], Answer | NoAnswer],
    *,
    stop: threading.Event | None = None,
) -> Generator[None, None, Any]:
    """
    Run a driver with blocking sleeps, as a generator the caller drives: it yields at each :data:`READY`
    (the caller writes its mark in its own frame, then resumes it, or throws its exception in) and returns the
    driver's result. ``send`` makes one attempt.

    :param stop: once set, the request is abandoned at its next wait (or before it starts) with
        :class:`concurrent.futures.CancelledError`; an attempt already sent is awaited. For a page read ahead
        that is no longer wanted.
    """
    if stop is not None and stop.is_set():
        steps.close()
        raise _cancelled()
    try:
        step = next(steps)
        while True:
            if isinstance(step, Wait):
                if stop is None:
                    time.sleep(step.seconds)
                elif stop.wait(step.seconds):
                    steps.close()
                    raise _cancelled()
                step = steps.send(None)
            elif isinstance(step, Call):
                step = steps.send(step.function())
            elif step is READY:
                try:
                    yield
                except BaseException as exc:  # the caller's mark failed: the driver gives the slot back
                    step = steps.throw(exc)
                else:
                    step = steps.send(None)
            else:
                step = steps.send(send())
    except StopIteration as done:
        return done.value


def run_attempts(attempts: Generator[None, None, Any], before_send: Callable[[], None] | None = None) -> Any:
    """
    Drive ``attempts`` (a generator that yields right before each request leaves) to its result, calling
    ``before_send`` at each yield; an exception it raises is thrown in, and comes back out once the request's
    reservation is given back.
    """
    try:
        next(attempts)
        while True:
            try:
                if before_send is not None:
                    before_send()
            except BaseException as exc:
                attempts.throw(exc)
            next(attempts)
    except StopIteration as done:
        return done.value


def _cancelled() -> BaseException:
    from concurrent.futures import CancelledError

    return CancelledError("stopped: the request is no longer wanted")


async def run_async(
    steps: Generator[Step, Answer | NoAnswer | None, Any], send: Callable[[], Awaitable[Answer | NoAnswer]]
) -> Any:
    """Run a driver on the event loop; ``send`` makes one attempt; a :class:`Call` runs in a worker thread."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                step = steps.send(None)
            elif isinstance(step, Call):
                # A store's lock and round trip, off the event loop.
                step = steps.send(await asyncio.to_thread(step.function))
            elif step is SEND:
                step = steps.send(await send())
            else:
                raise TypeError(f"the async runner cannot take {step!r}: its requests announce nothing")
    except StopIteration as done:
        return done.value
