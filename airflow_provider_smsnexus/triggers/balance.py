"""SMSNexusBalanceTrigger: poll the SMS Nexus balance from the triggerer until a condition holds."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import timezone
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsnexus.exceptions import (
    SMSNexusError,
    SMSNexusRateLimitError,
    SMSNexusResponseError,
    SMSNexusServerError,
)
from airflow_provider_smsnexus.utils.balance import (
    balance_condition_met,
    balance_report,
    coerce_threshold,
    validate_condition,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class SMSNexusBalanceTrigger(BaseTrigger):
    """
    Poll ``GET /api/balance`` with the async hook until the balance condition holds.

    Yields exactly one :class:`~airflow.triggers.base.TriggerEvent`, a JSON-safe dict:

    - ``{"status": "success", "report": {...}}``: the condition holds; ``report`` is the balance plus
      burn-rate estimate, the same value the sensor returns in poke mode;
    - ``{"status": "timeout", "message": ...}``: ``deadline`` passed first;
    - ``{"status": "error", "status_code": ..., "message": ..., "server_message": ...}``: an error that
      waiting cannot fix (401, 403, 404, a 4xx refusal).

    A 429, a 5xx, a connection error or a 2xx answer that is not the API's JSON (a maintenance page
    answered 200) is logged and the balance checked again after ``poke_interval``, as the sensor does.
    Only awaits: the event loop is never blocked.

    :param threshold: the threshold in credits.
    :param when: ``"below"`` (done when credits < threshold) or ``"at_least"`` (credits >= threshold).
    :param smsnexus_conn_id: the SMS Nexus connection id.
    :param poke_interval: seconds between checks (default 60).
    :param deadline: epoch seconds after which the trigger gives up with a ``timeout`` event; None to
        rely on the triggerer's own timeout only. Absolute, so a triggerer restart does not extend it.
    """

    def __init__(
        self,
        *,
        threshold: int,
        when: str = "below",
        smsnexus_conn_id: str = "smsnexus_default",
        poke_interval: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.threshold = coerce_threshold(threshold)
        self.when = validate_condition(when)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.poke_interval = float(poke_interval)
        self.deadline = None if deadline is None else float(deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-safe keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "threshold": self.threshold,
                "when": self.when,
                "smsnexus_conn_id": self.smsnexus_conn_id,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check the balance every ``poke_interval`` seconds; yield one event and return."""
        import aiohttp

        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusAsyncHook

        hook = SMSNexusAsyncHook(smsnexus_conn_id=self.smsnexus_conn_id)
        transient = (
            SMSNexusRateLimitError,
            SMSNexusServerError,
            SMSNexusResponseError,  # e.g. a maintenance page answered 200
            aiohttp.ClientError,
            asyncio.TimeoutError,
        )
        while True:
            try:
                balance = await hook.get_balance()
            except transient as error:
                self._log_transient(error)
            except SMSNexusError as error:
                # 401, 403, 404, another 4xx: waiting cannot fix these.
                yield TriggerEvent(_error_payload(error))
                return
            else:
                try:  # a JSON balance without numeric credits: as the sensor, fail
                    report = balance_report(balance, now=timezone.utcnow())
                except SMSNexusError as error:
                    yield TriggerEvent(_error_payload(error))
                    return
                if balance_condition_met(report["credits"], self.threshold, self.when):
                    self.log.info("Balance %s credits: condition %s %d met", *self._summary(report))
                    yield TriggerEvent({"status": "success", "report": report})
                    return
                self.log.info("Balance %s credits: condition %s %d not met yet", *self._summary(report))

            wait = self.poke_interval
            if self.deadline is not None:
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"Balance condition {self.when} {self.threshold} not met "
                            f"before the sensor's timeout",
                        }
                    )
                    return
                wait = min(wait, remaining)
            await asyncio.sleep(wait)

    def _summary(self, report: dict[str, Any]) -> tuple[Any, str, int]:
        return report.get("credits"), self.when, self.threshold

    def _log_transient(self, error: BaseException) -> None:
        self.log.warning(
            "Balance check failed for now (%s: %s); checking again in %.1f s",
            type(error).__name__,
            error,
            self.poke_interval,
        )


def _error_payload(error: SMSNexusError) -> dict[str, Any]:
    """A JSON-safe description of an error that waiting cannot fix."""
    return {
        "status": "error",
        "status_code": error.status_code,
        "message": f"{type(error).__name__}: {error}",
        "server_message": error.message,
    }
