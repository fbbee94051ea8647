"""Old import path of the send ledger, kept so that existing imports keep working.

The ledger lives in :mod:`airflow_provider_smsnexus.campaign.ledger`.
"""

from __future__ import annotations

from airflow_provider_smsnexus.campaign.ledger import *  # noqa: F403 - the old path offers the same names
from airflow_provider_smsnexus.campaign.ledger import __all__  # noqa: F401
