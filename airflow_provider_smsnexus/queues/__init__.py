"""SMS Nexus as a message queue of Airflow's ``common.messaging`` provider (``smsnexus``): inbound SMS start
DAGs through ``MessageQueueTrigger``."""

from __future__ import annotations
