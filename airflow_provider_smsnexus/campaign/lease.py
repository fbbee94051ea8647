"""Leases on ledger rows: who an attempt is (its owner id), which account it sends from (a fingerprint, never
the token), and the heartbeat that keeps its leases alive while rows wait in the limiter or in retries."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_smsnexus.campaign.ledger import SendLedger

log = logging.getLogger(__name__)

#: The longest owner id (the ledger's column).
MAX_OWNER_LENGTH = 255


def lease_owner(context: Mapping[str, Any] | None = None) -> str:
    """
    The owner id of one attempt: dag / task / run / try / map index, host, pid and a random token.

    Two attempts never share one, even the same try rerun on the same host (the token differs).

    :param context: the task context (its ``ti``); None outside a task.
    """
    ti = (context or {}).get("ti") or (context or {}).get("task_instance")
    parts = [
        str(getattr(ti, name, None) or "-")
        for name in ("dag_id", "task_id", "run_id", "try_number", "map_index")
    ]
    tail = f"@{socket.gethostname()}:{os.getpid()}#{secrets.token_hex(8)}"
    head = "/".join(parts)
    if len(head) + len(tail) > MAX_OWNER_LENGTH:
        digest = hashlib.sha256(head.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = f"{head[: MAX_OWNER_LENGTH - len(tail) - 18]}~{digest}"
    return head + tail


def account_fingerprint(base_url: str, token: str) -> str:
    """The account a ledger row belongs to: SHA-256 over the base URL and the token, cut to 32 hex digits.

    It scopes the known message ids (two accounts share a ledger without mixing ids); the token cannot be
    recovered from it.
    """
    digest = hashlib.sha256(f"smsnexus-account\x1f{base_url.rstrip('/')}\x1f{token}".encode()).hexdigest()
    return digest[:32]


class Heartbeat:
    """
    One thread that renews all the leases of one owner in one UPDATE every third of the lease.

    Use as a context manager around the sends. A renewal that fails is logged; the leases then expire,
    and the owner's fenced writes say so.

    :param ledger: the send ledger.
    :param owner: the owner id.
    :param lease_seconds: the lease's length.
    """

    def __init__(self, ledger: SendLedger, owner: str, lease_seconds: float) -> None:
        self.ledger = ledger
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="smsnexus-lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop renewing (the leases then run out unless released)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.ledger.renew(self.owner, self.lease_seconds)
                self.beats += 1
            except Exception:
                log.exception("Could not renew the leases of %s", self.owner)
