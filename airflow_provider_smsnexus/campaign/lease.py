"""Leases on ledger rows: who an attempt is (its owner id), which account it sends from (a fingerprint, never
the token), the ledger's lease writes (claim, renew, release), and the heartbeat that keeps its leases alive
while rows wait in the limiter or in retries."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.campaign.ledger_schema import (
    STATE_CLAIMED,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SENT,
    STATE_UNKNOWN,
    LedgerEntry,
    campaign_key,
    claim_update,
    entry_of,
    insert_new,
    key_select,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_smsnexus.campaign.ledger import SendLedger
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


class LeaseWrites:
    """The lease writes of :class:`~airflow_provider_smsnexus.campaign.ledger.SendLedger` (a mixin of it: it
    uses the ledger's table, clock, write lock and prepared statements)."""

    table: Any
    engine: Any
    clock: Any

    def claim(
        self,
        campaign_id: str,
        recipient: str,
        message_hash: str,
        *,
        owner: str,
        from_number: str,
        account: str | None,
        lease_seconds: float,
    ) -> LedgerEntry | None:
        """
        Lease a row for ``owner``: a new row, or one that is neither sent nor unknown and whose lease is free
        (absent, expired, released, or already this owner's). Committed at once.

        :return: the row as it is under the new lease (its ``state`` says whether an earlier attempt left
            it ``pending``, which must be settled by a lookup before any send), or None when the row is
            sent, unknown, or leased by another live owner.
        """
        import sqlalchemy as sa

        self.create_table()
        now = self.clock()
        expires = now + timedelta(seconds=lease_seconds)
        table = self.table
        try:
            with self._writing(), self.engine.begin() as conn:
                conn.execute(
                    table.insert().values(
                        campaign_id=campaign_key(campaign_id),
                        recipient=recipient,
                        message_hash=message_hash,
                        state=STATE_CLAIMED,
                        from_number=from_number,
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                        account=account,
                        lease_owner=owner,
                        lease_expires_at=expires,
                    )
                )
        except sa.exc.IntegrityError:
            free = sa.or_(
                table.c.lease_owner == owner,
                table.c.lease_owner.is_(None),
                table.c.lease_expires_at.is_(None),
                table.c.lease_expires_at <= now,
            )
            values: dict[str, Any] = {
                "lease_owner": owner,
                "lease_expires_at": expires,
                "account": account,
                "updated_at": now,
            }
            with self._writing(), self.engine.begin() as conn:
                result = conn.execute(
                    table.update()
                    .where(
                        *self._key(campaign_id, recipient, message_hash),
                        table.c.state.notin_((STATE_SENT, STATE_UNKNOWN)),
                        free,
                    )
                    .values(**values)
                )
            if result.rowcount != 1:
                return None
        return self.get(campaign_id, recipient, message_hash)

    def claim_many(
        self,
        campaign_id: str,
        items: Sequence[tuple[str, str, str]],
        *,
        owner: str,
        account: str | None,
        lease_seconds: float,
    ) -> list[LedgerEntry | None]:
        """
        :meth:`claim` for many rows in one transaction (one commit): safe, since a claim is not a pending mark.

        :param items: ``(recipient, message_hash, from_number)`` of each row.
        :return: per item, what :meth:`claim` returns.
        """
        import sqlalchemy as sa

        self.create_table()
        insert = self._prepared("insert", lambda: insert_new(self.engine, self.table))
        if insert is not None and items:
            try:
                return self._claim_batch(insert, campaign_id, items, owner, account, lease_seconds)
            except sa.exc.DBAPIError as exc:
                # E.g. a deadlock with another batch: the transaction rolled back whole; claim one at a time.
                log.warning(
                    "Send ledger: a batch claim failed (%s); claiming one row at a time", type(exc).__name__
                )
        return [
            self.claim(
                campaign_id, recipient, message_hash, owner=owner, from_number=from_number,
                account=account, lease_seconds=lease_seconds,
            )
            for recipient, message_hash, from_number in items
        ]  # fmt: skip

    def _claim_batch(
        self,
        insert: Any,
        campaign_id: str,
        items: Sequence[tuple[str, str, str]],
        owner: str,
        account: str | None,
        lease_seconds: float,
    ) -> list[LedgerEntry | None]:
        update = self._prepared("claim", lambda: claim_update(self.table))
        select = self._prepared("key_select", lambda: key_select(self.table))
        now = self.clock()
        expires = now + timedelta(seconds=lease_seconds)
        key = campaign_key(campaign_id)
        new = {
            "campaign_id": key, "state": STATE_CLAIMED, "attempts": 0, "created_at": now, "updated_at": now,
            "account": account, "lease_owner": owner, "lease_expires_at": expires,
        }  # fmt: skip
        claimed: dict[tuple[str, str], LedgerEntry] = {}
        # Every batch locks its rows in key order: two batches never deadlock.
        with self._transaction() as transaction:
            for recipient, message_hash, from_number in sorted(set(items)):
                row = {
                    **new,
                    "recipient": recipient,
                    "message_hash": message_hash,
                    "from_number": from_number,
                }
                if transaction.execute(insert, row) == 1:  # a new row: it is as written
                    claimed[recipient, message_hash] = LedgerEntry(
                        campaign_id=key, recipient=recipient, message_hash=message_hash, state=STATE_CLAIMED,
                        from_number=from_number, created_at=now, updated_at=now, account=account,
                        lease_owner=owner, lease_expires_at=expires,
                    )  # fmt: skip
                    continue
                where = {"k_campaign": key, "k_recipient": recipient, "k_hash": message_hash}
                leased = {**where, "k_owner": owner, "k_now": now, "v_expires": expires, "v_account": account}
                if transaction.execute(update, leased) == 1:  # an existing row, now ours: as it is
                    claimed[recipient, message_hash] = entry_of(transaction.rows(select, where)[0])
        return [claimed.get((recipient, message_hash)) for recipient, message_hash, _ in items]

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend every live lease of ``owner`` (one UPDATE); an expired lease is never revived.

        :return: how many rows it still holds.
        """
        self.create_table()
        now = self.clock()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.lease_owner == owner,
                    table.c.lease_expires_at > now,
                    table.c.state.in_((STATE_CLAIMED, STATE_PENDING, STATE_FAILED)),
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
        return result.rowcount

    def release(self, owner: str) -> int:
        """End every lease of ``owner`` (its rows become free to claim, or to settle when pending)."""
        self.create_table()
        table = self.table
        with self._writing(), self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.lease_owner == owner, table.c.lease_expires_at.isnot(None))
                .values(lease_expires_at=None)
            )
        return result.rowcount


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
