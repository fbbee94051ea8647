"""Leases on ledger rows: who an attempt is (its owner id), which account it sends from (a fingerprint, never
the token), which server run a campaign is scoped to, the fenced pending mark right before a request leaves,
and the heartbeat that keeps an attempt's leases alive
while rows wait in the limiter or in retries (the lease writes themselves are
:class:`~airflow_provider_smsnexus.campaign.ledger.SendLedger`'s)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.model import CLOCK_SKEW, LEASE_SECONDS, SEND_CUTOFF_SHARE
from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_smsnexus.campaign.ledger import SendLedger
    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.campaign.reconcile import Reconciler
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

log = logging.getLogger(__name__)

#: The longest owner id (the ledger's column).
MAX_OWNER_LENGTH = 255
#: The clock of the fence before a request leaves: Linux's boot-time clock counts the time a machine (or a
#: VM) was suspended, which ``CLOCK_MONOTONIC`` leaves out; both count a stopped process's pause.
_LEASE_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def lease_clock() -> float:
    """Seconds on a clock that never goes back and counts pauses of this process (for the send fence)."""
    return time.clock_gettime(_LEASE_CLOCK)


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


@dataclass(frozen=True)
class SendAttempt:
    """One attempt of a task at its sends: the owner of its leases, how long a lease lives, and how far the
    server's clock may be off before a ``Date`` header was seen.

    :param owner: the lease owner id (see :func:`lease_owner`).
    :param lease_seconds: the lease on a row, renewed every third of it while the attempt lives.
    :param clock_skew: the lookup's clock uncertainty while no ``Date`` header of the server was seen.
    """

    owner: str
    lease_seconds: float = LEASE_SECONDS
    clock_skew: timedelta = CLOCK_SKEW


def account_fingerprint(base_url: str, token: str) -> str:
    """The account a ledger row belongs to: SHA-256 over the base URL and the token, cut to 32 hex digits.

    It scopes the known message ids (two accounts share a ledger without mixing ids); the token cannot be
    recovered from it.
    """
    digest = hashlib.sha256(f"smsnexus-account\x1f{base_url.rstrip('/')}\x1f{token}".encode()).hexdigest()
    return digest[:32]


#: What joins a campaign id and the emulator run it was sent through, in the ledger.
RUN_SCOPE = "@emulator-run-"


def run_scoped(campaign_id: str, hook: SMSNexusHook) -> str:
    """
    The ledger's campaign of ``campaign_id`` on the server that answers the hook: scoped to the server's run
    when it names one (the emulator does; SMS Nexus does not), so that a ledger's record of one emulator run
    never answers for another, whose messages are new. An id already scoped is returned as it is.

    Makes one read (``GET /api/balance``) when the hook has not heard from the server yet.

    :param campaign_id: the campaign.
    :param hook: the SMS Nexus hook.
    """
    if RUN_SCOPE in campaign_id:
        return campaign_id
    clock = hook.server_clock
    if not clock.answers:
        hook.get_balance()
    return f"{campaign_id}{RUN_SCOPE}{clock.run}" if clock.run else campaign_id


class LeaseLost(SMSNexusCampaignError):
    """This attempt's lease on a row was taken over before its request left: nothing was sent."""


class SendCutoffPassed(SMSNexusCampaignError):
    """The pending mark took so long (or the worker was paused) that the lease may have run out: not sent."""

    def __init__(self, spent: float) -> None:
        super().__init__(f"{spent:.1f} s passed since the pending mark began")
        self.spent = spent


def mark_pending_fenced(
    ledger: SendLedger,
    reconciler: Reconciler,
    campaign_id: str,
    row: CampaignRow,
    *,
    owner: str,
    lease_seconds: float,
) -> None:
    """
    Mark a row pending right before its request leaves (the hook's ``before_send``), renewing the owner's
    lease, and note the mark on the row.

    :raises LeaseLost: the owner no longer holds the row's lease: the request must not leave.
    :raises SendCutoffPassed: the mark (or a pause since it began) used up so much of the lease that another
        attempt may have taken the row over: the request must not leave.
    """
    started = lease_clock()
    server_at, uncertainty = reconciler.server_time()
    mark = ledger.mark_pending(
        campaign_id,
        *row.key,
        owner=owner,
        server_at=server_at,
        uncertainty=uncertainty,
        foreign_ids=row.foreign_ids,
        lease_seconds=lease_seconds,
    )
    if mark is None:
        raise LeaseLost(f"the lease on the row of {row.recipient} was taken over; not sending it")
    row.pending_at, row.pending_server_at, row.pending_uncertainty = mark, server_at, uncertainty
    row.send_by = mark + timedelta(seconds=lease_seconds)
    # The fence, on a clock that counts pauses: the mark (and any wait inside its commit) and a freeze since
    # may have used up the lease, which another attempt may then have taken over.
    spent = lease_clock() - started
    if spent >= lease_seconds * SEND_CUTOFF_SHARE:
        raise SendCutoffPassed(spent)


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
