"""
Page the on-call by SMS when the SMS Nexus credits run low.

Every hour, ``check_balance`` (an :class:`SMSNexusBalanceSensor` in ``below`` mode) looks at the balance
for up to five minutes. It defers: it checks once on a worker, then the triggerer checks every minute, so
the wait holds no worker slot. A healthy balance never meets the condition: the sensor times out with
``soft_fail``, is marked skipped, and the run ends quietly with the alert task skipped. When the credits
are below ``params.threshold``, ``page_on_call`` texts every number in ``params.on_call_numbers``
through :class:`SMSNexusNotifier`, with the balance and the hours left at today's pace.

Trigger it by hand (e.g. with ``threshold`` raised) to see the alert: a manual run starts at once, beside
a running hourly check (``max_active_runs=2``; an hourly run ends within 30 minutes, so two hourly runs
never overlap). When both see a low balance, both page.

A 429 or a 5xx during the check does not end it: the sensor checks again at the next poke. A revoked
token fails the run (401/403), even with ``soft_fail``, so the alert does not go quiet unnoticed.

Who is texted: the on-call numbers only, and only when the credits are low; unpausing it texts nobody else
(the rule of docs/examples.md). Settings (environment variables, read when the DAG is parsed; the params'
defaults): ``SMSNEXUS_ON_CALL`` (the on-call numbers, comma-separated E.164; default two fictional numbers,
``+12125550150`` and ``+12125550151``, that reach nobody) and ``SMSNEXUS_FROM_NUMBER`` (the account's
sending number; default ``+12125550100``, the emulator's).

Connection: ``smsnexus_default`` (host ``https://www.smsnexus.net/api``, password the API token).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task

from airflow_provider_smsnexus.notifications.smsnexus import SMSNexusNotifier
from airflow_provider_smsnexus.sensors.balance import SMSNexusBalanceSensor

E164 = r"^\+[1-9][0-9]{6,14}$"
ON_CALL = [n.strip() for n in (os.environ.get("SMSNEXUS_ON_CALL") or "").split(",") if n.strip()] or [
    "+12125550150",
    "+12125550151",
]
FROM_NUMBER = os.environ.get("SMSNEXUS_FROM_NUMBER") or "+12125550100"


def low_credit_text(report: dict[str, Any], threshold: int | str) -> str:
    """
    The alert text for a balance report of the sensor.

    :param report: the sensor's XCom value: the balance plus ``credits_per_hour`` and ``hours_left``.
    :param threshold: the threshold that the balance fell below.
    """
    text = f"SMS Nexus credits low: {report['credits']} left (threshold {threshold})."
    if report.get("hours_left") is None:
        return f"{text} No credits used yet today, so no estimate of the hours left."
    return (
        f"{text} About {report['hours_left']:.1f} hours left "
        f"at today's pace of {report['credits_per_hour']:.1f} credits/hour."
    )


@dag(
    dag_id="low_credit_alert",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    # Room for a manual run beside the hourly one (which ends within dagrun_timeout, long before the next).
    max_active_runs=2,
    dagrun_timeout=timedelta(minutes=30),
    params={
        "threshold": Param(1000, type="integer", minimum=0, description="Alert below this many credits."),
        "on_call_numbers": Param(
            ON_CALL,
            type="array",
            items={"type": "string", "pattern": E164},
            minItems=1,
            description="Who gets the SMS (E.164).",
        ),
        "from_number": Param(FROM_NUMBER, type="string", pattern=E164, description="Sending number."),
    },
    tags=["smsnexus", "alerting"],
    doc_md=__doc__,
)
def low_credit_alert() -> None:
    """Check the balance; when it is low, text the on-call."""
    check_balance = SMSNexusBalanceSensor(
        task_id="check_balance",
        threshold="{{ params.threshold }}",
        when="below",
        poke_interval=60,
        timeout=300,
        soft_fail=True,
        # Between checks the wait is the triggerer's: five minutes every hour on a worker slot would hold
        # back other DAGs' tasks (a LocalExecutor has a few slots, a Celery worker its concurrency).
        deferrable=True,
    )

    @task(retries=0)
    def page_on_call(report: dict[str, Any], **context: Any) -> int:
        """Text the balance and the hours left to the on-call numbers; return how many were texted."""
        params = context["params"]
        notifier = SMSNexusNotifier(
            from_number=params["from_number"],
            to=params["on_call_numbers"],
            message="[{{ dag.dag_id }}] " + low_credit_text(report, params["threshold"]),
        )
        notifier(context)
        return len(params["on_call_numbers"])

    page_on_call(check_balance.output)


low_credit_alert()
