"""SMSNexusBalanceTrigger: poll the SMS Nexus balance from the triggerer until a condition holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import timezone

from airflow_provider_smsnexus import DEFAULT_CONN_ID
from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.triggers.base import (
    BALANCE_TRANSIENT_ERRORS,
    PollingTrigger,
    error_payload,
)
from airflow_provider_smsnexus.utils import balance

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow.triggers.base import TriggerEvent


class SMSNexusBalanceTrigger(PollingTrigger):
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
        smsnexus_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__(smsnexus_conn_id=smsnexus_conn_id, poke_interval=poke_interval, deadline=deadline)
        self.threshold = balance.coerce_threshold(threshold)
        self.when = balance.validate_condition(when)

    def arguments(self) -> dict[str, Any]:
        """The threshold and the condition."""
        return {"threshold": self.threshold, "when": self.when}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check the balance every ``poke_interval`` seconds; yield one event and return."""
        hook = self.async_hook()

        async def check() -> dict[str, Any] | None:
            answer = await hook.get_balance()
            try:  # a JSON balance without numeric credits: as the sensor, fail
                report = balance.balance_report(answer, now=timezone.utcnow())
            except SMSNexusError as error:
                return error_payload(error)
            met = balance.balance_condition_met(report["credits"], self.threshold, self.when)
            self.log.info(
                "Balance %s credits: condition %s %d %s",
                report.get("credits"),
                self.when,
                self.threshold,
                "met" if met else "not met yet",
            )
            return {"status": "success", "report": report} if met else None

        async def timed_out() -> dict[str, Any]:
            return {
                "status": "timeout",
                "message": f"Balance condition {self.when} {self.threshold} not met before the sensor's timeout",
            }

        yield await self.wait_for(
            check, what="the balance", on_timeout=timed_out, transient=BALANCE_TRANSIENT_ERRORS
        )
