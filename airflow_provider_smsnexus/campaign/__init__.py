"""The campaign engine: sends the rows of a campaign exactly once through the hook and a leased ledger.

One job per module: ``model`` (rows, outcomes, defaults), ``sources`` (reading recipients), ``render`` (texts),
``plan`` (dedupe, suppression, opt-outs, partitions), ``preflight``, ``ledger``, ``lease``, ``sender``,
``reconcile`` (lookups on the server's clock) and ``report``. Nothing here imports the operators.
"""

from __future__ import annotations
