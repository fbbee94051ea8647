"""
Example DAG: ask the on-call engineer by SMS before a deployment, then deploy or stand down.

What it shows:

* the question sent exactly once by ``SMSNexusSendSmsOperator`` (a retry never texts it twice);
* ``SMSNexusApprovalSensor`` waiting, in the triggerer, for a YES or a NO from that number after the
  question (other texts are not answers), with ``fail_on_reject=False`` so that a NO goes to a branch;
  no answer within the timeout fails the run, saying so;
* a branch on the answer.

Settings (environment variables, read when the DAG is parsed): ``SMSNEXUS_ON_CALL`` (the number asked),
``SMSNEXUS_FROM_NUMBER`` (the account's number), ``SMSNEXUS_APPROVAL_TIMEOUT`` (seconds, default 3600).

See "Approval by SMS" in the docs (docs/guides/two-way.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_smsnexus.operators.sms import SMSNexusSendSmsOperator
from airflow_provider_smsnexus.sensors.reply import SMSNexusApprovalSensor

ON_CALL = os.environ.get("SMSNEXUS_ON_CALL") or "+12125550142"
FROM_NUMBER = os.environ.get("SMSNEXUS_FROM_NUMBER") or "+12125550100"
TIMEOUT = float(os.environ.get("SMSNEXUS_APPROVAL_TIMEOUT") or 3600)

with DAG(
    dag_id="smsnexus_sms_approval",
    description="Ask for a YES/NO by SMS, then deploy or stand down.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smsnexus", "example"],
    doc_md=__doc__,
):
    ask = SMSNexusSendSmsOperator(
        task_id="ask",
        from_number=FROM_NUMBER,
        to=ON_CALL,
        message="Deploy {{ dag.dag_id }} run {{ run_id }}? Reply YES or NO.",
    )
    approval = SMSNexusApprovalSensor(
        task_id="wait_for_answer",
        from_number=ON_CALL,
        after_id=ask.output,  # only answers after this question count
        fail_on_reject=False,
        poke_interval=15,
        timeout=TIMEOUT,
        deferrable=True,
    )

    @task.branch
    def decide(answer: dict) -> str:
        """Go on when approved."""
        return "deploy" if answer["approved"] else "stand_down"

    @task
    def deploy() -> str:
        return "deployed"

    @task
    def stand_down() -> str:
        return "not deployed: rejected by SMS"

    ask >> approval
    decide(approval.output) >> [deploy(), stand_down()]
