"""SMSNexusMessageQueueProvider: the inbound SMS of an SMS Nexus account as the ``smsnexus`` scheme of
Airflow's ``MessageQueueTrigger`` (the ``common.messaging`` provider), as Kafka, SQS and Redis pub/sub join it.

``MessageQueueTrigger(scheme="smsnexus", **kwargs)`` builds :class:`SMSNexusInboundMessageTrigger` from
``kwargs`` and serializes as that trigger: an ``AssetWatcher`` stores the project's own trigger, and the
triggerer runs it (its shared stream in ack mode, its position in the asset state store). The two ways are
one trigger, with one guarantee; the same kwargs are the same watcher, with one position.

Needs ``apache-airflow-providers-common-messaging`` (the provider's ``messaging`` extra).

.. seealso:: "Through Airflow's MessageQueueTrigger" in :doc:`/guides/two-way`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.messaging.providers.base_provider import BaseMessageQueueProvider

from airflow_provider_smsnexus.triggers.inbound import SMSNexusInboundMessageTrigger

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger

#: The scheme of ``MessageQueueTrigger(scheme=...)`` that names SMS Nexus inbound messages.
SCHEME = "smsnexus"


class SMSNexusMessageQueueProvider(BaseMessageQueueProvider):
    """
    The ``smsnexus`` scheme of ``MessageQueueTrigger``: one event per new inbound SMS.

    The keyword arguments of ``MessageQueueTrigger`` are those of :class:`SMSNexusInboundMessageTrigger`
    (``asset_name``, the watched asset's name, which keeps the position; ``since`` (a fixed moment, or
    ``"first-run"`` to start from the trigger's first run) or ``after_id``;
    the filters ``from_numbers``, ``to_number``, ``pattern``; ``smsnexus_conn_id``, ``poll_interval``)::

        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
        from airflow.sdk import Asset, AssetWatcher

        trigger = MessageQueueTrigger(
            scheme="smsnexus", asset_name="sms_replies", since="2026-03-01T00:00:00Z", to_number="+12125550100"
        )
        replies = Asset("sms_replies", watchers=[AssetWatcher(name="sms_replies", trigger=trigger)])

    Only the scheme is matched: the queue URI form, which ``common.messaging`` deprecates, is not offered.
    """

    scheme = SCHEME

    def trigger_class(self) -> type[BaseEventTrigger]:
        """:class:`SMSNexusInboundMessageTrigger`, built from the ``MessageQueueTrigger``'s kwargs."""
        return SMSNexusInboundMessageTrigger
