"""The SMS Nexus notifier (``smsnexus``): an SMS from a DAG or task callback."""

from __future__ import annotations
