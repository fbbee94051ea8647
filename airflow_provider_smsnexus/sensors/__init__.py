"""The SMS Nexus sensors: the credit balance (``balance``), a reply (``reply``) and delivery (``delivery``)."""

from __future__ import annotations
