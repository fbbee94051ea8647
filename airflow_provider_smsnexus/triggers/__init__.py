"""The SMS Nexus triggers: waits handed to the triggerer (balance, reply, delivery; ``_polling`` is their
shared loop) and the inbound-message event trigger for asset watchers (``inbound``)."""

from __future__ import annotations
