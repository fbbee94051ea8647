"""The loop every waiting trigger of this provider runs: check, wait, check again until done, a
deadline, or an error that waiting cannot fix; each outcome a JSON-safe event payload."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusRateLimitError, SMSNexusServerError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from logging import Logger

#: Errors after which a waiting trigger or sensor checks again: 429, and 5xx / no answer after retries.
TRANSIENT_ERRORS: tuple[type[SMSNexusError], ...] = (SMSNexusRateLimitError, SMSNexusServerError)


def error_payload(error: SMSNexusError) -> dict[str, Any]:
    """A JSON-safe description of an error that waiting cannot fix."""
    return {
        "status": "error",
        "status_code": error.status_code,
        "message": f"{type(error).__name__}: {error}",
    }


async def poll_until(
    check: Callable[[], Awaitable[dict[str, Any] | None]],
    *,
    interval: float,
    deadline: float | None,
    log: Logger,
    what: str,
    on_timeout: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """
    Call ``check`` every ``interval`` seconds until it returns a payload; return the final payload.

    :param check: returns the ``success`` payload when done, else None.
    :param deadline: epoch seconds after which the wait ends with a ``timeout`` payload.
    :param what: what is waited for, for log lines and the timeout message.
    :param on_timeout: builds the timeout payload (else a plain ``timeout`` with a message).
    """
    import aiohttp

    while True:
        try:
            done = await check()
        except (*TRANSIENT_ERRORS, aiohttp.ClientError, asyncio.TimeoutError) as error:
            log.warning("Waiting for %s: check failed for now (%s); again in %.1f s", what, error, interval)
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
