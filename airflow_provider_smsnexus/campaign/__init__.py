"""The campaign engine: sends the rows of a campaign exactly once through the hook and a leased ledger.

One job per module: ``model`` (rows, outcomes, defaults), ``sources`` (reading recipients), ``render`` (texts),
``plan`` (dedupe, suppression, opt-outs, partitions), ``bulk`` and ``single`` (the operators' steps around the
sender), ``preflight``, ``ledger_schema`` (the table) and ``ledger`` (leases, reads, fenced writes), ``lease``,
``sender`` (sending), ``settle`` (lookups of open rows, waits), ``reconcile`` (lookups on the server's clock)
and ``report``. Nothing here imports the operators.
"""

from __future__ import annotations
