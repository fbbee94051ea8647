"""
Example DAG: run for every new inbound SMS, through an Asset watched by the SMS Nexus inbound trigger.

What it shows:

* ``SMSNexusInboundMessageTrigger`` in an ``AssetWatcher``: the triggerer polls the inbound messages and
  records one asset event per new message (its position kept in the asset's state store, so a triggerer
  restart neither loses nor repeats one; see "Replies as Asset events" in docs/guides/two-way.md);
* a DAG scheduled on that asset: each run reads the messages from its triggering asset events (Airflow
  may put several events into one run when they arrive close together) and answers each one;
* a message the trigger could not prove was handed on only once is flagged ``possibly_repeated``: the
  task skips answering it twice by checking what it already answered (here: the outbound record).

Settings (environment variables, read when the DAG is parsed): ``SMSNEXUS_INBOUND_SINCE`` — handle messages
created from this moment on (fixed: it is part of the watcher's identity); default 2026-01-01.

See "Replies as Asset events" in the docs (docs/guides/two-way.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_smsnexus.triggers.inbound import SMSNexusInboundMessageTrigger

ASSET_NAME = "smsnexus_inbound_replies"
SINCE = os.environ.get("SMSNEXUS_INBOUND_SINCE") or "2026-01-01T00:00:00Z"

REPLIES = Asset(
    ASSET_NAME,
    watchers=[
        AssetWatcher(
            name="smsnexus_inbound",
            trigger=SMSNexusInboundMessageTrigger(asset_name=ASSET_NAME, since=SINCE, poll_interval=30),
        )
    ],
)

with DAG(
    dag_id="smsnexus_inbound_replies",
    description="Answer every inbound SMS (one asset event per message).",
    schedule=[REPLIES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smsnexus", "example"],
    doc_md=__doc__,
):

    @task
    def messages_of_this_run(triggering_asset_events=None) -> list[dict]:
        """The inbound messages behind this run (empty for a run triggered by hand)."""
        events = (triggering_asset_events or {}).get(REPLIES, [])
        messages = [event.extra["payload"]["message"] for event in events if "payload" in event.extra]
        for message in messages:
            print(f"Reply {message['id']} from {message['from']}: {message['body']!r}")
        return messages

    @task
    def answer(messages: list[dict]) -> list[int]:
        """Thank each sender once: a message already answered (a repeat) is not answered again."""
        from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

        hook = SMSNexusHook()
        answered = []
        for message in messages:
            text = f"Thanks, we got your message #{message['id']}."
            if any(
                sent["body"] == text
                for sent in hook.iter_messages(direction="outbound", start_date=message["created_at"])
            ):
                continue  # answered before (an event handed on again after a triggerer restart)
            hook.send_sms(message["to"], message["from"], text)
            answered.append(message["id"])
        return answered

    answer(messages_of_this_run())
