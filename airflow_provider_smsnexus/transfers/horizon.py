"""The listed horizon of an export: the latest ``created_at`` before which the server lists every message.

A message export reads a window of ``created_at``, a field of the *server's* clock, and reads it once: a message
the list does not show yet is lost for good when the window's end (and the watermark the next run starts from)
passes it. So a window never ends after the horizon: the server's present, measured from its ``Date`` headers
(``hook.server_clock``), minus the estimate's uncertainty and the connection's ``listing_delay`` (the time
within which a created message is listed). A window that should end later, but has ended on the worker's clock
(a data interval, a server clock running behind), waits for the horizon to reach it; a window without a fixed
end (a chained run) ends at the horizon, and the next run starts there.

.. seealso:: "The window on every schedule" in :doc:`/guides/exports`.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.utils.times import utcnow

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

#: The longest an export waits for the horizon to reach its window's end before it fails (to be retried).
MAX_HORIZON_WAIT = timedelta(minutes=15)


def listed_horizon(hook: SMSNexusHook, local: datetime | None = None) -> datetime:
    """
    The horizon at the local moment ``local`` (default now), on the server's clock, in whole seconds.

    Makes one request (``GET /api/balance``) when the hook has not heard from the server yet, so that the
    server's clock is measured rather than assumed.

    :param hook: the SMS Nexus hook (its ``server_clock`` and connection's ``listing_delay``).
    :param local: a moment of this machine's clock.
    """
    _hear_from_server(hook)
    earliest = _earliest_server_time(hook, local or utcnow())  # read after the balance: its answer counts
    return (earliest - timedelta(seconds=float(hook.config.listing_delay))).replace(microsecond=0)


def measure_horizon(hook: SMSNexusHook) -> tuple[datetime, datetime]:
    """The horizon now (:func:`listed_horizon`) and the local moment it was taken at."""
    _hear_from_server(hook)
    local = utcnow()
    return listed_horizon(hook, local), local


def _hear_from_server(hook: SMSNexusHook) -> None:
    """One read (``GET /api/balance``) when the hook has not heard from the server yet: its clock is measured."""
    if not hook.server_clock.answers:
        hook.get_balance()


def _earliest_server_time(hook: SMSNexusHook, local: datetime) -> datetime:
    """The earliest the server's clock can have read at the local moment ``local``, as measured now."""
    estimate, uncertainty = hook.server_clock.to_server(local)
    if not math.isfinite(uncertainty):
        uncertainty = float(hook.config.server_clock_uncertainty)
    return estimate - timedelta(seconds=uncertainty)


def created_from(hook: SMSNexusHook, local: datetime) -> datetime:
    """
    The earliest ``created_at`` (server clock, whole seconds) of a message created after the local moment
    ``local``, as the server's clock is measured now: a clock set back since dates such messages before the
    horizon that was taken at ``local``.

    :param hook: the SMS Nexus hook (its ``server_clock``).
    :param local: a moment of this machine's clock.
    """
    return _earliest_server_time(hook, local).replace(microsecond=0)


def wait_for_horizon(
    hook: SMSNexusHook,
    end: datetime,
    *,
    log: logging.Logger,
    max_wait: timedelta = MAX_HORIZON_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> datetime:
    """
    Wait until the horizon reaches ``end``; return the horizon then.

    :param hook: the SMS Nexus hook.
    :param end: the window's end (server clock).
    :param log: where the wait is said.
    :param max_wait: the longest wait.
    :param sleep: how to wait (tests give a clock of their own).
    :raises SMSNexusError: the horizon would not reach ``end`` within ``max_wait`` (a server clock far behind):
        nothing was exported, and a retry tries again.
    """
    horizon = listed_horizon(hook)
    if horizon >= end:
        return horizon
    lag = end - horizon
    if lag > max_wait:
        raise SMSNexusError(
            f"The export window ends at {end.isoformat()}, but SMS Nexus lists messages completely only up to "
            f"{horizon.isoformat()} on its own clock ({lag.total_seconds():.0f} s earlier: its clock runs behind "
            "this worker's, or listing_delay is large). Nothing was exported: a retry after the server's clock "
            "has passed the window's end exports it whole."
        )
    log.info(
        "Waiting %.1f s for SMS Nexus to list every message up to the window's end %s (its clock, minus "
        "the uncertainty and listing_delay, reads %s)",
        lag.total_seconds(),
        end.isoformat(),
        horizon.isoformat(),
    )
    while horizon < end:
        sleep(max((end - horizon).total_seconds(), 0.05))
        horizon = listed_horizon(hook)
    return horizon
