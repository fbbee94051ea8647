"""The loop every waiting trigger of this provider runs: check, wait, check again until done, a
deadline, or an error that waiting cannot fix; each outcome a JSON-safe event payload. Also the base
class that gives those triggers their shared arguments, serialisation and hook."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusServerError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from logging import Logger

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook

#: Errors after which a waiting trigger or sensor checks again: 429, and 5xx / no answer after retries.
TRANSIENT_ERRORS: tuple[type[SMSNexusError], ...] = (SMSNexusRateLimitError, SMSNexusServerError)
#: The balance waits also through a 2xx that is not the API's JSON (a maintenance page answered 200): the
#: balance has no other reading, whereas a list walk that met one cannot trust what it read.
BALANCE_TRANSIENT_ERRORS: tuple[type[SMSNexusError], ...] = (*TRANSIENT_ERRORS, SMSNexusResponseError)


def error_payload(error: SMSNexusError) -> dict[str, Any]:
    """A JSON-safe description of an error that waiting cannot fix."""
    return {
        "status": "error",
        "status_code": error.status_code,
        "message": f"{type(error).__name__}: {error}",
        "server_message": error.server_message,
    }


async def poll_until(
    check: Callable[[], Awaitable[dict[str, Any] | None]],
    *,
    interval: float,
    deadline: float | None,
    log: Logger,
    what: str,
    on_timeout: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    transient: tuple[type[SMSNexusError], ...] = TRANSIENT_ERRORS,
) -> dict[str, Any]:
    """
    Call ``check`` every ``interval`` seconds until it returns a payload; return the final payload.

    :param check: returns the ``success`` payload when done, else None.
    :param deadline: epoch seconds after which the wait ends with a ``timeout`` payload.
    :param what: what is waited for, for log lines and the timeout message.
    :param on_timeout: builds the timeout payload (else a plain ``timeout`` with a message).
    :param transient: the errors after which ``check`` runs again (connection errors always do).
    """
    import aiohttp

    while True:
        try:
            done = await check()
        except (*transient, aiohttp.ClientError, asyncio.TimeoutError) as error:
            log.warning(
                "Waiting for %s: check failed for now (%s: %s); checking again in %.1f s",
                what,
                type(error).__name__,
                error,
                interval,
            )
        except SMSNexusError as error:
            return error_payload(error)
        else:
            if done is not None:
                return done
        wait = interval
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                if on_timeout is not None:
                    return await on_timeout()
                return {"status": "timeout", "message": f"No {what} before the deadline"}
            wait = min(wait, remaining)
        await asyncio.sleep(wait)


class PollingTrigger(BaseTrigger):
    """
    A trigger that polls SMS Nexus until a condition holds, then yields one event.

    Holds what the balance, delivery and reply triggers share: the connection, the interval, the
    deadline, their serialisation, and the :func:`poll_until` loop. A subclass gives its own
    arguments in :meth:`arguments` and calls :meth:`wait_for` from ``run()``.

    :param smsnexus_conn_id: the SMS Nexus connection id.
    :param poke_interval: seconds between checks.
    :param deadline: epoch seconds after which the trigger gives up with a ``timeout`` event; None to
        rely on the triggerer's own timeout only. Absolute, so a triggerer restart does not extend it.
    """

    def __init__(
        self, *, smsnexus_conn_id: str = DEFAULT_CONN_ID, poke_interval: float, deadline: float | None
    ) -> None:
        super().__init__()
        self.smsnexus_conn_id = smsnexus_conn_id
        self.poke_interval = float(poke_interval)
        self.deadline = None if deadline is None else float(deadline)

    def arguments(self) -> dict[str, Any]:
        """The subclass's own JSON-safe keyword arguments (not the connection, interval or deadline)."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-safe keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.arguments(),
                "smsnexus_conn_id": self.smsnexus_conn_id,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
            },
        )

    def async_hook(self) -> SMSNexusAsyncHook:
        """A new async hook on ``smsnexus_conn_id`` (imported here: the triggerer loads it, not parsing)."""
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook

        return SMSNexusAsyncHook(smsnexus_conn_id=self.smsnexus_conn_id)

    async def wait_for(
        self,
        check: Callable[[], Awaitable[dict[str, Any] | None]],
        *,
        what: str,
        on_timeout: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        transient: tuple[type[SMSNexusError], ...] = TRANSIENT_ERRORS,
    ) -> TriggerEvent:
        """Run :func:`poll_until` with this trigger's interval, deadline and log; return its one event."""
        timing = {"interval": self.poke_interval, "deadline": self.deadline}
        payload = await poll_until(
            check, log=self.log, what=what, on_timeout=on_timeout, transient=transient, **timing
        )
        return TriggerEvent(payload)
