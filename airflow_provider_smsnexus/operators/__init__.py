"""The SMS Nexus operators: sending (``sms``) and webhook subscriptions (``webhooks``)."""

from __future__ import annotations
