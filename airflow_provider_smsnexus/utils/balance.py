"""
The balance condition and the burn-rate estimate, shared by the balance sensor and its trigger.

Pure functions (no I/O), so poke mode and deferrable mode compute the very same
result from the same ``GET /api/balance`` answer.

The burn rate is the pace so far today: ``credits_used_today`` divided by the hours elapsed since
00:00 UTC (the API does not document which day boundary the server uses; UTC is assumed). The elapsed
time is floored at :data:`MIN_ELAPSED_HOURS` so that a few credits spent in the first minutes after
midnight do not read as an absurd hourly rate. When nothing was used today there is no rate, and no
estimate of the hours left: both are None.

.. seealso:: "Balance sensor" in :doc:`/guides/balance-alerts`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.exceptions import SMSNexusResponseError

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The two ways a balance can satisfy the sensor: credits < threshold, or credits >= threshold.
BALANCE_CONDITIONS = ("below", "at_least")

#: The smallest elapsed time (hours) the burn rate divides by: 15 minutes.
MIN_ELAPSED_HOURS = 0.25


def validate_condition(when: str) -> str:
    """
    Return ``when`` when it names a balance condition, else raise.

    :param when: ``"below"`` or ``"at_least"``.
    :raises ValueError: for anything else.
    """
    if when not in BALANCE_CONDITIONS:
        raise ValueError(f"when must be one of {', '.join(map(repr, BALANCE_CONDITIONS))}, got {when!r}")
    return when


def coerce_threshold(threshold: Any) -> int:
    """
    Turn a (possibly Jinja-rendered) threshold into a non-negative int.

    :param threshold: an int, or a string of digits such as ``"500"`` after templating.
    :raises ValueError: when it is not a whole number of credits >= 0.
    """
    if isinstance(threshold, bool):
        raise ValueError(f"threshold must be a whole number of credits, got {threshold!r}")
    try:
        value = int(str(threshold).strip()) if isinstance(threshold, str) else int(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a whole number of credits, got {threshold!r}") from None
    if isinstance(threshold, float) and threshold != value:
        raise ValueError(f"threshold must be a whole number of credits, got {threshold!r}")
    if value < 0:
        raise ValueError(f"threshold must be >= 0, got {value}")
    return value


def balance_condition_met(credits: float, threshold: int, when: str) -> bool:
    """
    Whether ``credits`` satisfies the condition.

    :param credits: the account's credits.
    :param threshold: the threshold in credits.
    :param when: ``"below"`` (done when credits < threshold) or ``"at_least"`` (credits >= threshold).
    """
    if validate_condition(when) == "below":
        return credits < threshold
    return credits >= threshold


def burn_rate_per_hour(credits_used_today: float | None, now: datetime) -> float | None:
    """
    Credits used per hour so far today (UTC), or None when nothing was used.

    :param credits_used_today: the balance answer's ``credits_used_today``.
    :param now: the moment of the balance answer (an aware datetime).
    """
    if not credits_used_today or credits_used_today <= 0:
        return None
    now_utc = now.astimezone(timezone.utc)
    midnight = now_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = max((now_utc - midnight).total_seconds() / 3600, MIN_ELAPSED_HOURS)
    return credits_used_today / hours


def balance_report(balance: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """
    The balance answer plus the burn-rate estimate: the sensor's XCom value, JSON-safe.

    Adds ``credits_per_hour`` (rounded to 2 decimals), ``hours_left`` (credits / credits_per_hour,
    rounded to 2 decimals; 0.0 when no credits are left) and ``checked_at`` (ISO 8601, UTC). The rate
    and the hours left are None when nothing was used today.

    :param balance: the ``data`` of ``GET /api/balance``: credits, currency, plan, credits_used_today.
    :param now: the moment of the answer (an aware datetime).
    :raises SMSNexusResponseError: when the answer has no numeric ``credits``.
    """
    credits = balance.get("credits")
    if not _is_number(credits):
        raise SMSNexusResponseError(f"/api/balance answered without a numeric 'credits': {credits!r}")
    used = balance.get("credits_used_today")
    rate = burn_rate_per_hour(used if _is_number(used) else None, now)
    hours_left = None if rate is None else round(max(credits, 0) / rate, 2)
    return {
        **balance,
        "credits_per_hour": None if rate is None else round(rate, 2),
        "hours_left": hours_left,
        "checked_at": now.astimezone(timezone.utc).isoformat(),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
