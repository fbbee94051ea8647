"""SMSNexusBalanceSensor: wait until the SMS Nexus credit balance is below, or at least, a threshold."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf, timezone
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusCredentialsRejectedError,
    SMSNexusError,
    SMSNexusForbiddenError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers.balance import SMSNexusBalanceTrigger
from airflow_provider_smsnexus.triggers.base import BALANCE_TRANSIENT_ERRORS
from airflow_provider_smsnexus.utils.balance import (
    balance_condition_met,
    balance_report,
    coerce_threshold,
    validate_condition,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow.sdk import Context


#: The old, private name of :class:`~airflow_provider_smsnexus.exceptions.SMSNexusCredentialsRejectedError`.
_CredentialsRejectedError = SMSNexusCredentialsRejectedError


class SMSNexusBalanceSensor(BaseSensorOperator):
    """
    Wait until the account's credit balance is below (or at least) a threshold.

    Succeeds when ``credits < threshold`` (``when="below"``, the default) or ``credits >= threshold``
    (``when="at_least"``). Its XCom value is the balance answer plus a burn-rate estimate::

        {"credits": 420, "currency": "credits", "plan": "Professional", "credits_used_today": 180,
         "credits_per_hour": 15.0, "hours_left": 28.0, "checked_at": "2026-03-08T12:00:00+00:00"}

    ``credits_per_hour`` is ``credits_used_today`` divided by the hours since 00:00 UTC (at least
    15 minutes); it and ``hours_left`` are None when nothing was used today.

    A 429, a 5xx, a connection error (after the hook's own retries) or a 2xx answer that is not the API's
    JSON (a maintenance page answered 200) never fails the sensor: it logs a warning and pokes again at
    the next interval, until ``timeout``. A 401 or 403 fails it at once,
    with a message saying which, even with ``soft_fail=True``.

    With ``deferrable=True`` the sensor checks once, then hands the wait to
    :class:`~airflow_provider_smsnexus.triggers.balance.SMSNexusBalanceTrigger` and frees its worker
    slot; ``timeout`` holds in both modes, and both return the same XCom value.

    .. seealso:: "Balance sensor" in :doc:`/guides/balance-alerts`.

    :param threshold: the threshold in credits (templated; a rendered string of digits is accepted).
    :param when: ``"below"`` (default) or ``"at_least"``.
    :param smsnexus_conn_id: the SMS Nexus connection id (default ``smsnexus_default``).
    :param deferrable: defer to the triggerer between checks (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("threshold", "smsnexus_conn_id")
    ui_color = "#f6d8ae"

    def __init__(
        self,
        *,
        threshold: int | str,
        when: str = "below",
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.when = validate_condition(when)
        self.smsnexus_conn_id = smsnexus_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        """
        Check the balance once.

        :return: done with the report as XCom value when the condition holds, else not done.
        :raises SMSNexusCredentialsRejectedError: on 401 or 403.
        """
        threshold = coerce_threshold(self.threshold)
        try:
            balance = self.hook.get_balance()
        except (SMSNexusAuthError, SMSNexusForbiddenError) as error:
            raise SMSNexusCredentialsRejectedError(
                error.status_code, self.smsnexus_conn_id, error.server_message
            ) from error
        except BALANCE_TRANSIENT_ERRORS as error:
            self.log.warning(
                "Balance check failed for now (%s: %s); checking again in %.1f s",
                type(error).__name__,
                error,
                self.poke_interval,
            )
            return PokeReturnValue(is_done=False)
        report = balance_report(balance, now=timezone.utcnow())
        done = balance_condition_met(report["credits"], threshold, self.when)
        self.log.info(
            "Balance %s credits, condition %s %d: %s",
            report["credits"],
            self.when,
            threshold,
            "met" if done else "not met",
        )
        return PokeReturnValue(is_done=done, xcom_value=report if done else None)

    def execute(self, context: Context) -> Any:
        """Poke until the condition holds (poke/reschedule mode), or check once and defer."""
        if not self.deferrable:
            with self._credential_errors_not_softened():
                return super().execute(context)
        try:
            first = self.poke(context)
        except Exception as error:
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
            raise
        if first:
            return first.xcom_value
        self.defer(
            trigger=SMSNexusBalanceTrigger(
                threshold=coerce_threshold(self.threshold),
                when=self.when,
                smsnexus_conn_id=self.smsnexus_conn_id,
                poke_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """
        Resume after the trigger fired: return the same XCom value as poke mode, or raise.

        :param event: the trigger's payload: ``status`` ``success`` (with ``report``), ``timeout`` or
            ``error`` (with ``message`` and ``status_code``).
        """
        status = event.get("status")
        if status == "success":
            report = event["report"]
            self.log.info("Balance %s credits, condition %s met", report.get("credits"), self.when)
            return report
        if status == "timeout":
            raise AirflowSensorTimeout(event.get("message") or "Balance sensor timed out")
        status_code = event.get("status_code")
        if status_code in (401, 403):
            raise SMSNexusCredentialsRejectedError(
                status_code, self.smsnexus_conn_id, event.get("server_message")
            )
        raise SMSNexusError(
            f"Balance trigger failed: {event.get('message') or event!r}", status_code=status_code
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context):
        """Resume from the trigger; a 401/403 fails the task even with ``soft_fail``."""
        with self._credential_errors_not_softened():
            return super().resume_execution(next_method, next_kwargs, context)

    @contextmanager
    def _credential_errors_not_softened(self) -> Iterator[None]:
        """Undo ``soft_fail``'s skip when the cause is rejected credentials (``never_fail`` still skips)."""
        try:
            yield
        except AirflowSkipException as skip:
            cause = skip.__cause__
            if isinstance(cause, SMSNexusCredentialsRejectedError) and not self.never_fail:
                raise cause from cause.__cause__
            raise
