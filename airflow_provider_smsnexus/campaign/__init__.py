"""The campaign engine: sends the rows of a campaign exactly once through the hook and a leased ledger.

Each operator calls it once: ``bulk`` (:class:`~airflow_provider_smsnexus.campaign.bulk.BulkCampaign`: plan,
suppress, pre-flight, send, report) and ``single`` (one message as a campaign of one row). One job per module:
``model`` (rows, outcomes, defaults), ``sources`` (reading recipients), ``render`` (texts), ``plan`` (dedupe,
suppression, opt-outs, partitions), ``preflight``, ``ledger_schema`` (the table and its statements),
``ledger_transactions`` (how they run), ``ledger_writes`` (claims, renewals, releases, fenced marks) and
``ledger`` (the :class:`~airflow_provider_smsnexus.campaign.ledger.SendLedger` that holds them), ``lease``
(owners, the fenced pending mark, the heartbeat), ``sender`` (sending), ``settle`` (the sender's settler:
lookups of open rows, waits), ``reconcile`` (lookups on the server's clock) and ``report``. Nothing here imports
the operators.
"""

from __future__ import annotations
