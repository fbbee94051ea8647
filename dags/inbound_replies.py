"""
Example DAG: thank each customer who texts your number, once, through an Asset watched by the SMS Nexus
inbound trigger.

What it shows:

* ``SMSNexusInboundMessageTrigger`` in an ``AssetWatcher``: the triggerer polls the texts sent to your
  number and records one asset event per new one (its position kept in the asset's state store, so a
  triggerer restart neither loses nor repeats one; see "Replies as Asset events" in docs/guides/two-way.md);
* a DAG scheduled on that asset: each run reads the texts from its triggering asset events (Airflow may
  put several events into one run when they arrive close together);
* a pre-flight check before any answer: the sending number is an active SMS number of the account and
  the credits suffice (``GET /api/phone-numbers``, ``GET /api/balance``); when it fails, nobody is texted;
* one answer per text, each a mapped ``SMSNexusSendSmsOperator`` with its own send-ledger campaign: one
  text's error (an invalid number, a refusal) fails that text's task only, and the others are answered; a
  text handed on again (``possibly_repeated``, after a triggerer restart) or a retried task is not answered
  twice.

Safe to unpause on a real account (the rule of docs/examples.md): it answers only texts sent to your
number from the moment you first unpause it (Airflow runs a watcher only while its DAG is unpaused), never
the account's history, and never an opt-out (STOP, ...). It is paused when first deployed
(``is_paused_upon_creation``).

Settings (environment variables, read when the DAG is parsed):

* ``SMSNEXUS_INBOUND_SINCE``: answer texts created from this moment on (ISO 8601, e.g.
  ``2026-01-01T00:00:00Z``): an earlier moment asks for history. Unset: ``first-run``, the trigger's start
  taken when it first runs (the first unpause) and kept through restarts. It is part of the
  watcher's identity: a new value starts a new position.
* ``SMSNEXUS_FROM_NUMBER``: your number: the texts to it are answered, from it; default ``+12125550100``
  (the emulator's).
* ``SMSNEXUS_LEDGER_CONN_ID``: an Airflow SQL connection for the send ledger, when tasks run on more than
  one machine (as in ``dags/campaign_send.py``).

See "Replies as Asset events" in the docs (docs/guides/two-way.md).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_smsnexus.operators.sms import SMSNexusSendSmsOperator
from airflow_provider_smsnexus.triggers.inbound import SINCE_FIRST_RUN, SMSNexusInboundMessageTrigger

DAG_ID = "smsnexus_inbound_replies"
ASSET_NAME = "smsnexus_inbound_replies"
SINCE = os.environ.get("SMSNEXUS_INBOUND_SINCE") or SINCE_FIRST_RUN
FROM_NUMBER = os.environ.get("SMSNEXUS_FROM_NUMBER") or "+12125550100"
LEDGER_CONN_ID = os.environ.get("SMSNEXUS_LEDGER_CONN_ID") or None

REPLIES = Asset(
    ASSET_NAME,
    watchers=[
        AssetWatcher(
            name="smsnexus_inbound",
            trigger=SMSNexusInboundMessageTrigger(
                asset_name=ASSET_NAME, to_number=FROM_NUMBER, since=SINCE, poll_interval=30
            ),
        )
    ],
)

with DAG(
    dag_id=DAG_ID,
    description="Thank each customer who texts your number, once (one asset event per text).",
    schedule=[REPLIES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["smsnexus", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def answers_of_this_run(triggering_asset_events=None) -> list[dict[str, Any]]:
        """One answer per text behind this run (none for a run triggered by hand); opt-outs get none."""
        import logging

        from airflow_provider_smsnexus.campaign.plan import OPT_OUT_KEYWORDS
        from airflow_provider_smsnexus.utils.keywords import reply_keyword

        answers = []
        for event in (triggering_asset_events or {}).get(REPLIES, []):
            message = (event.extra.get("payload") or {}).get("message")
            if not message:
                continue
            if reply_keyword(str(message.get("body") or "")) in OPT_OUT_KEYWORDS:
                logging.getLogger(__name__).info(
                    "Text %s from %s opts out: not answered", message["id"], message["from"]
                )
                continue
            answers.append(
                {
                    "to": message["from"],
                    "message": f"Thanks, we got your message #{message['id']}.",
                    # One ledger campaign per text: its answer is sent once, whichever run or try sends it.
                    "campaign_id": f"{DAG_ID}.answer.{message['id']}",
                }
            )
        return answers

    @task
    def check_sender(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Check, before any answer, that FROM_NUMBER is an active SMS number and the credits suffice."""
        import logging

        from airflow_provider_smsnexus.campaign.preflight import preflight
        from airflow_provider_smsnexus.campaign.single import message_row
        from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
        from airflow_provider_smsnexus.utils.segments import estimate_segments

        if not answers:
            return answers
        rows = []
        for answer in answers:
            try:
                row = message_row(
                    to=answer["to"],
                    from_number=FROM_NUMBER,
                    message=answer["message"],
                    media_url=None,
                    default_region=None,
                )
            except SMSNexusCampaignError:
                continue  # this text's own error: its answer task fails, saying why
            rows.append(row)
        credits = sum(estimate_segments(row.body).segments for row in rows)
        preflight(SMSNexusHook(), rows, credits, logging.getLogger(__name__))
        return answers

    SMSNexusSendSmsOperator.partial(
        task_id="answer",
        from_number=FROM_NUMBER,
        ledger_conn_id=LEDGER_CONN_ID,
        retries=2,
        retry_delay=timedelta(seconds=30),
    ).expand_kwargs(check_sender(answers_of_this_run()))
